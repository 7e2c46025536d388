import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import cors from 'cors';
import express, { type Express } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import swaggerUi from 'swagger-ui-express';
import { contactRoutes } from '../contacts/contact.routes';
import type { ContactService } from '../contacts/contact.service';
import type { IdempotentRequests } from '../idempotency/idempotent-requests';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics/metrics';
import { metricsEndpoint, recordRequestMetrics } from '../metrics/http-metrics';
import type { SyncRepository } from '../sync/sync.repository';
import { syncRoutes } from '../sync/sync.routes';
import { requireApiKey } from './api-keys';
import { errorHandler, requireJsonBody, unknownRoute } from './error-handler';
import { healthRoutes } from './health.routes';
import type { InFlightRequests } from './in-flight';
import { buildOpenApiDocument } from './openapi';
import { rateLimitPerCaller, type RateLimitSettings } from './rate-limit';
import { mountRoutes } from './route';

export interface AppDependencies {
  contactService: ContactService;
  syncRepository: SyncRepository;
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

/** A caller's own request id is kept when it is short and plain; otherwise one is made. */
const REQUEST_ID = /^[\w.:-]{1,128}$/;

export function createApp(deps: AppDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(
    pinoHttp<express.Request, express.Response>({
      logger: deps.logger,
      genReqId: (req, res) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
        res.setHeader('x-request-id', id);
        return id;
      },
      // What names a request, on each of its lines; its headers (helmet's set included) would bury it.
      // No query string: it can hold an email address.
      serializers: {
        req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, url: req.url.split('?')[0] }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      // Called again when the response ends: the route pattern (`/contact/:id`) is known once the router matched.
      customProps: (req) => ({ route: typeof req.route?.path === 'string' ? req.route.path : undefined }),
      // pino-http puts a stand-in error ("failed with status code 503") on a 5xx line; the real one is
      // logged by the error handler, under the same request id.
      customErrorObject: (_req, _res, _error, { err: _standIn, ...line }: Record<string, unknown>) => line,
    }),
  );
  app.use(helmet());
  app.use(cors({ origin: deps.corsOrigins.length > 0 ? [...deps.corsOrigins] : false, exposedHeaders: ['x-request-id', 'idempotent-replayed'] }));
  if (deps.metrics) app.use(recordRequestMetrics(deps.metrics));
  app.use(requireApiKey(deps.apiKeys ?? []));
  app.use(rateLimitPerCaller(deps.rateLimit ?? { max: 0, windowMs: 60_000 }));
  app.use(requireJsonBody);
  app.use(
    express.json({
      limit: deps.bodyLimit ?? '100kb',
      // The decoder would quietly turn invalid bytes into U+FFFD and store that.
      verify: (_req, _res, body) => {
        if (!isUtf8(body)) throw Object.assign(new SyntaxError('The request body is not valid UTF-8'), { type: 'entity.parse.failed' });
      },
    }),
  );

  // Health first: `/contact/health` must not be taken for `/contact/:id`.
  const routes = [
    ...healthRoutes(deps.contactService),
    ...contactRoutes(deps.contactService),
    ...syncRoutes(deps.syncRepository),
  ];
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
