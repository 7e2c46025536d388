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

export function createLogger(level: LogLevel): Logger {
  return pino({
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { service: 'contact-sync' },
  });
}
