import { randomBytes } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { findOperation, type Operation } from './pipedrive-contract';

export interface FakeContactItem {
  value: string;
  primary: boolean;
  label: string;
}

export interface FakePerson {
  id: number;
  name: string;
  emails: FakeContactItem[];
  phones: FakeContactItem[];
  /** v2's flag for a deleted person (deletePerson). */
  is_deleted: boolean;
  /** RFC 3339, to the second, as v2 answers. */
  add_time: string;
  /** When the person last changed: through the API, or a user's edit (editPerson, deletePerson, mergePersons). */
  update_time: string;
}

/** Now as Pipedrive v2 writes times: RFC 3339 in UTC, to the second. */
const timestamp = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

export interface FakeNote {
  id: number;
  content: string;
  person_id: number;
}

export interface RecordedRequest {
  method: string;
  /** Without the query string. */
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** Parsed JSON, or undefined when there was no body or it was not JSON. */
  body: unknown;
  at: number;
}

export type FaultKind =
  /** Waits, then answers normally. */
  | { kind: 'latency'; ms: number }
  /** Answers `status` with a Pipedrive error envelope, or `body` verbatim; 429s carry the rate-limit headers. */
  | { kind: 'status'; status: number; retryAfterSeconds?: number; headers?: Record<string, string>; body?: string }
  /** Never answers. */
  | { kind: 'hang' }
  /** Closes the connection without doing anything. */
  | { kind: 'drop' }
  /** 403 with an HTML page, not JSON, as Cloudflare answers persistent calling after 429s. */
  | { kind: 'blocked' }
  /** Does the work, then closes the connection instead of answering. */
  | { kind: 'lose-response' };

export type Fault = FaultKind & {
  /** How many matching requests it affects; all of them when absent. */
  times?: number;
  match?: { method?: string; path?: RegExp };
};

export interface FakePipedriveOptions {
  token?: string;
  /**
   * The burst limit: fixed windows counted from start-up (or reset()); a generous default so other
   * tests never hit it. Pipedrive's API-token plans: 20 / 40 / 100 / 120 requests per 2 s.
   */
  rateLimit?: { limit: number; windowMs: number };
  /** Search's own bucket, counted apart: 10 requests per 2 s on every plan. */
  searchLimit?: { limit: number; windowMs: number };
  /**
   * The company's daily token budget (30,000 × plan multiplier × seats); every call costs its
   * operation's x-token-cost; once spent, every call answers 429 until the day ends. A generous
   * default so other tests never hit it.
   */
  dailyTokens?: number;
  /** How long a "day" lasts, for tests: the budget comes back when it ends. */
  dayMs?: number;
  /**
   * The daily-token headers clients read (x-daily-ratelimit-token-limit / -remaining), which
   * Pipedrive does not document and is reported to leave out of some answers: always, never, or on
   * every other answer.
   */
  tokenHeaders?: 'always' | 'never' | 'sometimes';
}

interface Reply {
  status: number;
  body: unknown;
}

const ERROR_INFO = 'Please check developers.pipedrive.com for more information about Pipedrive API.';
const SEARCH_FIELDS = new Set(['custom_fields', 'email', 'notes', 'phone', 'name']);
const DAY_MS = 86_400_000;
/** A Cloudflare block page: what persistent calling after 429s is reported to get. */
const BLOCKED_PAGE = '<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head><body><h1>Sorry, you have been blocked</h1></body></html>';

/** A stand-in for Pipedrive's REST API (the persons and notes endpoints the mirror uses) on 127.0.0.1. */
export class FakePipedrive {
  /** Every fake started and not yet closed: the suite checks their contract violations after each test. */
  static readonly running = new Set<FakePipedrive>();

