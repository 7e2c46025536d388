import type { RequestHandler, Response } from 'express';
import type { Metrics } from './metrics';

const startedAt = Symbol('startedAt');
type TimedResponse = Response & { [startedAt]: number };

/**
 * Times every request. The label is the route pattern (`/contact/:id`), never the raw
 * path, so that ids and probing for unknown paths cannot multiply the series.
 */
export function recordRequestMetrics(metrics: Metrics): RequestHandler {
  // One listener for every response, its start on the response: no closure per request.
  function observe(this: TimedResponse): void {
    const { req } = this;
    const route = typeof req.route?.path === 'string' ? req.route.path : 'unmatched';
    metrics.observeHttp(req.method, route, this.statusCode, (performance.now() - this[startedAt]) / 1000);
  }
  return (_req, res, next) => {
    (res as TimedResponse)[startedAt] = performance.now();
    // 'finish' comes once per response.
    res.on('finish', observe);
    next();
  };
}

export function metricsEndpoint(metrics: Metrics): RequestHandler {
  return async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  };
}
