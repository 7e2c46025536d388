import { request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import net from 'node:net';
import fc from 'fast-check';
import request from 'supertest';
import { z } from 'zod';
import { startHttpServer } from '../../src/http/http-server';
import { createTestApp, type TestApp, type TestAppOptions } from '../support/test-app';

/**
 * Shared pieces of the fuzz suite: the app on a real port, snapshots of the tables,
 * the error-shape check, and the arbitraries that produce hostile input.
 */

/** express.json()'s default limit, which the app uses unless told otherwise. */
export const BODY_LIMIT_BYTES = 100 * 1024;

/** Per-run and per-request bounds: a hang fails the run instead of the whole suite. */
export const RUN_TIMEOUT_MS = 5_000;
export const REQUEST_TIMEOUT_MS = 4_000;

/** fast-check settings: random seed (printed on failure), bounded runs and bounded shrinking. */
export const fcOptions = (numRuns: number): fc.Parameters<unknown> => ({
  numRuns,
  timeout: RUN_TIMEOUT_MS,
  // Shrinking a failure re-runs requests; stop it (keeping the smallest counterexample so far) after this long.
  interruptAfterTimeLimit: 25_000,
  markInterruptAsFailure: false,
});

// ---------------------------------------------------------------------------------------------
// The app under test

export interface FuzzApp {
  t: TestApp;
  server: Server;
  port: number;
  http(): ReturnType<typeof request>;
  close(): Promise<void>;
}

/**
 * The real app (no Pipedrive key: the mirror is disabled) over the suite's database, listening on
 * a port once for the whole file, so each request does not start a server of its own.
 */
export async function startFuzzApp(options: TestAppOptions = {}): Promise<FuzzApp> {
  // createTestApp turns the rate limit off and keeps the default body limit (100 kB).
  const t = createTestApp(options);
  // Served as server.ts serves it: parser-level refusals answered in the error shape.
  const { server, port } = await startHttpServer(t.app, { port: 0, host: '127.0.0.1', inFlight: t.inFlight, logger: t.logger });
  return {
    t,
    server,
    port,
    http: () => request(server),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await t.close();
    },
  };
}

export interface Seeded {
  /** Ids of the contacts the seed created (1, 2, 3 after a reset). */
  contactIds: number[];
  emails: string[];
}

/** Empties the tables and records three contacts (two with emails) and a note, through the API. */
export async function resetAndSeed(app: FuzzApp): Promise<Seeded> {
  await app.t.reset();
  const bodies = [
    { name: 'Ada Lovelace', email: 'ada@example.com', phone: '+44 20 7946 0000' },
    { name: 'Grace Hopper', email: 'grace@example.com' },
    { name: "Robert'); DROP TABLE contacts;-- 100%_off" },
  ];
  const contactIds: number[] = [];
  for (const body of bodies) {
    const res = await app.http().post('/contact').send(body).expect(201);
    contactIds.push(res.body.contact_id);
  }
  await app.http().post('/contact/note').send({ contact_id: contactIds[0], content: 'Wants a demo' }).expect(201);
  return { contactIds, emails: ['ada@example.com', 'grace@example.com'] };
}

// ---------------------------------------------------------------------------------------------
// Snapshots: a rejected request must change no row

export interface TableSnapshot {
  contacts: string;
  notes: string;
  contact_events: string;
  mirror_pause: string;
}

/** Row count and an md5 of every row's text, per table (the mirror's queue is in the contacts rows). */
export async function snapshot(t: TestApp): Promise<TableSnapshot> {
  const digest = (table: string) =>
    `(SELECT count(*) || ':' || md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r.id), '')) FROM ${table} r)`;
  const rows = await t.prisma.$queryRawUnsafe<TableSnapshot[]>(
    `SELECT ${digest('contacts')} AS contacts, ${digest('notes')} AS notes, ${digest('contact_events')} AS contact_events,
            (SELECT count(*)::text FROM mirror_pause) AS mirror_pause`,
  );
  return rows[0] as TableSnapshot;
}

