import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Express, Request, RequestHandler } from 'express';
import type { Logger } from '../logger';

declare module 'http' {
  interface IncomingMessage {
    /** The request id: the caller's x-request-id, or one made for it. */
    id: string;
    /** Logs with the request's id, method and path. */
    log: Logger;
  }
}

/** A caller's own request id is kept when it is short and plain; otherwise one is made. */
const REQUEST_ID = /^[\w.:-]{1,128}$/;

function requestId(req: IncomingMessage, res: ServerResponse): string {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
  res.setHeader('x-request-id', id);
  return id;
}

/** What names a request on each of its lines. No query string: it can hold an email address. */
const requestLine = (req: Request) => ({ id: req.id, method: req.method, url: req.originalUrl.split('?')[0] });

const requestLogger = Symbol('requestLogger');

/**
 * A middleware that gives every request of `app` an id (`requestId`) and a logger bound to it
 * (`req.log`), and ends each request with one line at info: its id, method, path, route pattern
 * (`/contact/:id`), status and duration; "request errored" for a 5xx or a response that failed.
 * These are the lines pino-http wrote, without the work it did for every request whether or not a
 * line was written (child loggers, serializers, redaction): `req.log` is made on first use, which
 * is when a request logs an error, and the closing line only when info is enabled.
 */
export function logRequests(app: Express, logger: Logger): RequestHandler {
  Object.defineProperty(app.request, 'log', {
    configurable: true,
    get(this: Request & { [requestLogger]?: Logger }): Logger {
      return (this[requestLogger] ??= logger.child({ req: requestLine(this) }));
    },
  });
  return (req, res, next) => {
    req.id = requestId(req, res);
    if (logger.isLevelEnabled('info')) {
      const started = Date.now();
      const done = (error?: Error) => {
        res.removeListener('close', done);
        res.removeListener('finish', done);
        res.removeListener('error', done);
        const line = {
          req: requestLine(req),
          // The route pattern is known once the router matched.
          route: typeof req.route?.path === 'string' ? req.route.path : undefined,
          // As pino's response serializer: no status for a response that never started.
          res: { statusCode: res.headersSent ? res.statusCode : null },
          responseTime: Date.now() - started,
        };
        // A 5xx's error is on the error handler's line, under the same request id.
        logger.info(line, error !== undefined || res.statusCode >= 500 ? 'request errored' : 'request completed');
      };
      res.on('close', done);
      res.on('finish', done);
      res.on('error', done);
    }
    next();
  };
}
