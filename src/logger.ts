import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { LogLevel } from './config/config';

export type { Logger };

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
