import { randomBytes, randomUUID } from 'node:crypto';
import {
  createServer,
  request as httpRequest,
  STATUS_CODES,
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
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

/** A time (ms) as Pipedrive v2 writes times: RFC 3339 in UTC, to the second. */
const timestamp = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A person as v2 answers it (GET /api/v2/persons/{id}), and as webhooks v2 carry it. */
type PersonData = FakePerson & { owner_id: number; visible_to: number };

export type WebhookAction = 'create' | 'change' | 'delete';

/** A webhook subscription, as the webhooks API answers it (BaseWebhook in Pipedrive's v1 document). */
export interface FakeWebhook {
  id: number;
  company_id: number;
  owner_id: number;
  user_id: number;
  event_action: WebhookAction | '*';
  /** person, note, …, or '*'; the fake delivers events of persons only. */
  event_object: string;
  subscription_url: string;
  /** The fake delivers webhooks v2 only. */
  version: '2.0';
  /** Only active subscriptions get deliveries. */
  is_active: 0 | 1;
  add_time: string;
  remove_time: string | null;
  type: 'general';
  http_auth_user: string | null;
  http_auth_password: string | null;
  remove_reason: string | null;
  last_delivery_time: string | null;
  last_http_status: number | null;
  admin_id: number;
  name: string;
}

/** One attempt to deliver an event to a subscription. */
export interface FakeDelivery {
  webhookId: number;
  /** meta.id: the same on every attempt and duplicate of one delivery. */
  deliveryId: string;
  action: WebhookAction;
  entityId: number;
  attempt: number;
  /** The subscriber's answer, or what kept it from answering in time. */
  status: number | 'error' | 'timeout';
  /** When the attempt ended (Date.now(), not the fake's clock). */
  at: number;
}

export interface WebhookFault {
  /**
   * drop: the event is never delivered (a lost webhook); duplicate: delivered twice, both attempt 1;
   * hold: kept back until releaseHeld(), so that later events overtake it.
   */
  kind: 'drop' | 'duplicate' | 'hold';
  /** How many matching deliveries it affects; all of them when absent. */
  times?: number;
  match?: { action?: WebhookAction; entityId?: number };
}

/** A person's event, as every subscription that wants it is told. */
interface PersonEvent {
  action: WebhookAction;
  /** The person at the time of the event; for a delete, as it was. */
  data: PersonData;
  /** A change's fields that changed, with their values before; null otherwise. */
  previous: Partial<PersonData> | null;
  source: 'api' | 'app';
  /** Shared by the events of one operation (a merge's delete and change). */
  correlationId: string;
  /** RFC 3339 with milliseconds, on the fake's clock. */
  timestamp: string;
  /** The survivor, on the delete of a merged person. */
  mergedToId?: number;
}

/** An event for one subscription; its id (meta.id) stays the same on every attempt and duplicate. */
interface Delivery {
  webhook: FakeWebhook;
  id: string;
  event: PersonEvent;
}

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
  /**
   * Webhook deliveries: a 2xx answer within `timeoutMs` counts; anything else is retried after each
   * of `retryDelaysMs` in turn, then given up. Pipedrive's: 10 s, and retries after 3 s, 30 s, 150 s.
   */
  webhooks?: { retryDelaysMs?: number[]; timeoutMs?: number };
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

/**
 * A stand-in for Pipedrive's REST API (the persons, notes and webhooks endpoints the mirror uses) on
 * 127.0.0.1, which delivers Pipedrive's webhooks v2 for persons to subscribers on 127.0.0.1.
 */
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
  /** Webhook subscriptions, by id: what GET /v1/webhooks lists. */
  readonly webhooks = new Map<number, FakeWebhook>();
  /** Every delivery attempt, in the order they ended. */
  readonly deliveries: FakeDelivery[] = [];
  private faults: { fault: Fault; left: number }[] = [];
  private webhookFaults: { fault: WebhookFault; left: number }[] = [];
  private readonly deliverer: WebhookDeliverer;
  private nextPersonId = 1;
  private nextNoteId = 1;
  private nextWebhookId = 1;
  /** How far advanceClock() moved the fake's clock ahead of the real one. */
  private clockAdvance = 0;
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
    private readonly limits: Required<Omit<FakePipedriveOptions, 'token' | 'rateLimit' | 'webhooks'>>,
    webhookOptions: Required<NonNullable<FakePipedriveOptions['webhooks']>>,
  ) {
    this.deliverer = new WebhookDeliverer(webhookOptions, this.webhooks, this.deliveries);
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
    }, {
      retryDelaysMs: options.webhooks?.retryDelaysMs ?? [3_000, 30_000, 150_000],
      timeoutMs: options.webhooks?.timeoutMs ?? 10_000,
    });
    FakePipedrive.running.add(fake);
    return fake;
  }

  /** Destroys open connections (hung requests included), cancels pending latency timers and webhook deliveries. */
  async close(): Promise<void> {
    FakePipedrive.running.delete(this);
    this.deliverer.cancel();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /**
   * Forgets requests, persons, notes, faults, rate-limit counts, webhook subscriptions and
   * deliveries (cancelling those pending), and the clock's advance.
   */
  reset(): void {
    this.requests.length = 0;
    this.persons.clear();
    this.notes.clear();
    this.faults = [];
    this.webhookFaults = [];
    this.deliverer.cancel();
    this.webhooks.clear();
    this.deliveries.length = 0;
    this.clockAdvance = 0;
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

  /** Loses, duplicates or holds back matching webhook deliveries. */
  webhookFault(fault: WebhookFault): void {
    this.webhookFaults.push({ fault, left: fault.times ?? Infinity });
  }

  /** Clears request faults and webhook faults; deliveries already held stay held. */
  clearFaults(): void {
    this.faults = [];
    this.webhookFaults = [];
  }

  /** Sends the deliveries a `hold` fault kept back, after those that overtook them. */
  releaseHeld(): void {
    this.deliverer.release();
  }

  /**
   * Resolves when no delivery is under way or waiting for a retry (held ones do not count); rejects
   * after `timeoutMs`.
   */
  webhooksSettled(timeoutMs = 10_000): Promise<void> {
    return this.deliverer.settled(timeoutMs);
  }

  /**
   * Moves the fake's clock forward: every time it writes (update_time, add_time, meta.timestamp), so
   * that a test can make two edits whose update_time differ without sleeping. Rate limits and
   * delivery retries keep real time.
   */
  advanceClock(ms: number): void {
    this.clockAdvance += ms;
  }

  /** Window index (from start-up or reset()) → number of 429s answered in it. */
  rejectionsPerWindow(): Map<number, number> {
    return new Map(this.rejections);
  }

  seedPerson(person: { name: string; email?: string; phone?: string }): FakePerson {
    const item = (value: string | undefined) => (value === undefined ? [] : [{ value, primary: true, label: 'work' }]);
    const now = this.timestamp();
    const created = { id: this.nextPersonId++, name: person.name, emails: item(person.email), phones: item(person.phone), is_deleted: false, add_time: now, update_time: now };
    this.persons.set(created.id, created);
    this.emit({ action: 'create', data: personData(created), previous: null, source: 'app' });
    return created;
  }

  /** What a user's delete does: the person stays 30 days, flagged `is_deleted`, out of searches. */
  deletePerson(id: number): void {
    this.removePerson(id, 'app');
  }

  /** What a user's edit in Pipedrive does: `edit` changes the person, and its update time moves on. */
  editPerson(id: number, edit: (person: FakePerson) => void): FakePerson {
    const person = this.persons.get(id);
    if (!person) throw new Error(`no person ${id}`);
    const before = personData(person);
    edit(person);
    person.update_time = this.timestamp();
    this.emitChange(person, before, 'app');
    return person;
  }

  /**
   * What a user's merge does: `id` disappears (404 from then on), its notes move to `intoId`, and
   * its emails and phones that the survivor lacks are added to the survivor's, not primary.
   */
  mergePersons(id: number, intoId: number): FakePerson {
    return this.merge(id, intoId, 'app');
  }

  /** Now on the fake's clock. */
  private now(): number {
    return Date.now() + this.clockAdvance;
  }

  private timestamp(): string {
    return timestamp(this.now());
  }

  private removePerson(id: number, source: PersonEvent['source']): void {
    const person = this.persons.get(id);
    if (!person) return;
    const before = personData(person);
    person.is_deleted = true;
    person.update_time = this.timestamp();
    if (!before.is_deleted) this.emit({ action: 'delete', data: before, previous: null, source });
  }

  /**
   * Webhooks tell of a merge with a delete of `id` naming the survivor (the only documented source
   * of its id) and a change of the survivor, even when it gained nothing.
   */
  private merge(id: number, intoId: number, source: PersonEvent['source']): FakePerson {
    const merged = this.persons.get(id);
    const survivor = this.persons.get(intoId);
    if (!merged || !survivor || id === intoId) throw new Error(`cannot merge person ${id} into ${intoId}`);
    const removed = personData(merged);
    const before = personData(survivor);
    for (const field of ['emails', 'phones'] as const) {
      for (const item of merged[field]) {
        if (!survivor[field].some((kept) => kept.value === item.value)) survivor[field].push({ ...item, primary: false });
      }
    }
    for (const note of this.notes.values()) if (note.person_id === id) note.person_id = intoId;
    this.persons.delete(id);
    survivor.update_time = this.timestamp();
    const correlationId = randomUUID();
    this.emit({ action: 'delete', data: removed, previous: null, source, correlationId, mergedToId: intoId });
    const after = personData(survivor);
    this.emit({ action: 'change', data: after, previous: changedFields(before, after), source, correlationId });
    return survivor;
  }

  /** A change event when anything but the update time differs from `before`: an edit that changes nothing tells nothing. */
  private emitChange(person: FakePerson, before: PersonData, source: PersonEvent['source']): void {
    const after = personData(person);
    const previous = changedFields(before, after);
    if (Object.keys(previous).length > 0) this.emit({ action: 'change', data: after, previous, source });
  }

  /** Hands the event to every active subscription for it; deliveries go out asynchronously. */
  private emit(event: Omit<PersonEvent, 'correlationId' | 'timestamp'> & { correlationId?: string }): void {
    const full: PersonEvent = { ...event, correlationId: event.correlationId ?? randomUUID(), timestamp: new Date(this.now()).toISOString() };
    for (const webhook of this.webhooks.values()) {
      const wanted = webhook.is_active === 1 && ['person', '*'].includes(webhook.event_object) && ['*', event.action].includes(webhook.event_action);
      if (wanted) this.deliverer.deliver({ webhook, id: randomUUID(), event: full }, this.takeWebhookFault(full)?.kind);
    }
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
    if (contract.operation) {
      for (const problem of contract.operation.responseProblems(reply.body, reply.status)) {
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
    if (problems.length > 0) return invalid(request.path, problems);
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
    if (method === 'GET' && path === '/v1/webhooks') return this.listWebhooks();
    if (method === 'POST' && path === '/v1/webhooks') return this.addWebhook(request.body);
    const webhookId = /^\/v1\/webhooks\/(\d+)$/.exec(path)?.[1];
    if (method === 'DELETE' && webhookId !== undefined) return this.deleteWebhook(Number(webhookId));
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

  private listWebhooks(): Reply {
    return { status: 200, body: { status: 'ok', success: true, data: [...this.webhooks.values()] } };
  }

  /** The contract has checked a body's fields, required ones and enums; a missing body it cannot. */
  private addWebhook(body: unknown): Reply {
    if (!isRecord(body)) return webhookFailure(400, { body: ['a JSON object is required'] });
    const fields = body as Pick<FakeWebhook, 'subscription_url' | 'event_action' | 'event_object' | 'name'> &
      Partial<Pick<FakeWebhook, 'user_id' | 'http_auth_user' | 'http_auth_password'>> & { version?: '1.0' | '2.0' };
    if (!this.reachable(fields.subscription_url)) return webhookFailure(400, { subscription_url: ['invalid or non-reachable URL'] });
    if (fields.version === '1.0') return webhookFailure(400, { version: ['the fake delivers webhooks v2 only'] });
    const webhook: FakeWebhook = {
      id: this.nextWebhookId++,
      company_id: 1,
      owner_id: 1,
      user_id: fields.user_id ?? 1,
      event_action: fields.event_action,
      event_object: fields.event_object,
      subscription_url: fields.subscription_url,
      version: '2.0',
      is_active: 1,
      add_time: new Date(this.now()).toISOString(),
      remove_time: null,
      type: 'general',
      http_auth_user: fields.http_auth_user ?? null,
      http_auth_password: fields.http_auth_password ?? null,
      remove_reason: null,
      last_delivery_time: null,
      last_http_status: null,
      admin_id: 1,
      name: fields.name,
    };
    this.webhooks.set(webhook.id, webhook);
    return { status: 201, body: { status: 'ok', success: true, data: webhook } };
  }

  private deleteWebhook(id: number): Reply {
    if (!this.webhooks.delete(id)) return webhookFailure(404, { id: ['not found'] });
    return { status: 200, body: { status: 'ok', success: true } };
  }

  /**
   * Pipedrive wants a reachable http(s) URL that is not its own API; the fake reaches 127.0.0.1
   * only, so it never sends anything off the machine.
   */
  private reachable(value: string): boolean {
    if (!URL.canParse(value)) return false;
    const url = new URL(value);
    return ['http:', 'https:'].includes(url.protocol) && url.hostname === '127.0.0.1' && url.origin !== this.url;
  }

  private createPerson(body: unknown): Reply {
    const fields = personFields(body, true);
    if (typeof fields === 'string') return { status: 400, body: failure(fields) };
    const now = this.timestamp();
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
    this.emit({ action: 'create', data: personData(person), previous: null, source: 'api' });
    return success(personData(person));
  }

  private updatePerson(id: number, body: unknown): Reply {
    const person = this.persons.get(id);
    if (!person || person.is_deleted) return { status: 404, body: failure('Person not found') };
    const fields = personFields(body, false);
    if (typeof fields === 'string') return { status: 400, body: failure(fields) };
    const before = personData(person);
    Object.assign(person, fields, { update_time: this.timestamp() });
    this.emitChange(person, before, 'api');
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
    this.removePerson(id, 'api');
    return success({ id });
  }

  private mergeRequest(id: number, body: unknown): Reply {
    const intoId = isRecord(body) ? body.merge_with_id : undefined;
    if (typeof intoId !== 'number' || !Number.isInteger(intoId)) return { status: 400, body: failure('Validation failed: merge_with_id: Parameter must be an integer') };
    if (!this.persons.get(id) || !this.persons.get(intoId) || id === intoId) return { status: 404, body: failure('Person not found') };
    return success({ ...personDataV1(this.merge(id, intoId, 'api')), merge_what_id: id });
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
    return success({ ...note, active_flag: true, add_time: new Date(this.now()).toISOString().slice(0, 19).replace('T', ' ') });
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

  private takeWebhookFault(event: PersonEvent): WebhookFault | undefined {
    const entry = this.webhookFaults.find(
      ({ fault, left }) => left > 0 && (fault.match?.action ?? event.action) === event.action && (fault.match?.entityId ?? event.data.id) === event.data.id,
    );
    if (!entry) return undefined;
    entry.left -= 1;
    return entry.fault;
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

/**
 * Sends webhook deliveries as Pipedrive does: a 2xx answer within `timeoutMs` counts; anything else
 * (another status, a connection error, a timeout) is retried after each of `retryDelaysMs` in turn,
 * with the same id, then given up. Nothing orders them.
 */
class WebhookDeliverer {
  /** Attempts under way, until their connection closes. */
  private readonly sending = new Set<ClientRequest>();
  private readonly retries = new Set<NodeJS.Timeout>();
  private held: Delivery[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly options: Required<NonNullable<FakePipedriveOptions['webhooks']>>,
    private readonly webhooks: ReadonlyMap<number, FakeWebhook>,
    private readonly deliveries: FakeDelivery[],
  ) {}

  deliver(delivery: Delivery, fault: WebhookFault['kind'] | undefined): void {
    if (fault === 'drop') return;
    if (fault === 'hold') {
      this.held.push(delivery);
      return;
    }
    this.attempt(delivery, 1);
    if (fault === 'duplicate') this.attempt(delivery, 1);
  }

  release(): void {
    for (const delivery of this.held.splice(0)) this.attempt(delivery, 1);
  }

  settled(timeoutMs: number): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(done);
        reject(new Error(`webhook deliveries still under way or waiting for a retry after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(done);
    });
  }

  /** Cancels retries and attempts under way, and forgets held deliveries. */
  cancel(): void {
    for (const timer of this.retries) clearTimeout(timer);
    this.retries.clear();
    const sending = [...this.sending];
    this.sending.clear();
    for (const request of sending) request.destroy();
    this.held = [];
    this.notifyIfIdle();
  }

  /** POSTs the delivery, unless its subscription was deleted or deactivated meanwhile. */
  private attempt(delivery: Delivery, attempt: number): void {
    const { webhook } = delivery;
    if (this.webhooks.get(webhook.id)?.is_active !== 1) return;
    const url = new URL(webhook.subscription_url);
    const body = JSON.stringify(deliveryPayload(delivery, attempt));
    const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'POST', agent: false, headers: deliveryHeaders(webhook, body) });
    let status: FakeDelivery['status'] = 'error';
    const fail = () => {
      if (status !== 'timeout') status = 'error';
    };
    const timer = setTimeout(() => {
      status = 'timeout';
      request.destroy();
    }, this.options.timeoutMs);
    request.on('response', (response) => {
      if (status !== 'timeout') status = response.statusCode ?? 'error';
      response.on('error', fail).resume();
    });
    request.on('error', fail);
    request.on('close', () => {
      clearTimeout(timer);
      this.attempted(request, delivery, attempt, status);
    });
    this.sending.add(request);
    request.end(body);
  }

  private attempted(request: ClientRequest, delivery: Delivery, attempt: number, status: FakeDelivery['status']): void {
    if (!this.sending.delete(request)) return; // cancelled
    const { webhook, id, event } = delivery;
    this.deliveries.push({ webhookId: webhook.id, deliveryId: id, action: event.action, entityId: event.data.id, attempt, status, at: Date.now() });
    const delay = this.options.retryDelaysMs[attempt - 1];
    const delivered = typeof status === 'number' && status >= 200 && status < 300;
    if (!delivered && delay !== undefined) {
      const timer = setTimeout(() => {
        this.retries.delete(timer);
        this.attempt(delivery, attempt + 1);
        this.notifyIfIdle();
      }, delay);
      this.retries.add(timer);
    }
    this.notifyIfIdle();
  }

  private idle(): boolean {
    return this.sending.size === 0 && this.retries.size === 0;
  }

  private notifyIfIdle(): void {
    if (!this.idle()) return;
    for (const waiter of this.waiters) waiter();
    this.waiters.clear();
  }
}

/** A webhooks v2 body: `{ meta, data, previous }`. */
function deliveryPayload({ webhook, id, event }: Delivery, attempt: number) {
  return {
    meta: {
      action: event.action,
      entity: 'person',
      entity_id: String(event.data.id),
      id,
      version: '2.0',
      company_id: webhook.company_id,
      user_id: 1,
      timestamp: event.timestamp,
      correlation_id: event.correlationId,
      change_source: event.source,
      attempt,
      webhook_id: String(webhook.id),
      webhook_owner_id: webhook.owner_id,
      is_bulk_edit: false,
      host: 'fake.pipedrive.com',
      permitted_user_ids: [1],
      ...(event.mergedToId !== undefined && { merged_to_id: String(event.mergedToId) }),
    },
    data: event.data,
    previous: event.previous,
  };
}

/** Webhooks carry no signature: Basic credentials, when the subscription has them, are the only authentication. */
function deliveryHeaders(webhook: FakeWebhook, body: string): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'user-agent': 'Pipedrive-Webhook',
  };
  if (webhook.http_auth_user) {
    headers.authorization = `Basic ${Buffer.from(`${webhook.http_auth_user}:${webhook.http_auth_password ?? ''}`).toString('base64')}`;
  }
  return headers;
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

function personData(person: FakePerson): PersonData {
  return { ...person, emails: person.emails.map((item) => ({ ...item })), phones: person.phones.map((item) => ({ ...item })), owner_id: 1, visible_to: 3 };
}

/** A person as v1 answers it (the merge is a v1 operation): singular emails and phones, v1 times, visible_to a string. */
function personDataV1(person: FakePerson): Record<string, unknown> {
  const v1Time = (time: string) => time.slice(0, 19).replace('T', ' ');
  return {
    id: person.id,
    company_id: 1,
    active_flag: !person.is_deleted,
    name: person.name,
    first_char: person.name.charAt(0).toLowerCase(),
    email: person.emails.map((item) => ({ ...item })),
    phone: person.phones.map((item) => ({ ...item })),
    add_time: v1Time(person.add_time),
    update_time: v1Time(person.update_time),
    owner_id: 1,
    visible_to: '3',
  };
}

/** The fields that differ in `after` (its update time aside), with their values in `before`: a change's `previous`. */
function changedFields(before: PersonData, after: PersonData): Partial<PersonData> {
  return Object.fromEntries(
    Object.entries(before).filter(([key, value]) => key !== 'update_time' && !isDeepStrictEqual(value, after[key as keyof PersonData])),
  );
}

function success(data: unknown): Reply {
  return { status: 200, body: { success: true, data, additional_data: null } };
}

function failure(error: string): { success: false; error: string; error_info: string; data: null } {
  return { success: false, error, error_info: ERROR_INFO, data: null };
}

/** The webhooks API's own error form (its 400 and 404): messages by field. */
function webhookFailure(status: number, errors: Record<string, string[]>): Reply {
  return { status, body: { status: 'error', success: false, errors } };
}

/** A 400 for what the documents reject: in the webhooks API's form there, by the field each problem names. */
function invalid(path: string, problems: string[]): Reply {
  if (!path.startsWith('/v1/webhooks')) return { status: 400, body: failure(`Validation failed: ${problems.join('; ')}`) };
  const errors: Record<string, string[]> = {};
  for (const problem of problems) {
    const field = /^body\/(\w+)|required property '(\w+)'|parameter (\w+)/.exec(problem)?.slice(1).find(Boolean) ?? 'body';
    (errors[field] ??= []).push(problem);
  }
  return webhookFailure(400, errors);
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
