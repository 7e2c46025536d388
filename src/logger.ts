import type { Express, Request, RequestHandler, Response } from 'express';
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { LogLevel } from './config/config';

export type { Logger };

declare module 'http' {
  interface IncomingMessage {
    /** The request id: the caller's x-request-id, or one made for it. */
    id: string;
    /** Logs with the request's id, method and path. */
    log: Logger;
  }
}

/** Anything that may carry a credential is censored before it is written. */
const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["x-api-token"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'apiKey',
  'api_key',
  'password',
  'token',
  '*.apiKey',
  '*.api_key',
  '*.password',
  '*.token',
];

/** A person reads a terminal; production, pipes and files (log collectors, `docker logs`) get JSON lines. */
export function wantsReadableLogs(stdoutIsTty: boolean, nodeEnv: string | undefined): boolean {
  return stdoutIsTty && nodeEnv !== 'production';
}

interface LoggedRequest {
  id?: unknown;
  method?: unknown;
  url?: unknown;
}

/**
 * The message, then what it is about: for the line that ends a request its method, route,
 * status and duration; an error's type and message; the request id, which ties the lines of
 * one request together.
 */
function readableMessage(log: Record<string, unknown>, messageKey: string): string {
  const req = log.req as LoggedRequest | undefined;
  const res = log.res as { statusCode?: unknown } | undefined;
  const err = log.err as { type?: unknown; message?: unknown } | undefined;
  const parts = [String(log[messageKey] ?? '')];
  if (req && res) {
    parts.push(`${String(req.method)} ${String(log.route ?? req.url)} ${String(res.statusCode)} ${String(log.responseTime)}ms`);
  }
  if (err) parts.push(`(${String(err.type)}: ${String(err.message)})`);
  if (req?.id !== undefined) parts.push(`req=${String(req.id)}`);
  return parts.filter(Boolean).join(' ');
}

/**
 * One line per event on `destination` (standard output by default). A stream in this thread,
 * not a transport's worker: writes are synchronous, so the last lines before process.exit()
 * are not lost.
 */
export function readableLogStream(destination?: NodeJS.WritableStream): pretty.PrettyStream {
  return pretty({
    destination,
    sync: true,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    messageFormat: readableMessage,
    // Shown by readableMessage; the rest of a line's fields follow it as compact JSON.
    ignore: 'pid,hostname,service,req,res,responseTime,route,err',
    // Otherwise an `error` field would be printed on lines of its own.
    errorLikeObjectKeys: [],
  });
}

/** Logs JSON lines to `destination`; by default to standard output, readable lines when a person reads it. */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  const options = {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { service: 'contact-sync' },
  };
  if (destination) return pino(options, destination);
  return wantsReadableLogs(process.stdout.isTTY === true, process.env.NODE_ENV) ? pino(options, readableLogStream()) : pino(options);
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
export function logRequests(app: Express, logger: Logger, requestId: (req: Request, res: Response) => string): RequestHandler {
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
