import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import { UnauthorizedError } from './http-errors';

/** Paths anyone may call: probes and the API's own description. */
const OPEN_PATHS = [/^\/health$/, /^\/contact\/health$/, /^\/openapi\.json$/, /^\/docs(\/.*)?$/];

/** Paths whose routes authenticate their callers themselves: Pipedrive's webhook deliveries (Basic credentials). */
const OWN_AUTH_PATHS = [/^\/webhooks\/pipedrive$/];

/** Paths that need no API key, and count against no caller's rate limit. */
export const isOpenPath = (path: string) => OPEN_PATHS.some((pattern) => pattern.test(path)) || OWN_AUTH_PATHS.some((pattern) => pattern.test(path));

const digest = (key: string) => createHash('sha256').update(key).digest();

function presentedKey(header: (name: string) => string | undefined): string | undefined {
  const apiKey = header('x-api-key')?.trim();
  if (apiKey) return apiKey;
  const bearer = /^Bearer\s+(.+)$/i.exec(header('authorization') ?? '')?.[1]?.trim();
  return bearer || undefined;
}

/**
 * Requires one of `keys` in `x-api-key` (n8n's header auth) or `Authorization: Bearer`.
 * Keys are compared as SHA-256 digests with timingSafeEqual, against every configured key,
 * so neither the comparison nor the number of keys tried leaks how close a guess was.
 * The caller's key is identified downstream (rate limits, idempotency keys) by its digest, never by itself.
 */
export function requireApiKey(keys: readonly string[]): RequestHandler {
  const digests = keys.map(digest);
  // The digests of keys that matched, so that the same few keys, sent with every request, are not
  // hashed again each time. Only keys that matched are kept: at most one entry per configured key,
  // whatever callers send. The lookup hashes the whole string and compares contents only on equal
  // hashes, so it tells nothing about how close a wrong key is; the comparison below still runs.
  const matched = new Map<string, { digest: Buffer; id: string }>();
  return (req, res, next) => {
    if (digests.length === 0 || isOpenPath(req.path)) {
      next();
      return;
    }
    const key = presentedKey((name) => req.get(name));
    if (!key) {
      next(new UnauthorizedError('An API key is required: send it in x-api-key or Authorization: Bearer'));
      return;
    }
    const seen = matched.get(key);
    const presented = seen?.digest ?? digest(key);
    const matches = digests.reduce((found, known) => timingSafeEqual(known, presented) || found, false);
    if (!matches) {
      next(new UnauthorizedError('The API key is not valid'));
      return;
    }
    const caller = seen ?? { digest: presented, id: presented.toString('hex') };
    if (!seen) matched.set(key, caller);
    res.locals.apiKeyId = caller.id;
    next();
  };
}

/** Whose request this is, for state kept per caller: the API key's digest; '' when no keys are configured. */
export const callerScope = (res: Response): string => (typeof res.locals.apiKeyId === 'string' ? res.locals.apiKeyId : '');
