import { isUtf8 } from 'node:buffer';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { CreateContactBody, CreateNoteBody } from '../../src/contacts/contact.schemas';
import {
  anyJsonText,
  exchangeBytes,
  expectClientError,
  expectNoPrototypePollution,
  fcOptions,
  resetAndSeed,
  sendRaw,
  snapshot,
  startFuzzApp,
  storable,
  wireRequest,
  type FuzzApp,
  type HttpResult,
} from './fuzz-support';

/**
 * What arrives on the wire: headers (content-type, charset, content-encoding and the rest) and body
 * bytes that are not what the headers promise, through node:http, and hand-written malformed
 * HTTP/1.1 through a raw socket. Always a 4xx, never a 5xx or a hang, and no row changed.
 */

let app: FuzzApp;
beforeAll(async () => {
  app = await startFuzzApp();
});
// Seeded once: every check below compares the tables before and after its own request.
beforeAll(() => resetAndSeed(app));
afterEach(() => expectNoPrototypePollution());
afterAll(() => app.close());

const VALID_CREATE = '{"name":"Wire Fuzz","email":"wire@example.com"}';

/** Characters Node's HTTP client lets through in a header value (tab, printable ASCII, latin1). */
const headerChar = fc.oneof(
  { weight: 10, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.constant('\t') },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }).map((code) => String.fromCharCode(code)) },
);
const headerValue = fc.string({ unit: headerChar, maxLength: 60 });

/** Checks a response to a request that may or may not have been accepted: a rejection changed nothing. */
async function expectRejectedCleanlyOrAccepted(res: HttpResult, before: Awaited<ReturnType<typeof snapshot>>): Promise<void> {
  if (res.status >= 200 && res.status < 300) return;
  expectClientError(res);
  expect(await snapshot(app.t)).toEqual(before);
}

// ---------------------------------------------------------------------------------------------

