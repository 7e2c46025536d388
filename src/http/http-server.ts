import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger';
import { answerClientErrorsWithJson } from './client-errors';
import type { InFlightRequests } from './in-flight';

export interface HttpServer {
  server: Server;
  /** The port it listens on (the one given, or the one picked for port 0). */
  port: number;
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

export interface HttpServerOptions {
  port: number;
  /** All interfaces when absent. */
  host?: string;
  /** The app's record of the requests it is handling (createApp's `inFlight`). */
  inFlight: InFlightRequests;
  logger: Logger;
}

/** Serves `app` the way the service does: malformed HTTP answered in the error shape, and a stop that drains. */
export async function startHttpServer(app: RequestListener, options: HttpServerOptions): Promise<HttpServer> {
  const server = createServer(app);
  answerClientErrorsWithJson(server, options.logger);
  const stop = drainingStop(server, options.inFlight, options.logger);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new Error(`Port ${options.port} is already in use; set PORT to a free port`) : error),
    );
    server.listen(options.port, options.host);
  });
  return { server, port: (server.address() as AddressInfo).port, stop };
}

/** Installed before the server takes requests, so that it sees every response. */
function drainingStop(server: Server, inFlight: InFlightRequests, logger: Logger): HttpServer['stop'] {
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

  return async (graceMs) => {
    const deadline = Date.now() + graceMs;
    stopping = true;
    for (const res of unanswered) if (!res.headersSent) res.setHeader('connection', 'close');
    const cutOff = setTimeout(() => server.closeAllConnections(), graceMs).unref();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    clearTimeout(cutOff);
    const settled = await inFlight.settled(Math.max(0, deadline - Date.now()));
    if (!settled) logger.warn({ requests: inFlight.size }, 'requests still running after the shutdown grace period');
    return settled;
  };
}