/** The tables the service owns still exist (no injected DROP went through). */
export async function expectTablesIntact(t: TestApp): Promise<void> {
  const rows = await t.prisma.$queryRawUnsafe<Array<{ name: string | null }>>(
    `SELECT to_regclass(name)::text AS name FROM unnest(ARRAY['contacts', 'notes', 'contact_events', 'crm_health']) AS name`,
  );
  expect(rows.map((row) => row.name)).toEqual(['contacts', 'notes', 'contact_events', 'crm_health']);
}

// ---------------------------------------------------------------------------------------------
// Responses

/** The codes each error status may carry (README, API section). */
const CODES_BY_STATUS: Record<number, string[]> = {
  400: ['VALIDATION_ERROR', 'MALFORMED_JSON', 'MALFORMED_REQUEST'],
  401: ['UNAUTHORIZED'],
  404: ['NOT_FOUND'],
  408: ['REQUEST_TIMEOUT'],
  409: ['CONTACT_EXISTS', 'CRM_DISABLED'],
  413: ['PAYLOAD_TOO_LARGE'],
  415: ['UNSUPPORTED_MEDIA_TYPE'],
  429: ['RATE_LIMITED'],
  431: ['HEADERS_TOO_LARGE'],
};

const ErrorBody = z.strictObject({
  success: z.literal(false),
  error: z.looseObject({
    code: z.string().regex(/^[A-Z][A-Z_]*$/),
    message: z.string().min(1),
    details: z.unknown().optional(),
    contact_id: z.number().int().positive().optional(),
  }),
});

const FieldIssues = z.array(z.strictObject({ field: z.string().min(1), message: z.string().min(1) })).min(1);

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders | Record<string, string>;
  text: string;
}

/** What a request got back, for an assertion message that shows the answer. */
const summarize = (res: HttpResult) => `${res.status} ${String(res.headers['content-type'])} ${res.text.slice(0, 500)}`;

/**
 * A client error in the one error shape: a 4xx, JSON, `{success:false, error:{code, message, ...}}`,
 * the code one the README gives for that status, and `details` a list of fields for VALIDATION_ERROR.
 * Returns the parsed body.
 */
export function expectClientError(res: HttpResult, expected?: { status?: number | number[]; code?: string }): z.infer<typeof ErrorBody> {
  const context = summarize(res);
  if (res.status < 400 || res.status >= 500) throw new Error(`expected a 4xx error, got ${context}`);
  const statuses = expected?.status === undefined ? undefined : [expected.status].flat();
  if (statuses && !statuses.includes(res.status)) throw new Error(`expected status ${statuses.join(' or ')}, got ${context}`);
  if (!/^application\/json\b/.test(String(res.headers['content-type'] ?? ''))) throw new Error(`error is not JSON: ${context}`);
  let json: unknown;
  try {
    json = JSON.parse(res.text);
  } catch {
    throw new Error(`error body does not parse as JSON: ${context}`);
  }
  const parsed = ErrorBody.safeParse(json);
  if (!parsed.success) throw new Error(`error is not in the error shape (${parsed.error.message}): ${context}`);
  const { code, details } = parsed.data.error;
  const allowed = CODES_BY_STATUS[res.status];
  if (!allowed?.includes(code)) throw new Error(`status ${res.status} with unexpected code ${code}: ${context}`);
  if (expected?.code !== undefined && code !== expected.code) throw new Error(`expected code ${expected.code}, got ${context}`);
  if (code === 'VALIDATION_ERROR' && !FieldIssues.safeParse(details).success) throw new Error(`VALIDATION_ERROR without field details: ${context}`);
  if (code === 'CONTACT_EXISTS' && parsed.data.error.contact_id === undefined) throw new Error(`CONTACT_EXISTS without contact_id: ${context}`);
  return parsed.data;
}

/** The fields a VALIDATION_ERROR names. */
export const issueFields = (res: HttpResult): string[] =>
  (FieldIssues.safeParse(JSON.parse(res.text).error?.details).data ?? []).map((issue) => issue.field);

/** Own properties of Object.prototype, as they are before any request. */
const PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype).sort();

export function expectNoPrototypePollution(): void {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_KEYS);
  const probe = {} as Record<string, unknown>;
  expect(probe.polluted).toBeUndefined();
  expect(probe.name).toBeUndefined();
  expect(probe.contact_id).toBeUndefined();
}

// ---------------------------------------------------------------------------------------------
// Sending exact bytes