describe('headers', () => {
  const contentType = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        'application/json',
        'application/json; charset=utf-8',
        'APPLICATION/JSON; CHARSET=UTF-8',
        'application/json;charset="utf-8"',
        'application/json; charset=utf-16',
        'application/json; charset=utf-8; charset=latin1',
        'application/json; charset=latin1',
        'application/json; charset=',
        'application/json; charset=utf-xyz',
        'application/json;;;',
        'application/json; boundary=x',
        'application/jsonx',
        'application/json-patch+json',
        'application/merge-patch+json',
        'application/*',
        '*/*',
        'text/json',
        'text/plain',
        'text/html; charset=utf-8',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=----x',
        'application/xml',
        '',
        ' ',
        ';',
        '/',
        'application/',
        'json',
      ),
    },
    { weight: 1, arbitrary: headerValue },
  );

  const contentEncoding = fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'GZIP', 'x-gzip', 'gzip, deflate', 'compress', 'zstd', '', 'garbage');
  const compressors: Record<string, (body: Buffer) => Buffer> = { gzip: gzipSync, deflate: deflateSync, br: brotliCompressSync };

  const request = fc.record(
    {
      route: fc.constantFrom('POST /contact', 'PATCH /contact', 'POST /contact/note', 'GET /contacts', 'GET /health', 'DELETE /contact/3'),
      body: fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom(VALID_CREATE, '{"contact_id":1,"content":"hi"}', '{"contact_id":2,"fields":{"name":"Wired"}}') },
        { weight: 2, arbitrary: anyJsonText },
        { weight: 1, arbitrary: fc.constantFrom('', 'not json', '{', 'name=Ada', '<contact/>') },
      ),
      contentType,
      contentEncoding,
      /** When the encoding is one zlib knows: compress the body as announced, or send it as is. */
      compress: fc.boolean(),
      accept: headerValue,
      acceptEncoding: headerValue,
      requestId: headerValue,
      apiKey: headerValue,
      authorization: fc.oneof(headerValue, headerValue.map((value) => `Bearer ${value}`)),
      origin: fc.oneof(fc.constant('https://evil.example'), headerValue),
      forwardedFor: headerValue,
      cookie: headerValue,
    },
    { requiredKeys: ['route', 'body', 'compress'] },
  );

  it('answers any combination of headers with a success or a 4xx in the error shape, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(request, async (req) => {
        const [method, path] = req.route.split(' ') as [string, string];
        const encoding = req.contentEncoding?.trim().toLowerCase();
        const compress = req.compress && encoding !== undefined ? compressors[encoding] : undefined;
        const body = compress ? compress(Buffer.from(req.body)) : Buffer.from(req.body);
        const headers: Record<string, string> = Object.fromEntries(
          Object.entries({
            'content-type': req.contentType,
            'content-encoding': req.contentEncoding,
            accept: req.accept,
            'accept-encoding': req.acceptEncoding,
            'x-request-id': req.requestId,
            'x-api-key': req.apiKey,
            authorization: req.authorization,
            origin: req.origin,
            'x-forwarded-for': req.forwardedFor,
            cookie: req.cookie,
          }).filter((entry): entry is [string, string] => entry[1] !== undefined),
        );
        const before = await snapshot(app.t);
        const res = await sendRaw(app.port, { method, path, headers, body: body.length > 0 ? body : undefined });
        expect(res.status).toBeLessThan(500);
        await expectRejectedCleanlyOrAccepted(res, before);
      }),
      fcOptions(120),
    );
  }, 60_000);

  it.each([
    ['utf-16le', Buffer.from(VALID_CREATE, 'utf16le')],
    ['utf-16', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(VALID_CREATE, 'utf16le')])],
    ['utf-16be', Buffer.from(VALID_CREATE, 'utf16le').swap16()],
    ['utf-7', Buffer.from(VALID_CREATE, 'ascii')],
    ['latin1', Buffer.from(VALID_CREATE, 'latin1')],
    ['us-ascii', Buffer.from(VALID_CREATE, 'ascii')],
  ])('answers 415 to JSON declared (and encoded) as %s: the README accepts UTF-8 only', async (charset, body) => {
    const before = await snapshot(app.t);
    const res = await sendRaw(app.port, { method: 'POST', path: '/contact', headers: { 'content-type': `application/json; charset=${charset}` }, body });
    expectClientError(res, { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });
    expect(await snapshot(app.t)).toEqual(before);
  });

  it.each(['utf-8', 'UTF-8', '"utf-8"'])('accepts JSON declared as charset=%s', async (charset) => {
    const res = await sendRaw(app.port, { method: 'POST', path: '/contact', headers: { 'content-type': `application/json; charset=${charset}` }, body: '{"name":"Charset"}' });
    expect(res.status).toBe(201);
  });

  const corrupt: Array<[string, Buffer]> = [
    ['gzip', Buffer.from(VALID_CREATE)],
    ['gzip', gzipSync(VALID_CREATE).subarray(0, 15)],
    ['deflate', Buffer.from('xx')],
    ['br', Buffer.from('not brotli at all')],
  ];
  it.each(corrupt)('answers a body that does not decompress as content-encoding: %s says with a 4xx, not 500', async (encoding, body) => {
    const before = await snapshot(app.t);
    const res = await sendRaw(app.port, { method: 'POST', path: '/contact', headers: { 'content-type': 'application/json', 'content-encoding': encoding }, body });
    expectClientError(res, { status: [400, 415] });
    expect(await snapshot(app.t)).toEqual(before);
  });

  it('answers 413 to a compressed body that inflates past the limit (a zip bomb)', async () => {
    const before = await snapshot(app.t);
    const body = gzipSync(`{"name":"${'a'.repeat(5_000_000)}"}`);
    const res = await sendRaw(app.port, { method: 'POST', path: '/contact', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body });
    expectClientError(res, { status: 413, code: 'PAYLOAD_TOO_LARGE' });
    expect(await snapshot(app.t)).toEqual(before);
  });
});

