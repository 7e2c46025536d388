import { existsSync } from 'node:fs';
import { buildServices, type Services } from './composition';
import { loadConfig, type Config } from './config/config';
import { provisionDatabase } from './db/database';
import type { RunningDatabase } from './db/embedded-postgres';
import { createLogger, type Logger } from './logger';

export interface Runtime {
  config: Config;
  logger: Logger;
  database: RunningDatabase;
  services: Services;
}

/** What every process of the service does first: configuration, database, migrations, services. */
export async function bootstrap(): Promise<Runtime> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const database = await provisionDatabase(config.database, logger);
  const services = buildServices(config, database.url, logger);
  // Rows stored before phones were normalised (or under another DEFAULT_PHONE_REGION) get their E.164 form.
  const phones = await services.contactService.normaliseStoredPhones();
  if (phones.normalised > 0 || phones.unreadable > 0) logger.info(phones, 'stored phone numbers normalised to E.164');
  return { config, logger, database, services };
}

/**
 * A shutdown still running after this long is stuck (it waits at most for the HTTP grace period,
 * then for mirror runs bounded by PIPEDRIVE_TIMEOUT_MS): the process exits 1 rather than hang
 * until it is killed.
 */
export const SHUTDOWN_DEADLINE_MS = 25_000;

/** Runs `shutdown` once on SIGTERM or SIGINT, then exits 0 (1 if shutting down failed or was stuck). */
export function onShutdownSignal(logger: Logger, shutdown: () => Promise<void>, deadlineMs = SHUTDOWN_DEADLINE_MS): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: finishing work in flight');
    setTimeout(() => {
      logger.error({ deadlineMs }, 'shutdown did not finish in time; exiting');
      process.exit(1);
    }, deadlineMs).unref();
    shutdown().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** Runs a process's main function; a start-up failure ends the process with its message. */
export function runMain(name: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    console.error(`${name} did not start: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
