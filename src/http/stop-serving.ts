import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from '../logger';
import type { InFlightRequests } from './in-flight';

export interface StoppableServer {
  /**
   * Stops serving without dropping work that was accepted:
   * - the server stops listening at once, so new connections are refused;
   * - idle keep-alive connections are closed, and every response from now on, including those of
   *   requests already being handled, says `Connection: close`: a busy connection ends after its
   *   current request instead of carrying new ones for as long as its client keeps sending;
   * - requests being handled finish, including those whose clients have gone away;
   * - after `graceMs`, connections still open are cut, and it returns even if handlers still run.
   * Resolves with whether everything finished within the grace period.
   */
  stop(graceMs: number): Promise<boolean>;
}

/** Call once the server is created, before it takes requests. */
export function makeStoppable(server: Server, inFlight: InFlightRequests, logger: Logger): StoppableServer {
  const unanswered = new Set<ServerResponse>();
  let stopping = false;
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (stopping) {
      res.setHeader('connection', 'close');
      return;
    }
    unanswered.add(res);
    res.once('close', () => unanswered.delete(res));
  });

  return {
    async stop(graceMs) {
      const deadline = Date.now() + graceMs;
      stopping = true;
      for (const res of unanswered) if (!res.headersSent) res.setHeader('connection', 'close');
      const cutOff = setTimeout(() => server.closeAllConnections(), graceMs).unref();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      clearTimeout(cutOff);
      const settled = await inFlight.settled(Math.max(0, deadline - Date.now()));
      if (!settled) logger.warn({ requests: inFlight.size }, 'requests still running after the shutdown grace period');
      return settled;
    },
  };
}
