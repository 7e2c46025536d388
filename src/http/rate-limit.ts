import type { RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import { RateLimitedError } from './http-errors';
import { isOpenPath } from './api-keys';

export interface RateLimitSettings {
  /** Requests a caller may make per window; 0 turns limiting off. */
  max: number;
  windowMs: number;
}

/**
 * Per API key (per IP for anonymous callers, when no keys are configured). Runs after
 * the key check, which leaves the caller's key id in res.locals. Probes are not limited.
 */
export function rateLimitPerCaller(settings: RateLimitSettings): RequestHandler {
  if (settings.max === 0) return (_req, _res, next) => next();
  const limiter = rateLimit({
    windowMs: settings.windowMs,
    limit: settings.max,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    keyGenerator: (req, res) => (res.locals.apiKeyId ? `key:${String(res.locals.apiKeyId)}` : `ip:${ipKeyGenerator(req.ip ?? '')}`),
    handler: (_req, res, next) =>
      next(new RateLimitedError(`Too many requests; retry after ${String(res.getHeader('retry-after') ?? 'a while')} seconds`)),
  });
  // Probes are let through before the limiter rather than by its `skip`, which it would reach only
  // after its own work (an async call, the caller's address worked out for its debug output).
  return (req, res, next) => (isOpenPath(req.path) ? next() : limiter(req, res, next));
}