/** Supertest's response as an HttpResult. */
export const fromSupertest = (res: request.Response): HttpResult => ({ status: res.status, headers: res.headers, text: res.text ?? '' });

/** A request through node:http with exactly these bytes as its body (supertest would JSON-encode a Buffer). */
export function sendRaw(
  port: number,
  options: { method: string; path: string; headers?: Record<string, string>; body?: Buffer | string },
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : Buffer.isBuffer(options.body) ? options.body : Buffer.from(options.body);
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: options.method,
        path: options.path,
        agent: false,
        headers: { ...(body ? { 'content-length': String(body.length) } : {}), ...options.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

export interface WireExchange {
  /** Everything the server wrote, decoded as latin1 (bytes preserved). */
  raw: string;
  /** The server neither answered nor closed within the time given. */
  timedOut: boolean;
  /** The first response, if any. */
  response?: { status: number; headers: Record<string, string>; text: string };
}

/**
 * Writes raw bytes on a TCP connection (requests Node's HTTP client would refuse to send) and
 * collects whatever comes back until the server closes the connection or the time is up.
 */
export function exchangeBytes(
  port: number,
  bytes: Buffer | string,
  options: { endWriteSide?: boolean; endWriteSideAfterMs?: number; timeoutMs?: number } = {},
): Promise<WireExchange> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, options.timeoutMs ?? 3_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined); // a reset after the answer is fine: only what was answered counts
    socket.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('latin1');
      resolve({ raw, timedOut, response: parseFirstResponse(raw) });
    });
    socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
    if (options.endWriteSide) socket.end();
    if (options.endWriteSideAfterMs !== undefined) setTimeout(() => socket.end(), options.endWriteSideAfterMs);
  });
}

function parseFirstResponse(raw: string): WireExchange['response'] {
  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd < 0) return undefined;
  const [statusLine = '', ...headerLines] = raw.slice(0, headEnd).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers = Object.fromEntries(
    headerLines.map((line) => [line.slice(0, line.indexOf(':')).trim().toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
  );
  const rest = Buffer.from(raw.slice(headEnd + 4), 'latin1');
  const length = headers['content-length'] === undefined ? rest.length : Number(headers['content-length']);
  return { status, headers, text: rest.subarray(0, length).toString('utf8') };
}

/** An HTTP/1.1 request as latin1 text: `head` lines joined with CRLF, then a blank line and the body. */
export const wireRequest = (headLines: string[], body = ''): string => `${headLines.join('\r\n')}\r\n\r\n${body}`;

// ---------------------------------------------------------------------------------------------
// Hostile input

/** Text PostgreSQL and Prisma cannot store: NUL, or a UTF-16 surrogate without its pair. */
export const isUnstorable = (text: string): boolean => text.includes('\u0000') || /\p{Surrogate}/u.test(text);

/** True when no string anywhere in `value` is unstorable. */
export function storable(value: unknown): boolean {
  if (typeof value === 'string') return !isUnstorable(value);
  if (Array.isArray(value)) return value.every(storable);
  if (typeof value === 'object' && value !== null) return Object.values(value).every(storable);
  return true;
}

/** SQL, LIKE and escape syntax that must be stored and searched as plain text. */
export const SQL_FRAGMENTS = [
  "'",
  '"',
  '\\',
  '%',
  '_',
  ';',
  '--',
  '/*',
  '*/',
  "' OR '1'='1",
  "'; DROP TABLE contacts; --",
  "Robert'); DROP TABLE notes;--",
  '1; DELETE FROM contacts',
  '$1',
  '$$',
  'E\'\\x00\'',
  '\\x27',
  '%%',
  '_%_',
  '\\%',
  '\\_',
  'NULL',
  'null',
  '`',
  '${x}',
  '{{x}}',
  'UNION SELECT * FROM pg_user',
  'pg_sleep(10)',
];

/** One unit of a hostile string: mostly ASCII, plus any code point, lone surrogates, controls and SQL. */
export const hostileUnit: fc.Arbitrary<string> = fc.oneof(
  { weight: 12, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '\u0000', '\u0001', '\t', '\n', '\r', '\u001f', '\u007f', '\u0085', '\u00a0', '\u00ad', '\u2028', '\u2029',
      '\u200b', '\u200e', '\u202e', '\ufeff', '\ufffd', '\uffff', '\u0301', 'é', 'ß', 'İ', 'ﬀ', '😀', '👩‍💻', '𝕏',
    ),
  },
  { weight: 2, arbitrary: fc.constantFrom(...SQL_FRAGMENTS) },
);

