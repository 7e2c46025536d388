import { isUtf8 } from 'node:buffer';
import cors from 'cors';
import express, { type Express, type RequestHandler } from 'express';
import helmet from 'helmet';
import swaggerUi from 'swagger-ui-express';
import type { IdempotentRequests } from '../idempotency/idempotent-requests';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics/metrics';
import { metricsEndpoint, recordRequestMetrics } from '../metrics/http-metrics';
import { requireApiKey } from './api-keys';
import { errorHandler, requireJsonBody, unknownRoute } from './error-handler';
import type { InFlightRequests } from './in-flight';
import { buildOpenApiDocument } from './openapi';
import { logRequests } from './request-log';
import { rateLimitPerCaller, type RateLimitSettings } from './rate-limit';
import { mountRoutes, type AnyRoute } from './route';

export interface AppDependencies {
  /** The API's routes, each served and described in /openapi.json. */
  routes: readonly AnyRoute[];
  /** Served at GET /metrics, and fed by every request. */
  metrics?: Metrics;
  logger: Logger;
  /** Origins allowed to call the API from a browser; empty means none. */
  corsOrigins: readonly string[];
  /** Largest accepted JSON body, in bytes or a size such as "100kb". */
  bodyLimit?: string | number;
  /** Keys callers must send; empty or absent: no key required. */
  apiKeys?: readonly string[];
  rateLimit?: RateLimitSettings;
  /** Follows the requests being handled, for a shutdown that waits for them. */
  inFlight?: InFlightRequests;
  /** Serves the Idempotency-Key header; absent: the header is ignored. */
  idempotency?: IdempotentRequests;
}

/**
 * `handlers` as one middleware, run in order. Express's router spends more on each of its layers
 * (matching, parameters, closures) than most of these spend themselves. As from separate layers,
 * an error passed to `next`, thrown, or a rejected promise goes on to the error handler.
 */
export function inSequence(handlers: RequestHandler[]): RequestHandler {
  return (req, res, next) => {
    let index = 0;
    const step = (error?: unknown): void => {
      const handler = handlers[index++];
      if (error || !handler) {
        next(error);
        return;
      }
      try {
        const returned: unknown = handler(req, res, step);
        if (returned instanceof Promise) returned.catch((rejection: unknown) => step(rejection || new Error('Rejected promise')));
      } catch (thrown) {
        step(thrown);
      }
    };
    step();
  };
}

export function createApp(deps: AppDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(
    inSequence([
      logRequests(app, deps.logger),
      helmet(),
      // Without origins cors() does nothing: it answers no preflight and sets no header.
      ...(deps.corsOrigins.length > 0 ? [cors({ origin: [...deps.corsOrigins], exposedHeaders: ['x-request-id', 'idempotent-replayed'] })] : []),
      ...(deps.metrics ? [recordRequestMetrics(deps.metrics)] : []),
      requireApiKey(deps.apiKeys ?? []),
      rateLimitPerCaller(deps.rateLimit ?? { max: 0, windowMs: 60_000 }),
      requireJsonBody,
      express.json({
        limit: deps.bodyLimit ?? '100kb',
        // The decoder would quietly turn invalid bytes into U+FFFD and store that.
        verify: (_req, _res, body) => {
          if (!isUtf8(body)) throw Object.assign(new SyntaxError('The request body is not valid UTF-8'), { type: 'entity.parse.failed' });
        },
      }),
    ]),
  );

  const { routes } = deps;
  const router = express.Router();
  mountRoutes(router, routes, { inFlight: deps.inFlight, idempotency: deps.idempotency });
  app.use(router);

  const openApiDocument = buildOpenApiDocument(routes);
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(openApiDocument));
  if (deps.metrics) app.get('/metrics', metricsEndpoint(deps.metrics));

  app.use(unknownRoute);
  app.use(errorHandler);
  return app;
}
