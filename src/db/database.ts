import type { Config } from '../config/config';
import { redactDatabaseUrl } from '../config/database-url';
import type { Logger } from '../logger';
import { startEmbeddedPostgres, type RunningDatabase } from './embedded-postgres';
import { applyMigrations, listPendingMigrations } from './migrate';

export class PendingMigrationsError extends Error {
  override readonly name = 'PendingMigrationsError';
}

/**
 * The database the service runs on: the configured one, or an embedded PostgreSQL
 * when none is configured; in both cases with every migration applied.
 */
export async function provisionDatabase(config: Config['database'], logger: Logger): Promise<RunningDatabase> {
  const database = config.url
    ? { url: config.url, stop: async () => undefined }
    : await startEmbeddedPostgres({ dataDir: config.embedded.dataDir, port: config.embedded.port, database: 'contacts' }, logger);
  try {
    await migrate(database.url, config.autoMigrate, logger);
  } catch (error) {
    await database.stop();
    throw error;
  }
  return database;
}

async function migrate(url: string, autoMigrate: boolean, logger: Logger): Promise<void> {
  // Asking first keeps an up-to-date start fast: the Prisma CLI takes seconds even with nothing to do.
  const pending = await listPendingMigrations(url);
  if (pending.length === 0) return;
  if (!autoMigrate) {
    throw new PendingMigrationsError(
      `${pending.length} migration(s) not applied to ${redactDatabaseUrl(url)}: ${pending.join(', ')}. ` +
        'Apply them with `npm run db:migrate`, or start with AUTO_MIGRATE=true.',
    );
  }
  logger.info({ database: redactDatabaseUrl(url), pending }, 'applying pending migrations');
  await applyMigrations(url);
}
