import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CrmErrorKind } from '../mirror/crm-gateway';
import type { MirrorOutcome } from '../mirror/mirror-runs';

export interface QueueDepth {
  queued: number;
  failed: number;
}

/** Pipedrive paths with their ids taken out, so that each endpoint is one series. */
const endpointOf = (path: string) => path.replace(/\/\d+(?=\/|$)/g, '/:id');

/** The service's Prometheus metrics, one registry per process, served at GET /metrics. */
export class Metrics {
  readonly registry = new Registry();

  private readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP requests by route pattern, method and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  private readonly mirrorRuns = new Counter({
    name: 'mirror_runs_total',
    help: 'Mirror runs (a contact and its pending notes) by outcome: synced, retry, failed, paused',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  private readonly pipedriveDuration = new Histogram({
    name: 'pipedrive_request_duration_seconds',
    help: 'Pipedrive API calls by method, endpoint and outcome',
    labelNames: ['method', 'endpoint', 'outcome'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  private readonly pipedriveRateLimited = new Counter({
    name: 'pipedrive_rate_limited_total',
    help: 'HTTP 429 answers received from Pipedrive',
    registers: [this.registry],
  });

  /** `queueDepth` and `tokenUse` are read at scrape time, so that every API process reports the shared state. */
  constructor(sources: { queueDepth?: () => Promise<QueueDepth>; tokenUse?: () => Promise<{ spent: number; left: number | null }> } = {}) {
    collectDefaultMetrics({ register: this.registry });
    const { queueDepth, tokenUse } = sources;
    if (tokenUse) {
      new Gauge({
        name: 'pipedrive_daily_tokens',
        help: 'Pipedrive daily token budget: spent by the mirror today (state="spent"), left for the company as last reported (state="left", absent until reported)',
        labelNames: ['state'] as const,
        registers: [this.registry],
        async collect() {
          const use = await tokenUse();
          this.reset();
          this.set({ state: 'spent' }, use.spent);
          if (use.left !== null) this.set({ state: 'left' }, use.left);
        },
      });
    }
    if (queueDepth) {
      new Gauge({
        name: 'mirror_queue',
        help: 'Contacts waiting for the mirror, due or retrying (state="queued"), and contacts and notes given up (state="failed")',
        labelNames: ['state'] as const,
        registers: [this.registry],
        async collect() {
          const depth = await queueDepth();
          this.set({ state: 'queued' }, depth.queued);
          this.set({ state: 'failed' }, depth.failed);
        },
      });
    }
  }

  observeHttp(method: string, route: string, status: number, seconds: number): void {
    this.httpDuration.observe({ method, route, status: String(status) }, seconds);
  }

  countMirrorRun(outcome: MirrorOutcome): void {
    this.mirrorRuns.inc({ outcome });
  }

  observePipedrive(method: string, path: string, outcome: 'ok' | CrmErrorKind, seconds: number): void {
    this.pipedriveDuration.observe({ method, endpoint: endpointOf(path), outcome }, seconds);
    if (outcome === 'rate_limited') this.pipedriveRateLimited.inc();
  }
}
