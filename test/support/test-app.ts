import type { Express } from 'express';
import { buildHttpApp, buildServices, type ServiceOverrides, type Services } from '../../src/composition';
import { loadConfig } from '../../src/config/config';
import type { InFlightRequests } from '../../src/http/in-flight';
import { createLogger, type Logger } from '../../src/logger';
import type { MirrorWorker } from '../../src/mirror/mirror-worker';

export interface TestApp {
  app: Express;
  services: Services;
  prisma: Services['prisma'];
  logger: Logger;
  /** The requests the app is handling (for startHttpServer). */
  inFlight: InFlightRequests;
  /** Starts the mirror worker in this process (only with a Pipedrive key). */
  startWorker(): Promise<MirrorWorker>;
  /** Empties every table (the mirror's queue and pause with them), and restarts the id sequences. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

export interface TestAppOptions extends ServiceOverrides {
  /** Environment variables, as the service would read them. */
  env?: Record<string, string>;
  databaseUrl?: string;
  bodyLimit?: string;
  /** Receives every log line (at debug level) instead of silence. */
  logLines?: string[];
}

/** The real app, composed as in production, over the suite's real, migrated database. */
export function createTestApp(options: TestAppOptions = {}): TestApp {
  // No rate limit unless a test asks: suites send many requests from one address.
  const config = loadConfig({ DATABASE_CONNECT_TIMEOUT_MS: '1000', DATABASE_POOL_SIZE: '20', RATE_LIMIT_MAX: '0', ...options.env });
  const logLines = options.logLines;
  const logger = logLines
    ? createLogger('debug', { write: (line: string) => void logLines.push(line) })
    : createLogger(process.env.TEST_LOG_LEVEL === 'debug' ? 'debug' : 'silent');
  const databaseUrl = options.databaseUrl ?? process.env.DATABASE_URL;
  if (!databaseUrl) throw new Error('DATABASE_URL is not set: run the tests through jest (see test/support/global-setup.ts)');
  const services = buildServices(config, databaseUrl, logger, options);
  const { app, inFlight } = buildHttpApp({ ...config, bodyLimit: options.bodyLimit ?? config.bodyLimit }, services, logger);
  const workers: MirrorWorker[] = [];
  return {
    app,
    services,
    prisma: services.prisma,
    logger,
    inFlight,
    startWorker: async () => {
      if (!services.startWorker) throw new Error('no PIPEDRIVE_API_KEY in env: the mirror is disabled');
      const worker = await services.startWorker();
      workers.push(worker);
      return worker;
    },
    reset: async () => {
      await services.prisma.$executeRawUnsafe(
        'TRUNCATE contacts, notes, crm_health, idempotency_keys, mirror_pause, pipedrive_budget, pipedrive_persons, pipedrive_index_state, pipedrive_rate_limits, pipedrive_webhook_deliveries, operator_runs RESTART IDENTITY CASCADE',
      );
    },
    close: async () => {
      await Promise.all(workers.splice(0).map((worker) => worker.stop()));
      await services.close();
    },
  };
}
