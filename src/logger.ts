import pino, { type Logger } from 'pino';
import type { LogLevel } from './config/config';

export type { Logger };

/** Anything that may carry a credential is censored before it is written. */
const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["x-api-token"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.apiKey',
  '*.api_key',
  '*.password',
  '*.token',
];

/** Logs JSON lines to `destination` (standard output by default). */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  const options = {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { service: 'contact-sync' },
  };
  return destination ? pino(options, destination) : pino(options);
}