export const hostileString = (maxLength = 30): fc.Arbitrary<string> => fc.string({ unit: hostileUnit, maxLength });

/** Hostile strings that survive percent-encoding unchanged (no lone surrogates). */
export const wellFormed = (text: string): string => Buffer.from(text, 'utf8').toString('utf8');

/** Percent-encodes every byte but [A-Za-z0-9] (lone surrogates become U+FFFD, as any client would send them). */
export const percentEncode = (text: string): string =>
  [...Buffer.from(text, 'utf8')]
    .map((byte) => (/[A-Za-z0-9]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`))
    .join('');

/** A number written as JSON text, kept verbatim (JSON.stringify would turn -0 into 0, 1e400 into null). */
export const rawNumber = fc.constantFrom(
  '0', '-0', '0.0', '-0.0', '1', '1.0', '1e0', '1E+0', '10e-1', '-1', '1.5', '2147483647', '2147483648', '-2147483648',
  '9007199254740991', '9007199254740993', '123456789012345678901234567890', '1e308', '-1e308', '1e309', '-1e309',
  '5e-324', '1e-400', '0.1e1', '3.0000000000000001',
);

/** A JSON value written as JSON text, where objects may repeat keys or use `__proto__` as an own key. */
export type JsonText = string;

const jsonString = (s: string): JsonText => JSON.stringify(s);
export const jsonObject = (entries: ReadonlyArray<readonly [string, JsonText]>): JsonText =>
  `{${entries.map(([key, value]) => `${jsonString(key)}:${value}`).join(',')}}`;
const jsonArray = (items: readonly JsonText[]): JsonText => `[${items.join(',')}]`;

export const PROTOTYPE_KEYS_TO_SEND = ['__proto__', 'constructor', 'prototype'] as const;

/** Object keys: hostile strings, the route's own fields, and names JavaScript gives a meaning to. */
export const anyKey = fc.oneof(
  { weight: 3, arbitrary: hostileString(12) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      ...PROTOTYPE_KEYS_TO_SEND, 'name', 'email', 'phone', 'contact_id', 'fields', 'content', 'id', 'toString', 'valueOf',
      'hasOwnProperty', '__defineGetter__', 'then', 'length', '', ' name', 'Name', 'NAME', 'contactId',
    ),
  },
);

export const scalarText: fc.Arbitrary<JsonText> = fc.oneof(
  fc.constant('null'),
  fc.boolean().map(String),
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
  rawNumber,
  hostileString().map(jsonString),
);

/** Any JSON value, as text, nested a few levels. */
export const anyJsonText: fc.Arbitrary<JsonText> = fc.letrec<{ node: JsonText; array: JsonText; object: JsonText }>((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalarText, tie('array'), tie('object')),
  array: fc.array(tie('node'), { maxLength: 4 }).map(jsonArray),
  object: fc.array(fc.tuple(anyKey, tie('node')), { maxLength: 5 }).map(jsonObject),
})).node;

/** A value of the wrong JSON type for a string field (null not included: some fields allow it). */
export const notAString: fc.Arbitrary<JsonText> = fc.oneof(
  fc.boolean().map(String),
  fc.integer().map(String),
  rawNumber,
  fc.array(scalarText, { maxLength: 3 }).map(jsonArray),
  fc.array(fc.tuple(anyKey, scalarText), { maxLength: 3 }).map(jsonObject),
);

/** A value of the wrong JSON type for an integer field. */
export const notANumber: fc.Arbitrary<JsonText> = fc.oneof(
  fc.boolean().map(String),
  fc.constant('null'),
  hostileString(12).map(jsonString),
  fc.constantFrom('"1"', '"42"', '" 1"', '"1e3"'),
  fc.array(fc.integer({ min: 1, max: 3 }).map(String), { maxLength: 2 }).map(jsonArray),
  fc.constantFrom('{}', '{"id":1}', '[1]'),
);

export { jsonString };
