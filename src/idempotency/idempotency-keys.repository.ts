import { LockTimeoutError } from '../db/errors';
import type { TransactionScope } from '../db/transaction-scope';

/** Identifies one key: whose it is (the caller's scope) and the key itself. */
export interface KeyRef {
  caller: string;
  key: string;
}

export interface StoredAnswer {
  requestHash: string;
  status: number;
  body: unknown;
}

/** The idempotency_keys table: one small statement per function. */
export class IdempotencyKeysRepository {
  constructor(private readonly db: TransactionScope) {}

  /**
   * Claims the key for this transaction: `claimed` when it was free (never used, or expired), `taken`
   * when a committed request holds it. A request that holds it uncommitted makes this wait for its
   * commit or rollback, at most `lock_timeout` (see `limitLockWait`); past that, `busy`, and this
   * transaction can only be rolled back.
   */
  async claim(ref: KeyRef, requestHash: string, ttlMs: number): Promise<'claimed' | 'taken' | 'busy'> {
    const rows = await this.db.client.$queryRaw<unknown[]>`
      INSERT INTO idempotency_keys (caller, key, request_hash, expires_at)
      VALUES (${ref.caller}, ${ref.key}, ${requestHash}, now() + make_interval(secs => ${ttlMs / 1000}))
      ON CONFLICT (caller, key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, response_status = NULL, response_body = NULL,
            created_at = now(), expires_at = EXCLUDED.expires_at
        WHERE idempotency_keys.expires_at <= now()
      RETURNING 1`.catch((error: unknown) => {
      if (error instanceof LockTimeoutError) return 'busy' as const;
      throw error;
    });
    if (rows === 'busy') return rows;
    return rows.length > 0 ? 'claimed' : 'taken';
  }

  /** Bounds how long this transaction waits for a lock from now on (`SET LOCAL lock_timeout`). */
  async limitLockWait(ms: number): Promise<void> {
    await this.db.client.$queryRaw`SELECT set_config('lock_timeout', ${`${ms}ms`}, true)`;
  }

  /** Lets this transaction wait for locks as the server's setting says again. */
  async restoreLockWait(): Promise<void> {
    await this.db.client.$executeRaw`SET LOCAL lock_timeout TO DEFAULT`;
  }

  async find(ref: KeyRef): Promise<StoredAnswer | undefined> {
    const [row] = await this.db.client.$queryRaw<{ requestHash: string; status: number; body: unknown }[]>`
      SELECT request_hash AS "requestHash", response_status AS status, response_body AS body
        FROM idempotency_keys
       WHERE caller = ${ref.caller} AND key = ${ref.key} AND expires_at > now() AND response_status IS NOT NULL`;
    return row;
  }

  async saveAnswer(ref: KeyRef, status: number, body: unknown): Promise<void> {
    await this.db.client.$executeRaw`
      UPDATE idempotency_keys SET response_status = ${status}, response_body = ${JSON.stringify(body ?? null)}::jsonb
       WHERE caller = ${ref.caller} AND key = ${ref.key}`;
  }

  /**
   * Deletes up to `batch` expired keys; rows a request holds are skipped, so the purge never
   * waits for a request (nor a request long for it). Returns how many went.
   */
  purgeExpired(batch: number): Promise<number> {
    return this.db.prisma.$executeRaw`
      DELETE FROM idempotency_keys
       WHERE (caller, key) IN (
         SELECT caller, key FROM idempotency_keys WHERE expires_at <= now() LIMIT ${batch} FOR UPDATE SKIP LOCKED)`;
  }
}
