import { Prisma } from '@prisma/client';
import type { TransactionScope } from '../db/transaction-scope';

/** Rate-limit buckets: `burst` counts every call, `search` the search calls besides. */
export type RateLimitBucket = 'burst' | 'search';

/** The calls a bucket let through within its window, oldest first (`r` is the bucket's row as it was). */
const recent = Prisma.sql`ARRAY(SELECT t FROM unnest(r.admitted) AS t WHERE t > clock_timestamp() - r.window_ms * interval '1 millisecond' ORDER BY t)`;
/** Whether one more call fits: the window has room and no block holds. */
const fits = Prisma.sql`(cardinality(${recent}) < r.call_limit AND (r.blocked_until IS NULL OR r.blocked_until <= clock_timestamp()))`;

/**
 * The rate-limit buckets every process shares (pipedrive_rate_limits): one row per bucket, which
 * each statement locks for its own few microseconds, so that concurrent callers take turns.
 */
export class RateLimitsRepository {
  constructor(private readonly db: TransactionScope) {}

  /**
   * Lets one call through when the bucket's window has room (and counts it), else says how long
   * until it may; the row is created on first use with `limit` and `windowMs`.
   */
  async admit(bucket: RateLimitBucket, limit: number, windowMs: number): Promise<{ admitted: boolean; waitMs: number }> {
    const [row] = await this.db.client.$queryRaw<{ admitted: boolean; wait_ms: number }[]>`
      INSERT INTO pipedrive_rate_limits AS r (bucket, call_limit, window_ms, admitted, last_admitted)
      VALUES (${bucket}, ${limit}, ${windowMs}, ARRAY[clock_timestamp()], true)
      ON CONFLICT (bucket) DO UPDATE SET
        admitted = CASE WHEN ${fits} THEN ${recent} || clock_timestamp() ELSE ${recent} END,
        last_admitted = ${fits},
        window_ms = EXCLUDED.window_ms
      RETURNING r.last_admitted AS admitted,
        CASE WHEN r.last_admitted THEN 0 ELSE ceil(greatest(
          1,
          extract(epoch FROM r.blocked_until - clock_timestamp()) * 1000,
          CASE WHEN cardinality(r.admitted) >= r.call_limit
               THEN extract(epoch FROM r.admitted[cardinality(r.admitted) - r.call_limit + 1] + r.window_ms * interval '1 millisecond' - clock_timestamp()) * 1000
          END))::int END AS wait_ms`;
    if (!row) throw new Error('admitting a call returned no row');
    return { admitted: row.admitted, waitMs: row.wait_ms };
  }

  /** The bucket's limit, as Pipedrive's answers state it. */
  async setLimit(bucket: RateLimitBucket, limit: number): Promise<void> {
    await this.db.client.$executeRaw`UPDATE pipedrive_rate_limits SET call_limit = ${limit} WHERE bucket = ${bucket} AND call_limit <> ${limit}`;
  }

  /** No call through the bucket for `ms`, whatever it counts (a 429). */
  async block(bucket: RateLimitBucket, ms: number): Promise<void> {
    await this.db.client.$executeRaw`
      UPDATE pipedrive_rate_limits
         SET blocked_until = greatest(blocked_until, clock_timestamp() + ${ms} * interval '1 millisecond')
       WHERE bucket = ${bucket}`;
  }

  /**
   * Pipedrive says the window is used up: when this bucket counts fewer calls than the limit,
   * others (another app on the token) made the rest, and nothing goes until the window resets.
   */
  async blockIfOthersCalled(bucket: RateLimitBucket, ms: number): Promise<void> {
    await this.db.client.$executeRaw`
      UPDATE pipedrive_rate_limits AS r
         SET blocked_until = greatest(r.blocked_until, clock_timestamp() + ${ms} * interval '1 millisecond')
       WHERE r.bucket = ${bucket} AND cardinality(${recent}) < r.call_limit`;
  }
}
