import { OpenAPIRegistry, OpenApiGeneratorV31, type ResponseConfig, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { IdempotencyKeyHeader } from '../idempotency/idempotent-requests';
import { isOpenPath } from './api-keys';
import { ErrorResponse } from './error-response';
import type { AnyRoute } from './route';

/** `/contact/:id` → `/contact/{id}` */
const toOpenApiPath = (path: string) => path.replace(/:([A-Za-z_]+)/g, '{$1}');

/**
 * Either scheme carries the same key (src/http/api-keys.ts). Declared whether or not this instance
 * has keys: the document describes the contract, which production always enforces.
 */
const API_KEY_SECURITY: Record<string, string[]>[] = [{ apiKey: [] }, { bearer: [] }];

const KEY_DESCRIPTION =
  'One of the keys in the service\'s API_KEYS. A service run without keys (refused with NODE_ENV=production) needs none.';

const error = (description: string, headers?: ResponseConfig['headers']): ResponseConfig => ({
  description,
  headers,
  content: { 'application/json': { schema: ErrorResponse } },
});

/** What the middleware in front of the routes (src/http/app.ts) answers, so any route can. */
const EVERY_ROUTE: Record<number, ResponseConfig> = {
  400: error('MALFORMED_REQUEST: not valid HTTP/1.1; MALFORMED_JSON: the body is not JSON'),
  413: error('PAYLOAD_TOO_LARGE: the body is over BODY_LIMIT (100 kB by default)'),
  415: error('UNSUPPORTED_MEDIA_TYPE: a body must be UTF-8 application/json'),
};

/** What the key check and the rate limit answer, on the routes that need a key. */
const GUARDED_ROUTES: Record<number, ResponseConfig> = {
  401: error('UNAUTHORIZED: no API key, or a wrong one'),
  429: error("RATE_LIMITED: this caller's requests for the window are used up", {
    'Retry-After': { description: 'Seconds until the window resets', schema: { type: 'integer' } },
    RateLimit: { description: 'Requests left and seconds to the reset, e.g. `"600-in-1min"; r=0; t=42`', schema: { type: 'string' } },
    'RateLimit-Policy': { description: 'The quota, e.g. `"600-in-1min"; q=600; w=60`', schema: { type: 'string' } },
  }),
};

const IDEMPOTENCY_KEY_IN_USE = 'IDEMPOTENCY_KEY_IN_USE: the first request with this Idempotency-Key is still running; retry shortly';

/** What a route that honours Idempotency-Key adds to its answers. */
function declareIdempotencyAnswers(responses: RouteConfig['responses']): void {
  for (const [status, response] of Object.entries(responses)) {
    if (!status.startsWith('2')) continue;
    responses[status] = {
      ...response,
      headers: {
        'Idempotent-Replayed': {
          description: '`true` when this is the stored answer of an earlier request with the key',
          schema: { type: 'string', enum: ['true'] },
        },
      },
    };
  }
  const conflict = responses[409];
  responses[409] = error(conflict && 'description' in conflict ? `${conflict.description}; ${IDEMPOTENCY_KEY_IN_USE}` : IDEMPOTENCY_KEY_IN_USE);
  responses[422] = error('IDEMPOTENCY_KEY_REUSED: this Idempotency-Key was used with another request');
}

export function buildOpenApiDocument(routes: readonly AnyRoute[]) {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'apiKey', { type: 'apiKey', in: 'header', name: 'x-api-key', description: KEY_DESCRIPTION });
  registry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer', description: KEY_DESCRIPTION });
  if (routes.some((route) => route.authenticate)) {
    registry.registerComponent('securitySchemes', 'basic', { type: 'http', scheme: 'basic', description: 'A route\'s own HTTP Basic credentials (Pipedrive\'s webhook deliveries)' });
  }

  for (const route of routes) {
    const guarded = !isOpenPath(route.path);
    // A route's own declaration of a status (a 400 naming its fields) takes precedence.
    const responses: RouteConfig['responses'] = { ...EVERY_ROUTE, ...(guarded ? GUARDED_ROUTES : {}) };
    for (const [status, spec] of Object.entries(route.responses)) {
      responses[status] = spec.schema
        ? { description: spec.description, content: { 'application/json': { schema: spec.schema } } }
        : { description: spec.description };
    }
    if (route.idempotent) declareIdempotencyAnswers(responses);
    registry.registerPath({
      method: route.method,
      path: toOpenApiPath(route.path),
      summary: route.summary,
      tags: [route.tag],
      security: route.authenticate ? [{ basic: [] }] : guarded ? API_KEY_SECURITY : undefined,
      request: {
        body: route.body && { required: true, content: { 'application/json': { schema: route.body } } },
        query: route.query,
        params: route.params,
        headers: route.idempotent ? z.object({ 'Idempotency-Key': IdempotencyKeyHeader.optional() }) : undefined,
      },
      responses,
    });
  }
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Contact sync API',
      version: '1.0.0',
      description: 'System of record for sales contacts, mirrored to Pipedrive.',
    },
  });
}