  readonly persons = new Map<number, FakePerson>();
  /**
   * Requests that Pipedrive's published documents reject (answered 400, as Pipedrive would), calls
   * to operations they do not have, and answers of this fake that break them.
   */
  readonly contractViolations: string[] = [];
  readonly notes = new Map<number, FakeNote>();
  readonly requests: RecordedRequest[] = [];
  private faults: { fault: Fault; left: number }[] = [];
  private nextPersonId = 1;
  private nextNoteId = 1;
  private windowStart = Date.now();
  private window = { index: 0, used: 0 };
  private rejections = new Map<number, number>();
  private dailyRequests = 0;
  private searchWindow = { index: 0, used: 0 };
  private dayStart = Date.now();
  private tokensToday = 0;
  private answers = 0;
  /** Tokens spent since start-up or reset(), across days. */
  tokensSpent = 0;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly token: string,
    private readonly rateLimit: { limit: number; windowMs: number },
    private readonly limits: Required<Omit<FakePipedriveOptions, 'token' | 'rateLimit'>>,
  ) {
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.on('request', (req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        if (res.headersSent) res.destroy();
        else res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify(failure(`fake-pipedrive failed: ${String(error)}`)));
      });
    });
  }

  static async start(options: FakePipedriveOptions = {}): Promise<FakePipedrive> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const { port } = server.address() as AddressInfo;
    const token = options.token ?? `fake-token-${randomBytes(12).toString('hex')}`;
    const fake = new FakePipedrive(server, `http://127.0.0.1:${port}`, token, options.rateLimit ?? { limit: 10_000, windowMs: 2_000 }, {
      searchLimit: options.searchLimit ?? { limit: 10, windowMs: 2_000 },
      dailyTokens: options.dailyTokens ?? 10_000_000,
      dayMs: options.dayMs ?? DAY_MS,
      tokenHeaders: options.tokenHeaders ?? 'always',
    });
    FakePipedrive.running.add(fake);
    return fake;
  }

  /** Destroys open connections (hung requests included) and cancels pending latency timers. */
  async close(): Promise<void> {
    FakePipedrive.running.delete(this);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Forgets requests, persons, notes, faults and rate-limit counts. */
  reset(): void {
    this.requests.length = 0;
    this.persons.clear();
    this.notes.clear();
    this.faults = [];
    this.windowStart = Date.now();
    this.window = { index: 0, used: 0 };
    this.rejections.clear();
    this.dailyRequests = 0;
    this.searchWindow = { index: 0, used: 0 };
    this.dayStart = Date.now();
    this.tokensToday = 0;
    this.tokensSpent = 0;
    this.answers = 0;
  }

  fault(fault: Fault): void {
    this.faults.push({ fault, left: fault.times ?? Infinity });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Window index (from start-up or reset()) → number of 429s answered in it. */
  rejectionsPerWindow(): Map<number, number> {
    return new Map(this.rejections);
  }

  seedPerson(person: { name: string; email?: string; phone?: string }): FakePerson {
    const item = (value: string | undefined) => (value === undefined ? [] : [{ value, primary: true, label: 'work' }]);
    const now = timestamp();
    const created = { id: this.nextPersonId++, name: person.name, emails: item(person.email), phones: item(person.phone), is_deleted: false, add_time: now, update_time: now };
    this.persons.set(created.id, created);
    return created;
  }

  /** What a user's delete does: the person stays 30 days, flagged `is_deleted`, out of searches. */
  deletePerson(id: number): void {
    const person = this.persons.get(id);
    if (person) {
      person.is_deleted = true;
      person.update_time = timestamp();
    }
  }

  /** What a user's edit in Pipedrive does: `edit` changes the person, and its update time moves on. */
  editPerson(id: number, edit: (person: FakePerson) => void): FakePerson {
    const person = this.persons.get(id);
    if (!person) throw new Error(`no person ${id}`);
    edit(person);
    person.update_time = timestamp();
    return person;
  }

  /**
   * What a user's merge does: `id` disappears (404 from then on), its notes move to `intoId`, and
   * its emails and phones that the survivor lacks are added to the survivor's, not primary.
   */
  mergePersons(id: number, intoId: number): FakePerson {
    const merged = this.persons.get(id);
    const survivor = this.persons.get(intoId);
    if (!merged || !survivor || id === intoId) throw new Error(`cannot merge person ${id} into ${intoId}`);
    for (const field of ['emails', 'phones'] as const) {
      for (const item of merged[field]) {
        if (!survivor[field].some((kept) => kept.value === item.value)) survivor[field].push({ ...item, primary: false });
      }
    }
    for (const note of this.notes.values()) if (note.person_id === id) note.person_id = intoId;
    this.persons.delete(id);
    survivor.update_time = timestamp();
    return survivor;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const text = await readBody(req);
    const body = parseJson(text);
    const request: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body,
      at: Date.now(),
    };
    this.requests.push(request);
    const contract = this.checkRequest(request, text);
    const limits = this.countRequest(contract.operation);
    const fault = this.takeFault(request);

    if (fault?.kind === 'hang') return;
    if (fault?.kind === 'drop') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'latency') await this.sleep(fault.ms);
    if (fault?.kind === 'blocked') {
      this.send(res, { status: 403, body: BLOCKED_PAGE }, { 'content-type': 'text/html; charset=UTF-8' }, limits.index, true);
      return;
    }

    if (fault?.kind === 'status') {
      const headers = { ...limits.headers };
      if (fault.status === 429) headers['x-ratelimit-remaining'] = '0';
      if (fault.retryAfterSeconds !== undefined) headers['retry-after'] = String(fault.retryAfterSeconds);
      const reply = { status: fault.status, body: fault.body ?? failure(STATUS_CODES[fault.status] ?? 'Error') };
      this.send(res, reply, { ...headers, ...fault.headers }, limits.index, fault.body !== undefined);
      return;
    }

    const reply = this.answer(request, text, limits.over, contract.operation ? contract.problems : []);
    if (reply.status !== 401 && reply.status !== 429) this.spendTokens(contract.operation?.tokenCost ?? 0);
    if (reply.status === 200 && contract.operation) {
      for (const problem of contract.operation.responseProblems(reply.body)) {
        this.contractViolations.push(`the fake's answer to ${request.method} ${request.path}: ${problem}`);
      }
    }
    if (fault?.kind === 'lose-response') {
      req.socket.destroy();
      return;
    }
    this.send(res, reply, { ...limits.headers, ...this.tokenHeaders() }, limits.index, false);
  }

  /** Checks the request against Pipedrive's documents, recording what they reject. */
  private checkRequest(request: RecordedRequest, text: string) {
    const found = findOperation(request.method, request.path);
    const problems = found
      ? found.operation.requestProblems({ query: request.query, params: found.params, body: text === '' ? undefined : request.body })
      : [`no such operation in Pipedrive's documents`];
    for (const problem of problems) this.contractViolations.push(`${request.method} ${request.path}: ${problem}`);
    return { operation: found?.operation, problems };
  }

  private answer(request: RecordedRequest, text: string, over: 'burst' | 'search' | 'daily' | undefined, problems: string[]): Reply {
    if (request.headers['x-api-token'] !== this.token) return { status: 401, body: failure('unauthorized access') };
    if (over === 'daily') return { status: 429, body: failure('Daily token budget exceeded') };
    if (over) return { status: 429, body: failure('Request over limit') };
    if (text !== '' && request.body === undefined) return { status: 400, body: failure('Request body is not valid JSON') };
    if (problems.length > 0) return { status: 400, body: failure(`Validation failed: ${problems.join('; ')}`) };
    return this.route(request);
  }

  private route(request: RecordedRequest): Reply {
    const { method, path } = request;
    const personId = /^\/api\/v2\/persons\/(\d+)$/.exec(path)?.[1];
    if (method === 'POST' && path === '/api/v2/persons') return this.createPerson(request.body);
    if (method === 'GET' && path === '/api/v2/persons/search') return this.search(request.query);
    if (method === 'GET' && path === '/api/v2/persons') return this.listPersons(request.query);
    if (method === 'GET' && personId !== undefined) return this.getPerson(Number(personId));
    if (method === 'PATCH' && personId !== undefined) return this.updatePerson(Number(personId), request.body);
    if (method === 'DELETE' && personId !== undefined) return this.deletePersonRequest(Number(personId));
    const mergedId = /^\/v1\/persons\/(\d+)\/merge$/.exec(path)?.[1];
    if (method === 'PUT' && mergedId !== undefined) return this.mergeRequest(Number(mergedId), request.body);
    if (method === 'POST' && path === '/v1/notes') return this.addNote(request.body);
    if (method === 'GET' && path === '/v1/notes') return this.listNotes(request.query);
    return { status: 404, body: failure(`Unknown method ${method} ${path}`) };
  }

  /** v1 list: `data` is null when there are none; newest first with sort=add_time DESC. */
  private listNotes(query: Record<string, string>): Reply {
    const personId = Number(query.person_id);
    const limit = Number(query.limit ?? 100);
    let notes = [...this.notes.values()].filter((note) => query.person_id === undefined || note.person_id === personId);
    if (query.sort === 'add_time DESC') notes = notes.reverse();
    notes = notes.slice(0, limit);
    return { status: 200, body: { success: true, data: notes.length > 0 ? notes : null, additional_data: { pagination: { start: 0, limit, more_items_in_collection: false } } } };
  }

  private createPerson(body: unknown): Reply {
    const fields = personFields(body, true);
    if (typeof fields === 'string') return { status: 400, body: failure(fields) };
    const now = timestamp();
    const person: FakePerson = {
      id: this.nextPersonId++,
      name: fields.name ?? '',
      emails: fields.emails ?? [],
      phones: fields.phones ?? [],
      is_deleted: false,
      add_time: now,
      update_time: now,
    };
    this.persons.set(person.id, person);
    return success(personData(person));
  }

  private updatePerson(id: number, body: unknown): Reply {
    const person = this.persons.get(id);
    if (!person || person.is_deleted) return { status: 404, body: failure('Person not found') };
    const fields = personFields(body, false);
    if (typeof fields === 'string') return { status: 400, body: failure(fields) };
    Object.assign(person, fields, { update_time: timestamp() });
    return success(personData(person));
  }

  /**
   * v2's list: persons not deleted, by id, `limit` (≤ 500, default 100) from an opaque `cursor`;
   * `updated_since` keeps those updated at or after it. `next_cursor` is null on the last page.
   */
  private listPersons(query: Record<string, string>): Reply {
    const limit = Number(query.limit ?? 100);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) return { status: 400, body: failure('Validation failed: limit: must be between 1 and 500') };
    const since = query.updated_since === undefined ? undefined : Date.parse(query.updated_since);
    if (since !== undefined && Number.isNaN(since)) return { status: 400, body: failure('Validation failed: updated_since: must be an RFC 3339 date-time') };
    const after = query.cursor === undefined ? 0 : Number(Buffer.from(query.cursor, 'base64url').toString('utf8'));
    if (!Number.isInteger(after)) return { status: 400, body: failure('Validation failed: cursor: invalid cursor') };
    const matching = [...this.persons.values()]
      .filter((person) => !person.is_deleted && person.id > after && (since === undefined || Date.parse(person.update_time) >= since))
      .sort((a, b) => a.id - b.id);
    const page = matching.slice(0, limit);
    const last = page.at(-1);
    const nextCursor = matching.length > limit && last ? Buffer.from(String(last.id), 'utf8').toString('base64url') : null;
    return { status: 200, body: { success: true, data: page.map(personData), additional_data: { next_cursor: nextCursor } } };
  }

  private deletePersonRequest(id: number): Reply {
    const person = this.persons.get(id);
    if (!person || person.is_deleted) return { status: 404, body: failure('Person not found') };
    this.deletePerson(id);
    return success({ id });
  }

  private mergeRequest(id: number, body: unknown): Reply {
    const intoId = isRecord(body) ? body.merge_with_id : undefined;
    if (typeof intoId !== 'number' || !Number.isInteger(intoId)) return { status: 400, body: failure('Validation failed: merge_with_id: Parameter must be an integer') };
    if (!this.persons.get(id) || !this.persons.get(intoId) || id === intoId) return { status: 404, body: failure('Person not found') };
    return success(personData(this.mergePersons(id, intoId)));
  }

  private getPerson(id: number): Reply {
    const person = this.persons.get(id);
    return person ? success(personData(person)) : { status: 404, body: failure('Person not found') };
  }

  private search(query: Record<string, string>): Reply {
    const { term, exact_match: exactMatch } = query;
    const fields = (query.fields ?? 'custom_fields,email,notes,phone,name').split(',');
    if (term === undefined || term === '') return { status: 400, body: failure('Validation failed: term: Parameter is required') };
    if (!fields.every((field) => SEARCH_FIELDS.has(field))) return { status: 400, body: failure(`Validation failed: fields: invalid value ${query.fields}`) };
    if (exactMatch !== undefined && exactMatch !== 'true' && exactMatch !== 'false') {
      return { status: 400, body: failure('Validation failed: exact_match: Parameter must be a boolean') };
    }
    if (exactMatch !== 'true' && term.length < 2) return { status: 400, body: failure('Validation failed: term: Must be at least 2 characters') };

    // Pipedrive's exact match is case-insensitive.
    const needle = term.toLowerCase();
    const matches = (value: string) => (exactMatch === 'true' ? value.toLowerCase() === needle : value.toLowerCase().includes(needle));
    const candidates = (person: FakePerson) => [
      ...(fields.includes('name') ? [person.name] : []),
      ...(fields.includes('email') ? person.emails.map((item) => item.value) : []),
      ...(fields.includes('phone') ? person.phones.map((item) => item.value) : []),
    ];
    const items = [...this.persons.values()]
      .filter((person) => !person.is_deleted && candidates(person).some(matches))
      .map((person) => ({
        result_score: 1,
        item: {
          id: person.id,
          type: 'person',
          name: person.name,
          phones: person.phones.map((item) => item.value),
          emails: person.emails.map((item) => item.value),
          visible_to: 3,
          owner: { id: 1 },
          custom_fields: [],
          notes: [],
        },
      }));
    return { status: 200, body: { success: true, data: { items }, additional_data: { next_cursor: null } } };
  }

  private addNote(body: unknown): Reply {
    if (!isRecord(body)) return { status: 400, body: failure('Request body must be a JSON object') };
    const unknownField = Object.keys(body).find((key) => key !== 'content' && key !== 'person_id');
    if (unknownField !== undefined) return { status: 400, body: failure(`Field ${unknownField} is not supported by the fake`) };
    const { content, person_id: personId } = body;
    if (typeof content !== 'string' || content.trim() === '') return { status: 400, body: failure('Validation failed: content: Parameter is required') };
    if (typeof personId !== 'number' || !Number.isInteger(personId)) {
      return { status: 400, body: failure('Validation failed: person_id: Parameter must be an integer') };
    }
    if (!this.persons.get(personId) || this.persons.get(personId)?.is_deleted) return { status: 400, body: failure('Person not found') };
    const note: FakeNote = { id: this.nextNoteId++, content, person_id: personId };
    this.notes.set(note.id, note);
    return success({ ...note, active_flag: true, add_time: new Date().toISOString().slice(0, 19).replace('T', ' ') });
  }

  /** Counts the request in the burst window, the search bucket and the day; says which limit it is over. */
  private countRequest(operation: Operation | undefined): {
    index: number;
    over: 'burst' | 'search' | 'daily' | undefined;
    headers: Record<string, string>;
  } {
    const { limit, windowMs } = this.rateLimit;
    const now = Date.now();
    const index = Math.floor((now - this.windowStart) / windowMs);
    if (index !== this.window.index) this.window = { index, used: 0 };
    this.window.used += 1;
    const { searchLimit, dailyTokens, dayMs } = this.limits;
    let overSearch = false;
    if (operation?.search) {
      const searchIndex = Math.floor((now - this.windowStart) / searchLimit.windowMs);
      if (searchIndex !== this.searchWindow.index) this.searchWindow = { index: searchIndex, used: 0 };
      this.searchWindow.used += 1;
      overSearch = this.searchWindow.used > searchLimit.limit;
    }
    if (now - this.dayStart >= dayMs) {
      this.dayStart += Math.floor((now - this.dayStart) / dayMs) * dayMs;
      this.tokensToday = 0;
      this.dailyRequests = 0;
    }
    this.dailyRequests += 1;
    const overDaily = this.tokensToday + (operation?.tokenCost ?? 0) > dailyTokens;
    const resetSeconds = Math.max(1, Math.ceil((this.windowStart + (index + 1) * windowMs - now) / 1000));
    return {
      index,
      over: overDaily ? 'daily' : this.window.used > limit ? 'burst' : overSearch ? 'search' : undefined,
      headers: {
        'x-ratelimit-limit': String(limit),
        'x-ratelimit-remaining': String(Math.max(0, limit - this.window.used)),
        'x-ratelimit-reset': String(resetSeconds),
        'x-daily-requests-left': String(Math.max(0, 100_000 - this.dailyRequests)),
      },
    };
  }

  private spendTokens(cost: number): void {
    this.tokensToday += cost;
    this.tokensSpent += cost;
  }

  /** The undocumented daily-token headers, as `tokenHeaders` says. */
  private tokenHeaders(): Record<string, string> {
    this.answers += 1;
    const { tokenHeaders, dailyTokens } = this.limits;
    if (tokenHeaders === 'never' || (tokenHeaders === 'sometimes' && this.answers % 2 === 0)) return {};
    return {
      'x-daily-ratelimit-token-limit': String(dailyTokens),
      'x-daily-ratelimit-token-remaining': String(Math.max(0, dailyTokens - this.tokensToday)),
    };
  }

  private takeFault(request: RecordedRequest): FaultKind | undefined {
    const entry = this.faults.find(
      ({ fault, left }) =>
        left > 0 && (fault.match?.method === undefined || fault.match.method === request.method) && (fault.match?.path?.test(request.path) ?? true),
    );
    if (!entry) return undefined;
    entry.left -= 1;
    return entry.fault;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }

  private send(res: ServerResponse, reply: Reply, headers: Record<string, string>, windowIndex: number, raw: boolean): void {
    if (res.destroyed) return;
    if (reply.status === 429) this.rejections.set(windowIndex, (this.rejections.get(windowIndex) ?? 0) + 1);
    const payload = raw ? String(reply.body) : JSON.stringify(reply.body);
    res.writeHead(reply.status, { ...(!raw && { 'content-type': 'application/json' }), ...headers });
    res.end(payload);
  }
}