describe('API keys', () => {
  const KEYS = ['fuzz-key-1', 'fuzz-key-2'];
  let keyed: FuzzApp;
  beforeAll(async () => {
    keyed = await startFuzzApp({ env: { API_KEYS: KEYS.join(',') } });
  });
  afterAll(() => keyed.close());

  const keyish = fc.oneof(
    fc.constantFrom(...KEYS, ` ${KEYS[0]} `, KEYS[0]!.toUpperCase(), KEYS.join(','), `${KEYS[0]} ${KEYS[1]}`, `${KEYS[0]}\t`, 'fuzz-key-', '', ' '),
    fc.string({ unit: headerChar, maxLength: 40 }),
  );
  const attempt = fc.record(
    {
      route: fc.constantFrom('GET /contacts', 'GET /contact/1', 'DELETE /contact/999', 'GET /health', 'GET /contact/health', 'GET /nowhere'),
      apiKey: keyish,
      authorization: fc.oneof(keyish, keyish.map((key) => `Bearer ${key}`), keyish.map((key) => `bearer  ${key}`), keyish.map((key) => `Basic ${key}`)),
    },
    { requiredKeys: ['route'] },
  );

  /** The key a caller presents: x-api-key, else a Bearer token (both trimmed), as the README describes. */
  const presented = (apiKey?: string, authorization?: string) =>
    apiKey?.trim() || /^Bearer\s+(.+)$/i.exec(authorization?.trim() ?? '')?.[1]?.trim() || undefined;

  it('answers 401 in the error shape unless a configured key is presented, whatever the headers; probes stay open', async () => {
    await fc.assert(
      fc.asyncProperty(attempt, async ({ route, apiKey, authorization }) => {
        const [method, path] = route.split(' ') as [string, string];
        const headers = Object.fromEntries(Object.entries({ 'x-api-key': apiKey, authorization }).filter((entry): entry is [string, string] => entry[1] !== undefined));
        const res = await sendRaw(keyed.port, { method, path, headers });
        const key = presented(apiKey, authorization);
        if (path === '/health' || path === '/contact/health') expect(res.status).toBe(200);
        else if (key === undefined || !KEYS.includes(key)) expectClientError(res, { status: 401, code: 'UNAUTHORIZED' });
        else if (res.status >= 400) expect(expectClientError(res).error.code).not.toBe('UNAUTHORIZED');
        else expect(res.status).toBe(200);
      }),
      fcOptions(60),
    );
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------

describe('body bytes that are not UTF-8', () => {
  const INVALID_SEQUENCES = [
    [0xc3, 0x28], // a lead byte followed by ASCII
    [0xa0, 0xa1], // continuation bytes alone
    [0xe2, 0x28, 0xa1],
    [0xf0, 0x28, 0x8c, 0xbc],
    [0xc0, 0xaf], // overlong '/'
    [0xed, 0xa0, 0x80], // a UTF-16 surrogate encoded as UTF-8 (CESU-8)
    [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
    [0xff],
    [0xfe, 0xff],
    [0xe2, 0x82], // truncated '€'
  ];
  const bytes = fc
    .array(
      fc.oneof(
        { weight: 2, arbitrary: fc.constantFrom(...INVALID_SEQUENCES) },
        { weight: 2, arbitrary: fc.array(fc.integer({ min: 0x41, max: 0x7a }), { minLength: 1, maxLength: 3 }) },
        { weight: 1, arbitrary: fc.array(fc.integer({ min: 0x80, max: 0xff }), { minLength: 1, maxLength: 3 }) },
      ),
      { minLength: 1, maxLength: 4 },
    )
    .map((parts) => parts.flat());

  it('rejects a JSON body with bytes that are not UTF-8 (4xx, nothing stored) instead of storing U+FFFD', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('name', 'content'), bytes, async (field, inserted) => {
        const [path, prefix] = field === 'name' ? ['/contact', '{"name":"'] : ['/contact/note', '{"contact_id":1,"content":"'];
        const body = Buffer.concat([Buffer.from(prefix), Buffer.from(inserted), Buffer.from('"}')]);
        const before = await snapshot(app.t);
        const res = await sendRaw(app.port, { method: 'POST', path, headers: { 'content-type': 'application/json' }, body });
        if (isUtf8(body)) {
          // Well-formed after all: the usual rules apply.
          let parsed: unknown;
          try {
            parsed = JSON.parse(body.toString('utf8'));
          } catch {
            expectClientError(res, { status: 400, code: 'MALFORMED_JSON' });
            return;
          }
          const schema = field === 'name' ? CreateContactBody : CreateNoteBody;
          if (schema.safeParse(parsed).success && storable(parsed)) expect([201, 404, 409]).toContain(res.status);
          else expectClientError(res, { status: 400, code: 'VALIDATION_ERROR' });
          return;
        }
        expectClientError(res, { status: [400, 415] });
        expect(await snapshot(app.t)).toEqual(before);
      }),
      fcOptions(40),
    );
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------

describe('malformed HTTP/1.1 on a raw socket', () => {
  const post = (headers: string[], body = '') =>
    wireRequest(['POST /contact HTTP/1.1', 'Host: localhost', 'Connection: close', 'Content-Type: application/json', ...headers], body);
  const valid = '{"name":"Raw"}';

  /** Requests Express answers: the JSON error shape is required. */
  const answeredByTheApp: Array<[string, string, number, string]> = [
    ['invalid JSON with correct headers', post(['Content-Length: 8'], '{"name":'), 400, 'MALFORMED_JSON'],
    ['an empty body declared as JSON', post(['Content-Length: 0']), 400, 'VALIDATION_ERROR'],
    ['an empty chunked body', post(['Transfer-Encoding: chunked'], '0\r\n\r\n'), 400, 'VALIDATION_ERROR'],
    ['a JSON scalar at the top', post(['Content-Length: 4'], 'null'), 400, 'MALFORMED_JSON'],
    ['chunked JSON that stops mid-value', post(['Transfer-Encoding: chunked'], '3\r\n{"n\r\n5\r\n' + 'ame":\r\n0\r\n\r\n'), 400, 'MALFORMED_JSON'],
    ['a body on GET that is not JSON', wireRequest(['GET /contacts HTTP/1.1', 'Host: localhost', 'Connection: close', 'Content-Type: application/json', 'Content-Length: 1'], '{'), 400, 'MALFORMED_JSON'],
  ];

  it.each(answeredByTheApp)('answers %s with a JSON error, at once', async (_label, bytes, status, code) => {
    const before = await snapshot(app.t);
    const exchange = await exchangeBytes(app.port, bytes);
    expect(exchange.timedOut).toBe(false);
    expect(exchange.response).toBeDefined();
    expectClientError({ status: exchange.response!.status, headers: exchange.response!.headers, text: exchange.response!.text }, { status, code });
    expect(await snapshot(app.t)).toEqual(before);
  }, 10_000);

  /**
   * Requests Node's HTTP parser refuses before Express sees them. The server's 'clientError'
   * handler (src/http/client-errors.ts) answers them in the error shape, except the two Node
   * refuses after parsing, without asking it: no Host header (400) and an unmet Expect (417).
   */
  const answeredByNodeItself = new Set(['no Host header', 'an unmet Expect']);
  const refusedByTheParser: Array<[string, string, { endWriteSide?: boolean; endWriteSideAfterMs?: number }]> = [
    ['a Content-Length shorter than the body', post(['Content-Length: 5'], valid), {}],
    ['a Content-Length longer than the body, then EOF', post(['Content-Length: 50'], valid), { endWriteSide: true }],
    ['a Content-Length longer than the body, EOF after a pause', post(['Content-Length: 50'], valid), { endWriteSideAfterMs: 300 }],
    ['a non-numeric Content-Length', post(['Content-Length: abc'], valid), {}],
    ['a negative Content-Length', post(['Content-Length: -1'], valid), {}],
    ['two different Content-Lengths', post(['Content-Length: 14', 'Content-Length: 15'], valid), {}],
    ['Content-Length and Transfer-Encoding together', post(['Content-Length: 14', 'Transfer-Encoding: chunked'], `e\r\n${valid}\r\n0\r\n\r\n`), {}],
    ['a chunk size that is not hex', post(['Transfer-Encoding: chunked'], `zz\r\n${valid}\r\n0\r\n\r\n`), {}],
    ['a chunk size that overflows', post(['Transfer-Encoding: chunked'], `ffffffffffffffffffff\r\n${valid}\r\n0\r\n\r\n`), {}],
    ['a truncated chunked body, then EOF', post(['Transfer-Encoding: chunked'], 'e\r\n{"name"'), { endWriteSide: true }],
    ['an unknown Transfer-Encoding', post(['Transfer-Encoding: gzip'], valid), {}],
    ['a header name with a space', post(['Content-Length: 14', 'Bad Header: 1'], valid), {}],
    ['a control character in a header value', post(['Content-Length: 14', 'X-Request-Id: a\u0001b'], valid), {}],
    ['a 20 kB header', post(['Content-Length: 14', `X-Big: ${'a'.repeat(20_000)}`], valid), {}],
    ['no Host header', wireRequest(['POST /contact HTTP/1.1', 'Connection: close', 'Content-Type: application/json', 'Content-Length: 14'], valid), {}],
    ['a garbage request line', wireRequest(['HELLO WORLD', 'Connection: close']), {}],
    ['an unknown method', wireRequest(['FOO /contact HTTP/1.1', 'Host: localhost', 'Connection: close']), {}],
    ['an unmet Expect', post(['Content-Length: 14', 'Expect: something-else'], valid), {}],
  ];

  it.each(refusedByTheParser)('refuses %s with a 4xx and closes, without hanging or storing anything', async (label, bytes, options) => {
    const before = await snapshot(app.t);
    const exchange = await exchangeBytes(app.port, bytes, { timeoutMs: 3_000, ...options });
    expect(exchange.timedOut).toBe(false);
    // Either a 4xx, or (for a body that never arrives) a closed connection without an answer.
    if (exchange.response) {
      expect(exchange.response.status).toBeGreaterThanOrEqual(400);
      expect(exchange.response.status).toBeLessThan(500);
      if (!answeredByNodeItself.has(label)) {
        expectClientError({ status: exchange.response.status, headers: exchange.response.headers, text: exchange.response.text });
      }
    }
    expect(await snapshot(app.t)).toEqual(before);
    // The service still answers.
    expect((await sendRaw(app.port, { method: 'GET', path: '/health' })).status).toBe(200);
  }, 10_000);
});
