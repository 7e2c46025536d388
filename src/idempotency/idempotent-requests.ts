import { createHash } from 'node:crypto';
import { stringify } from 'safe-stable-stringify';
import { z } from 'zod';
import type { TransactionScope } from '../db/transaction-scope';
import { IdempotencyKeyInUseError, IdempotencyKeyReusedError } from './idempotency-errors';
import { ValidationError } from '../errors';
import type { RouteResult } from '../http/route';
import type { Logger } from '../logger';
import type { IdempotencyKeysRepository, KeyRef } from './idempotency-keys.repository';

export interface IdempotencySettings {
  /** How long a key is remembered (IDEMPOTENCY_TTL_HOURS). */
  ttlMs: number;
  /** How long a request waits for an earlier one with its key to commit before answering 409. */
  lockWaitMs: number;
}

export interface IdempotentRequest extends KeyRef {
  /** See `requestHash`. */
  requestHash: string;
}

export interface IdempotentAnswer {
  status: number;
  body?: unknown;
  /** True when the answer is the stored one of an earlier request with the key. */
  replayed: boolean;
}

/** The Idempotency-Key header: validated with it, and declared with it in the OpenAPI document. */
export const IdempotencyKeyHeader = z
  .string()
  .regex(/^(?:"[\x21-\x7e]{1,255}"|[\x21-\x7e]{1,255})$/, 'must be 1 to 255 visible ASCII characters (no spaces)')
  .meta({
    description:
      'Makes a retry safe: the same key with the same request replays the first answer (Idempotent-Replayed: true) ' +
      'instead of writing again. 1 to 255 visible ASCII characters (a UUID), bare or as a quoted Structured Field ' +
      'string; scoped to the API key; remembered IDEMPOTENCY_TTL_HOURS (24).',
    example: '7f3c9a2e-5b1d-4c8e-9f0a-2d6b8e4c1a73',
  });

/** The key a request carries, if any; its Structured Field quotes taken off. */
export function parseIdempotencyKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const parsed = IdempotencyKeyHeader.safeParse(header);
  if (!parsed.success) {
    throw new ValidationError('Invalid Idempotency-Key header', [
      { field: 'Idempotency-Key', message: parsed.error.issues[0]?.message ?? 'is not valid' },
    ]);
  }
  return /^"(.*)"$/.exec(parsed.data)?.[1] ?? parsed.data;
}

/** What makes two requests "the same": method, path and JSON body, whatever its key order or spacing. */
export function requestHash(method: string, path: string, body: unknown): string {
  return createHash('sha256').update(`${method} ${path}\n${stringify(body ?? null)}`).digest('hex');
}

/** Expired keys deleted per statement, so that a purge never holds many rows at once. */
const PURGE_BATCH = 500;

/**
 * Idempotency-Key (the IETF draft, with Stripe's semantics) for the routes that create: the key,
 * the request's hash and the answer are written in the transaction of the write itself, so an
 * answer lost after the commit is replayed, never redone; a failed request (an error answer, which
 * changes nothing) rolls back with its key, so it can be sent again.
 */
export class IdempotentRequests {
  constructor(
    private readonly keys: IdempotencyKeysRepository,
    private readonly db: TransactionScope,
    private readonly settings: IdempotencySettings,
    private readonly logger: Logger,
  ) {}

  /**
   * The answer to `request`: `handle`'s, when the key is new (or expired), else the stored one.
   * A concurrent request with the key waits for the first to commit (its transaction holds only the
   * write, so milliseconds), then replays it; past `lockWaitMs`, 409 IDEMPOTENCY_KEY_IN_USE.
   */
  async answer(request: IdempotentRequest, handle: () => Promise<RouteResult>): Promise<IdempotentAnswer> {
    const outcome = await this.db.transaction(
      async (): Promise<{ replay: { status: number; body: unknown } } | { first: RouteResult }> => {
        await this.keys.limitLockWait(this.settings.lockWaitMs);
        const claim = await this.keys.claim(request, request.requestHash, this.settings.ttlMs);
        if (claim === 'busy') throw this.inUse();
        if (claim === 'taken') return { replay: await this.stored(request) };
        // The bound is for waiting on the key only: the write waits for its locks as any write does.
        await this.keys.restoreLockWait();
        const first = await handle();
        await this.keys.saveAnswer(request, first.status, first.body);
        return { first };
      },
    );
    if ('replay' in outcome) return { status: outcome.replay.status, body: outcome.replay.body, replayed: true };

    const { first } = outcome;
    if (!first.settle) return { status: first.status, body: first.body, replayed: false };
    const settled = await first.settle();
    // Replays then give what this request answered; if this fails, they give the committed answer, also true.
    await this.keys.saveAnswer(request, settled.status, settled.body).catch((error: unknown) => {
      this.logger.warn({ err: error }, 'could not store the settled answer of an Idempotency-Key request');
    });
    return { status: settled.status, body: settled.body, replayed: false };
  }

  /** Deletes every expired key, a batch at a time; returns how many. */
  async purgeExpired(): Promise<number> {
    let purged = 0;
    for (;;) {
      const deleted = await this.keys.purgeExpired(PURGE_BATCH);
      purged += deleted;
      if (deleted < PURGE_BATCH) return purged;
    }
  }

  /** Purges expired keys every `intervalMs`, in the background; returns the function that stops it. */
  purgePeriodically(intervalMs: number): () => void {
    const purge = () => {
      this.purgeExpired().then(
        (purged) => {
          if (purged > 0) this.logger.info({ purged }, 'expired idempotency keys purged');
        },
        (error: unknown) => this.logger.warn({ err: error }, 'purging expired idempotency keys failed; will try again'),
      );
    };
    purge();
    const timer = setInterval(purge, intervalMs).unref();
    return () => clearInterval(timer);
  }

  private async stored(request: IdempotentRequest): Promise<{ status: number; body: unknown }> {
    const stored = await this.keys.find(request);
    // Claimed and gone between two statements: only an expiry at that very moment does this.
    if (!stored) throw this.inUse();
    if (stored.requestHash !== request.requestHash) {
      throw new IdempotencyKeyReusedError('This Idempotency-Key was used with a different request; use a new key for a new request');
    }
    return stored;
  }

  private inUse(): IdempotencyKeyInUseError {
    return new IdempotencyKeyInUseError('A request with this Idempotency-Key is still being processed; retry shortly');
  }
}
