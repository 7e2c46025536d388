import { redactDatabaseUrl } from './config/database-url';
import { buildHttpApp } from './composition';
import { startHttpServer } from './http/http-server';
import { bootstrap, onShutdownSignal, runMain } from './runtime';

/** In-flight requests get this long after SIGTERM before their connections are cut. */
const SHUTDOWN_GRACE_MS = 10_000;

/** How often expired Idempotency-Keys are deleted (they stop counting the moment they expire). */
const IDEMPOTENCY_PURGE_INTERVAL_MS = 15 * 60_000;

async function main(): Promise<void> {
  const { config, logger, database, services } = await bootstrap();
  const { app, inFlight } = buildHttpApp(config, services, logger);
  if (config.apiKeys.length === 0) logger.warn('API_KEYS is not set: the API is open to anyone who can reach it');
  const worker = config.mirror.runWorker ? await services.startWorker?.() : undefined;
  const stopIdempotencyPurge = services.idempotency.purgePeriodically(IDEMPOTENCY_PURGE_INTERVAL_MS);

  const server = await startHttpServer(app, { port: config.port, inFlight, logger });
  logger.info(
    {
      port: config.port,
      database: redactDatabaseUrl(database.url),
      crmConfigured: config.pipedrive.apiKey !== undefined,
      syncWorker: worker !== undefined,
    },
    'contact service listening',
  );

  onShutdownSignal(logger, async () => {
    // The database closes only after the requests using it are done.
    await server.stop(SHUTDOWN_GRACE_MS);
    stopIdempotencyPurge();
    await worker?.stop();
    await services.close();
    await database.stop();
  });
}

runMain('contact service', main);