/** v2 validates strictly: types are not coerced, and this fake also refuses fields it does not model. */
function personFields(body: unknown, creating: boolean): Partial<Pick<FakePerson, 'name' | 'emails' | 'phones'>> | string {
  if (!isRecord(body)) return 'Request body must be a JSON object';
  const unknownField = Object.keys(body).find((key) => !['name', 'emails', 'phones'].includes(key));
  if (unknownField !== undefined) return `Field ${unknownField} is not supported by the fake`;
  const fields: Partial<Pick<FakePerson, 'name' | 'emails' | 'phones'>> = {};
  if (creating || 'name' in body) {
    if (typeof body.name !== 'string' || body.name.trim() === '') return 'Validation failed: name: Parameter must be a non-empty string';
    fields.name = body.name;
  }
  for (const key of ['emails', 'phones'] as const) {
    if (!(key in body)) continue;
    const items = contactItems(body[key]);
    if (items === undefined) return `Validation failed: ${key}: Parameter must be an array of { value: string, primary?: boolean, label?: string }`;
    fields[key] = items;
  }
  return fields;
}

function contactItems(value: unknown): FakeContactItem[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const items: FakeContactItem[] = [];
  for (const [index, item] of value.entries()) {
    if (!isRecord(item) || typeof item.value !== 'string') return undefined;
    if (Object.keys(item).some((key) => !['value', 'primary', 'label'].includes(key))) return undefined;
    if (item.primary !== undefined && typeof item.primary !== 'boolean') return undefined;
    if (item.label !== undefined && typeof item.label !== 'string') return undefined;
    items.push({ value: item.value, primary: item.primary ?? index === 0, label: item.label ?? 'work' });
  }
  return items;
}

function personData(person: FakePerson): Record<string, unknown> {
  return { ...person, emails: person.emails.map((item) => ({ ...item })), phones: person.phones.map((item) => ({ ...item })), owner_id: 1, visible_to: 3 };
}

function success(data: unknown): Reply {
  return { status: 200, body: { success: true, data, additional_data: null } };
}

function failure(error: string): { success: false; error: string; error_info: string; data: null } {
  return { success: false, error, error_info: ERROR_INFO, data: null };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
