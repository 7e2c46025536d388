import { Pool, type Dispatcher } from 'undici';
import type { Logger } from '../logger';
import {
  CrmError,
  type CrmErrorKind,
  type CrmGateway,
  type CrmPerson,
  type ContactItem,
  type NewPerson,
  type PersonPage,
  type PersonSearchField,
  type PersonUpdate,
} from '../mirror/crm-gateway';
import { headerValue, numericHeader, type ResponseHeaders } from './response-headers';
import type { RateLimits } from './shared-rate-limits';
import type { NewWebhookSubscription, WebhookSubscription, WebhookSubscriptions } from '../inbound/webhook-subscriptions';

export interface PipedriveClientOptions {
  apiToken: string;
  /** Default https://api.pipedrive.com */
  baseUrl?: string;
  /**
   * PIPEDRIVE_TIMEOUT_MS: limits connecting, the wait for the response headers and, separately, each
   * gap while the body arrives. undici checks these on a timer with about half a second resolution,
   * so they may fire up to ~1 s late.
   */
  timeoutMs: number;
  logger?: Logger;
  rateLimits?: RateLimits;
  onOutcome?: (outcome: 'ok' | CrmErrorKind, call: CallReport) => void;
}

/** What a finished call looked like, for metrics and the token budget. The path has no query string. */
export interface CallReport {
  method: string;
  path: string;
  status: number | undefined;
  durationMs: number;
  /** What the call costs from the daily token budget (the operation's x-token-cost); 0 when it was not answered. */
  tokenCost: number;
  /** The daily budget as the answer reported it (x-daily-ratelimit-token-*), when it did. */
  tokens: { limit?: number; left?: number };
}

const DEFAULT_RETRY_AFTER_MS = 2_000;
/**
 * After a 403 that is an HTML page, not Pipedrive's JSON: a block for calling on after 429s
 * (Cloudflare), not a refused token. Backing off long is the way out.
 */
const BLOCKED_RETRY_AFTER_MS = 60_000;
/** The search endpoint, which has a limit of its own. */
const SEARCH_PATH = '/api/v2/persons/search';
/** How far back a retried note looks for itself; a lost answer is seconds old. */
const RECENT_NOTES = 100;

interface Call<T> {
  method: Dispatcher.HttpMethod;
  path: string;
  /** The operation's x-token-cost in Pipedrive's OpenAPI documents. */
  tokenCost: number;
  query?: Record<string, string>;
  body?: unknown;
  /** The answer to a 404/410, which otherwise fails as 'rejected'. */
  notFound?: T;
  /** The success envelope has no `data` (a delete). */
  withoutData?: boolean;
  /** `data` and `additional_data` of Pipedrive's envelope. */
  parse: (data: unknown, describe: string, additionalData: unknown) => T;
}

/** The CRM gateway over Pipedrive's REST API: persons through v2, notes through v1. */
export class PipedriveClient implements CrmGateway, WebhookSubscriptions {
  // A private field: the token must not show up when the client is logged or inspected.
  readonly #apiToken: string;
  private readonly pool: Pool;
  private readonly pathPrefix: string;
  private readonly logger: Logger | undefined;
  private readonly rateLimits: RateLimits | undefined;
  private readonly onOutcome: PipedriveClientOptions['onOutcome'];

