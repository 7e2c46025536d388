import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logger';
import type { RateLimitBucket, RateLimitsRepository } from './rate-limits.repository';
import { numericHeader, type ResponseHeaders } from './response-headers';

/** What the Pipedrive client asks of a rate limiter. */
export interface RateLimits {
  /** Waits until the call may be sent, and counts it; a search call also counts in the search bucket. */
  acquire(call: { search: boolean }): Promise<void>;
  /** Learns from an answer's x-ratelimit-* headers (ignored when absent or malformed). */
  update(headers: ResponseHeaders): void;
  /** Holds every call back for `ms` (after a 429). */
  pause(ms: number): void;
}

/** Pipedrive's window, for the burst limit and the search limit alike. */
const WINDOW_MS = 2_000;
/**
 * Added to the window as counted here: a call is counted when it is let through and reaches
 * Pipedrive a little later, so that a late one cannot land in the next window of Pipedrive's own.
 */
export const WINDOW_MARGIN_MS = 150;
/** The lowest burst limit of an API token (Lite): what is assumed until an answer states the plan's. */
export const DEFAULT_BURST_LIMIT = 20;
/** Search endpoints: 10 requests per 2 s on every plan (Pipedrive's changelog, 2022-08-16). */
export const SEARCH_LIMIT = 10;
/** Waiters wake spread over this much, so that they do not all ask at the same instant. */
const WAKE_SPREAD_MS = 20;

/**
 * Pipedrive's limits on the API token, counted in PostgreSQL so that every process of the service
 * (API and workers) sees one count: N processes together stay within the limit, not N times it.
 * Each bucket counts the calls it let through in a rolling window, which no window of Pipedrive's
 * own can overrun. The answers' headers correct it: the plan's limit, a window used up by calls made
 * by others, and a 429's wait. Those corrections are written in the background, one after another.
 */
export class SharedRateLimits implements RateLimits {
  private burstLimit: number | undefined;
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: RateLimitsRepository,
    private readonly logger: Logger,
    /** Added to Pipedrive's window: a call let through reaches Pipedrive a little later. */
    private readonly marginMs = WINDOW_MARGIN_MS,
  ) {}

  async acquire(call: { search: boolean }): Promise<void> {
    if (call.search) await this.take('search', SEARCH_LIMIT);
    await this.take('burst', this.burstLimit ?? DEFAULT_BURST_LIMIT);
  }

  update(headers: ResponseHeaders): void {
    const limit = numericHeader(headers, 'x-ratelimit-limit');
    const remaining = numericHeader(headers, 'x-ratelimit-remaining');
    const reset = numericHeader(headers, 'x-ratelimit-reset');
    if (limit === undefined || remaining === undefined || reset === undefined || limit < 1) return;
    if (limit !== this.burstLimit) {
      this.burstLimit = limit;
      this.write(() => this.store.setLimit('burst', limit));
    }
    if (remaining === 0) this.write(() => this.store.blockIfOthersCalled('burst', reset * 1000));
  }

  pause(ms: number): void {
    this.write(() => this.store.block('burst', ms));
  }

  /** Resolves once every correction is written (for shutdown and tests). */
  flushed(): Promise<void> {
    return this.writes;
  }

  /** `limit` applies when the bucket's row is new; else the row's own holds. */
  private async take(bucket: RateLimitBucket, limit: number): Promise<void> {
    for (;;) {
      const { admitted, waitMs } = await this.store.admit(bucket, limit, WINDOW_MS + this.marginMs);
      if (admitted) return;
      await sleep(waitMs + Math.floor(Math.random() * WAKE_SPREAD_MS));
    }
  }

  private write(statement: () => Promise<void>): void {
    this.writes = this.writes.then(() =>
      statement().catch((error: unknown) => {
        this.logger.warn({ err: error }, 'could not record what a Pipedrive answer said of the rate limit');
      }),
    );
  }
}
