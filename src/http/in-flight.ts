/**
 * The requests being handled. Shutdown waits for them before closing the database: a request
 * whose client has gone away keeps running, and its connection closing says nothing about it.
 */
export class InFlightRequests {
  private readonly pending = new Set<Promise<unknown>>();

  get size(): number {
    return this.pending.size;
  }

  track<T>(work: Promise<T>): Promise<T> {
    const tracked = work.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
    return tracked;
  }

  /** Resolves when nothing is in flight (true), or after `timeoutMs` with work still running (false). */
  async settled(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    try {
      // Work may start while earlier work finishes (requests on connections still open): look again.
      while (this.pending.size > 0) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) return false;
        const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), remaining)));
        const outcome = await Promise.race([Promise.allSettled([...this.pending]), timedOut]);
        clearTimeout(timer);
        if (outcome === 'timeout') return false;
      }
      return true;
    } finally {
      clearTimeout(timer);
    }
  }
}