  constructor(options: PipedriveClientOptions) {
    const base = new URL(options.baseUrl ?? 'https://api.pipedrive.com');
    this.#apiToken = options.apiToken;
    this.pathPrefix = base.pathname.replace(/\/+$/, '');
    this.pool = new Pool(base.origin, {
      connect: { timeout: options.timeoutMs },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
    this.logger = options.logger;
    this.rateLimits = options.rateLimits;
    this.onOutcome = options.onOutcome;
  }

  createPerson(person: NewPerson): Promise<CrmPerson> {
    const body = {
      name: person.name,
      ...(person.email !== null && { emails: contactItems(person.email) }),
      ...(person.phone !== null && { phones: contactItems(person.phone) }),
    };
    return this.call({ method: 'POST', path: '/api/v2/persons', tokenCost: 5, body, parse: toPerson });
  }

  updatePerson(id: number, update: PersonUpdate): Promise<CrmPerson> {
    const body = {
      ...(update.name !== undefined && { name: update.name }),
      ...(update.emails !== undefined && { emails: update.emails }),
      ...(update.phones !== undefined && { phones: update.phones }),
    };
    return this.call({ method: 'PATCH', path: `/api/v2/persons/${id}`, tokenCost: 5, body, parse: toPerson });
  }

  findPerson(field: PersonSearchField, term: string): Promise<CrmPerson | null> {
    return this.call({
      method: 'GET',
      path: SEARCH_PATH,
      tokenCost: 20,
      query: { term, fields: field, exact_match: 'true' },
      parse: (data, describe) => {
        if (!isRecord(data) || !Array.isArray(data.items)) throw unexpectedShape(describe);
        const first: unknown = data.items[0];
        if (first === undefined) return null;
        if (!isRecord(first)) throw unexpectedShape(describe);
        return toPerson(first.item, describe);
      },
    });
  }

  listPersons(page: { updatedSince?: Date; cursor?: string; limit: number }): Promise<PersonPage> {
    const query: Record<string, string> = { limit: String(page.limit) };
    // RFC 3339 to the second, as v2 writes its times.
    if (page.updatedSince) query.updated_since = page.updatedSince.toISOString().replace(/\.\d{3}Z$/, 'Z');
    if (page.cursor) query.cursor = page.cursor;
    return this.call({
      method: 'GET',
      path: '/api/v2/persons',
      tokenCost: 10,
      query,
      parse: (data, describe, additionalData) => {
        if (!Array.isArray(data)) throw unexpectedShape(describe);
        const next = isRecord(additionalData) ? additionalData.next_cursor : undefined;
        return { persons: data.map((person) => toPerson(person, describe)), nextCursor: typeof next === 'string' && next !== '' ? next : null };
      },
    });
  }

  getPerson(id: number): Promise<CrmPerson | null> {
    return this.call({
      method: 'GET',
      path: `/api/v2/persons/${id}`,
      tokenCost: 1,
      notFound: null,
      // v2 persons carry is_deleted: one flagged deleted no longer exists for the mirror.
      parse: (data, describe) => (isRecord(data) && data.is_deleted === true ? null : toPerson(data, describe)),
    });
  }

  addNote(personId: number, content: string): Promise<{ id: number }> {
    return this.call({
      method: 'POST',
      path: '/v1/notes',
      tokenCost: 10,
      body: { content, person_id: personId },
      parse: (data, describe) => {
        if (!isRecord(data) || typeof data.id !== 'number') throw unexpectedShape(describe);
        return { id: data.id };
      },
    });
  }

  findNotes(personId: number, content: string): Promise<number[]> {
    return this.call({
      method: 'GET',
      path: '/v1/notes',
      tokenCost: 20,
      query: { person_id: String(personId), sort: 'add_time DESC', limit: String(RECENT_NOTES) },
      parse: (data, describe) => {
        if (data === null) return [];
        if (!Array.isArray(data)) throw unexpectedShape(describe);
        return data.filter((note) => isRecord(note) && note.content === content && typeof note.id === 'number').map((note) => note.id as number);
      },
    });
  }

  listWebhooks(): Promise<WebhookSubscription[]> {
    return this.call({
      method: 'GET',
      path: '/v1/webhooks',
      tokenCost: 10,
      parse: (data, describe) => {
        if (data === null) return [];
        if (!Array.isArray(data)) throw unexpectedShape(describe);
        return data.map((item) => toWebhook(item, describe));
      },
    });
  }

  createWebhook(subscription: NewWebhookSubscription): Promise<WebhookSubscription> {
    const body = {
      subscription_url: subscription.url,
      event_action: subscription.action,
      event_object: subscription.object,
      name: subscription.name,
      http_auth_user: subscription.user,
      http_auth_password: subscription.password,
      version: '2.0',
    };
    return this.call({ method: 'POST', path: '/v1/webhooks', tokenCost: 10, body, parse: toWebhook });
  }

  async deleteWebhook(id: number): Promise<void> {
    // Answered without `data`: { success: true, status: 'ok' }.
    await this.call({ method: 'DELETE', path: `/v1/webhooks/${id}`, tokenCost: 6, withoutData: true, parse: () => undefined });
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private async call<T>(call: Call<T>): Promise<T> {
    // The query stays out of messages and logs: search terms are e-mail addresses and phone numbers.
    const describe = `Pipedrive ${call.method} ${call.path}`;
    const started = performance.now();
    let status: number | undefined;
    let tokens: CallReport['tokens'] = {};
    const report = { method: call.method, path: call.path, started };
    try {
      await this.rateLimits?.acquire({ search: call.path === SEARCH_PATH });
      const response = await this.send(call, describe);
      status = response.status;
      tokens = dailyTokens(response.headers);
      const result = this.interpret(call, describe, response);
      this.report('ok', { ...report, status, tokens, tokenCost: call.tokenCost });
      return result;
    } catch (error) {
      const crmError = error instanceof CrmError ? error : new CrmError('unavailable', `${describe}: ${String(error)}`, { cause: error });
      // Refused for a limit, or never answered: nothing was spent (a lost answer may have been; the headers of the next answer tell).
      const tokenCost = status === undefined || status === 429 || status === 401 ? 0 : call.tokenCost;
      this.report(crmError.kind, { ...report, status, tokens, tokenCost, error: crmError.message });
      throw crmError;
    }
  }

  private async send(call: Call<unknown>, describe: string): Promise<{ status: number; headers: ResponseHeaders; text: string }> {
    const query = call.query ? `?${new URLSearchParams(call.query).toString()}` : '';
    try {
      const response = await this.pool.request({
        method: call.method,
        path: `${this.pathPrefix}${call.path}${query}`,
        headers: {
          accept: 'application/json',
          'x-api-token': this.#apiToken,
          ...(call.body !== undefined && { 'content-type': 'application/json' }),
        },
        body: call.body === undefined ? undefined : JSON.stringify(call.body),
      });
      this.rateLimits?.update(response.headers);
      return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
    } catch (cause) {
      // Connection refused or reset, connect/headers/body timeouts, socket closed mid-response.
      const code = isRecord(cause) && typeof cause.code === 'string' ? `${cause.code}: ` : '';
      const message = cause instanceof Error ? cause.message : String(cause);
      throw new CrmError('unavailable', `${describe}: ${code}${message}`, { cause });
    }
  }

  private interpret<T>(call: Call<T>, describe: string, response: { status: number; headers: ResponseHeaders; text: string }): T {
    const { status, headers } = response;
    const envelope = parseJson(response.text);
    if (status >= 200 && status < 300) {
      if (!isRecord(envelope) || envelope.success !== true || (!('data' in envelope) && !call.withoutData)) {
        throw new CrmError('unavailable', `${describe}: ${status} response is not a Pipedrive JSON envelope`, { status });
      }
      return call.parse(envelope.data, describe, envelope.additional_data);
    }
    if ((status === 404 || status === 410) && call.notFound !== undefined) return call.notFound;

    if (status === 403 && !isRecord(envelope)) {
      // The caller pauses (the mirror pauses itself as a whole, in every process): not this limiter.
      throw new CrmError('rate_limited', `${describe}: 403 blocked (an HTML page, not Pipedrive's JSON): backing off`, {
        status,
        retryAfterMs: BLOCKED_RETRY_AFTER_MS,
      });
    }
    const kind = kindOf(status);
    const reason = isRecord(envelope) && typeof envelope.error === 'string' ? envelope.error : 'response is not a Pipedrive JSON envelope';
    const info = isRecord(envelope) && typeof envelope.error_info === 'string' ? ` (${envelope.error_info})` : '';
    if (kind === 'rate_limited' && dailyTokens(headers).left === 0) {
      // The day's budget is spent: every call answers 429 until it comes back; the window's reset says nothing.
      throw new CrmError(kind, `${describe}: ${status} ${reason}${info}: the daily token budget is spent`, { status, dailyBudgetSpent: true });
    }
    const retryAfterMs = kind === 'rate_limited' ? retryAfter(headers) : undefined;
    if (retryAfterMs !== undefined) this.rateLimits?.pause(retryAfterMs);
    throw new CrmError(kind, `${describe}: ${status} ${reason}${info}`, { status, retryAfterMs });
  }

  private report(
    outcome: 'ok' | CrmErrorKind,
    details: { method: string; path: string; status: number | undefined; started: number; tokenCost: number; tokens: CallReport['tokens']; error?: string },
  ): void {
    const { started, tokens, ...fields } = details;
    const durationMs = performance.now() - started;
    const entry = { ...fields, outcome, durationMs: Math.round(durationMs) };
    if (outcome === 'ok') this.logger?.debug(entry, 'pipedrive request');
    else this.logger?.warn(entry, 'pipedrive request failed');
    this.onOutcome?.(outcome, { method: details.method, path: details.path, status: details.status, durationMs, tokenCost: details.tokenCost, tokens });
  }
}

function toWebhook(data: unknown, describe: string): WebhookSubscription {
  if (!isRecord(data) || typeof data.id !== 'number' || typeof data.subscription_url !== 'string') throw unexpectedShape(describe);
  const text = (value: unknown) => (typeof value === 'string' ? value : '');
  return {
    id: data.id,
    url: data.subscription_url,
    action: text(data.event_action),
    object: text(data.event_object),
    version: text(data.version),
    active: data.is_active === 1 || data.is_active === true,
    user: typeof data.http_auth_user === 'string' && data.http_auth_user !== '' ? data.http_auth_user : null,
  };
}

/** A new person's list: the one value, primary. */
function contactItems(value: string | null): ContactItem[] {
  return value === null ? [] : [{ value, primary: true, label: 'work' }];
}

function kindOf(status: number): CrmErrorKind {
  if (status === 401 || status === 403) return 'unauthorized';
  if (status === 429) return 'rate_limited';
  if (status >= 400 && status < 500) return 'rejected';
  return 'unavailable';
}

function retryAfter(headers: ResponseHeaders): number {
  const retryAfterHeader = headerValue(headers, 'retry-after');
  if (retryAfterHeader !== undefined) {
    const seconds = Number(retryAfterHeader);
    if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
    const date = Date.parse(retryAfterHeader);
    if (!Number.isNaN(date)) return Math.max(0, date - Date.now());
  }
  const reset = numericHeader(headers, 'x-ratelimit-reset');
  return reset === undefined ? DEFAULT_RETRY_AFTER_MS : reset * 1000;
}

/** The daily-token headers independent clients read; undocumented, and missing from some answers. */
function dailyTokens(headers: ResponseHeaders): CallReport['tokens'] {
  const number = (name: string) => {
    const value = numericHeader(headers, name);
    return value !== undefined && Number.isInteger(value) ? value : undefined;
  };
  const limit = number('x-daily-ratelimit-token-limit');
  const left = number('x-daily-ratelimit-token-remaining');
  return { ...(limit !== undefined && { limit }), ...(left !== undefined && { left }) };
}

/**
 * A person as Pipedrive writes it: in v2 API answers and webhook v2 deliveries (`data`); null when
 * it is not one.
 */
export function parsePerson(data: unknown): CrmPerson | null {
  try {
    return toPerson(data, 'person');
  } catch {
    return null;
  }
}

/**
 * A v2 person (emails and phones as `{ value, primary, label }`, primary first) or a search
 * result item (emails and phones as plain strings).
 */
function toPerson(data: unknown, describe: string): CrmPerson {
  if (!isRecord(data) || typeof data.id !== 'number' || typeof data.name !== 'string') throw unexpectedShape(describe);
  const time = (value: unknown) => {
    const date = typeof value === 'string' ? new Date(value) : undefined;
    return date && !Number.isNaN(date.getTime()) ? date : undefined;
  };
  const updatedAt = time(data.update_time);
  const addedAt = time(data.add_time);
  return {
    id: data.id,
    name: data.name,
    emails: contactValues(data.emails),
    phones: contactValues(data.phones),
    ...(updatedAt && { updatedAt }),
    ...(addedAt && { addedAt }),
  };
}

/** A person's items as Pipedrive sent them (order kept), or a search result's strings (the first primary). */
function contactValues(items: unknown): ContactItem[] {
  if (!Array.isArray(items)) return [];
  return items.flatMap((item: unknown, index): ContactItem[] => {
    if (typeof item === 'string') return item === '' ? [] : [{ value: item, primary: index === 0, label: '' }];
    if (!isRecord(item) || typeof item.value !== 'string' || item.value === '') return [];
    return [{ value: item.value, primary: item.primary === true, label: typeof item.label === 'string' ? item.label : '' }];
  });
}

function unexpectedShape(describe: string): CrmError {
  return new CrmError('unavailable', `${describe}: unexpected response data shape`);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
