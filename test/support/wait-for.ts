import type pg from 'pg';

/** Polls `probe` until it returns a truthy value or `timeoutMs` passes; then fails with `what`. */
export async function waitFor<T>(what: string, probe: () => Promise<T> | T, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Waits until `count` sessions of the test database wait for a lock. */
export async function waitForLockWaiters(observer: pg.Client, count: number, what: string): Promise<void> {
  await waitFor(
    what,
    async () =>
      (await observer.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`))
        .rowCount === count,
    5_000,
    10,
  );
}
