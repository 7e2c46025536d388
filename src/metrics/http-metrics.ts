import type { RequestHandler } from 'express';
import type { Metrics } from './metrics';

/**
 * Times every request. The label is the route pattern (`/contact/:id`), never the raw
 * path, so that ids and probing for unknown paths cannot multiply the series.
 */
export function recordRequestMetrics(metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      const route = typeof req.route?.path === 'string' ? req.route.path : 'unmatched';
      metrics.observeHttp(req.method, route, res.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
    });
    next();
  };
}

export function metricsEndpoint(metrics: Metrics): RequestHandler {
  return async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  };
}
