import { setTimeout as delay } from 'node:timers/promises';

export type ResponseHeaders = Record<string, string | string[] | undefined>;

export interface RateLimiterOptions {
  /** Injectable clock and sleep, for deterministic tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Keeps one API token under Pipedrive's burst limit (N requests per window of a few seconds).
 *
 * The remaining budget of the current window is counted locally, because several requests are
 * in flight at once and each response only reports what the server had counted when it
 * answered. Every estimate errs on the safe side: the window ends at the latest reset any
 * response announced (x-ratelimit-reset is in whole seconds, so it is an upper bound), and
 * the budget is the lowest of the local count and what the server reported. Until a first
 * response arrives the limit is unknown and requests go through.
 */
export class RateLimiter {
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private limit: number | undefined;
  private remaining = Infinity;
  /** Requests let through since the tracked window began (or since start-up, before any response). */
  private granted = 0;
  private resetAt = 0;
  /** Longest window announced so far: how long a window we have not heard of yet may last. */
  private windowMs = 0;
  private pausedUntil = 0;

  constructor(options: RateLimiterOptions = {}) {
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => delay(ms));
  }

  /** Waits until a request may be sent, and counts it. */
  async acquire(): Promise<void> {
    for (;;) {
      const now = this.now();
      if (this.limit !== undefined && now >= this.resetAt) this.startWindow(now, this.limit, now + this.windowMs);
      const wakeAt = now < this.pausedUntil ? this.pausedUntil : this.remaining > 0 ? undefined : this.resetAt;
      if (wakeAt === undefined) {
        this.remaining -= 1;
        this.granted += 1;
        return;
      }
      await this.sleep(wakeAt - now);
    }
  }

  /** Learns the server's view from a response's x-ratelimit-* headers (ignored when absent). */
  update(headers: ResponseHeaders): void {
    const limit = numericHeader(headers, 'x-ratelimit-limit');
    const remaining = numericHeader(headers, 'x-ratelimit-remaining');
    const reset = numericHeader(headers, 'x-ratelimit-reset');
    if (limit === undefined || remaining === undefined || reset === undefined) return;
    const now = this.now();
    const resetAt = now + reset * 1000;
    this.windowMs = Math.max(this.windowMs, reset * 1000);
    if (this.limit === undefined) {
      this.resetAt = resetAt;
    } else if (now >= this.resetAt) {
      this.startWindow(now, limit, resetAt);
    } else {
      this.resetAt = Math.max(this.resetAt, resetAt);
    }
    this.limit = limit;
    this.remaining = Math.max(0, Math.min(this.remaining, remaining, limit - this.granted));
  }

  /** Holds every request back for `ms`, e.g. after a 429. */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + ms);
  }

  private startWindow(now: number, limit: number, resetAt: number): void {
    this.remaining = limit;
    this.granted = 0;
    this.resetAt = Math.max(resetAt, now);
  }
}

function numericHeader(headers: ResponseHeaders, name: string): number | undefined {
  const raw = headers[name];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined || value.trim() === '') return undefined;
  const number = Number(value);
  return Number.isFinite(number) && number >= 0 ? number : undefined;
}
