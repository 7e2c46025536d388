import { randomBytes } from 'node:crypto';
import { databaseAnswers, startEmbeddedPostgres, type RunningDatabase } from '../src/db/embedded-postgres';
import { databaseName, urlForDatabase, withClient } from '../src/db/pg-admin';
import { createLogger } from '../src/logger';

const LOCAL_SERVER = 'postgresql://postgres@127.0.0.1:5432/postgres';

/**
 * The PostgreSQL server the suite runs on, found as `npm start` would find one:
 * TEST_DATABASE_URL, else a server on 127.0.0.1:5432, else the embedded PostgreSQL.
 */
export async function locateTestServer(): Promise<RunningDatabase> {
  if (process.env.TEST_DATABASE_URL) return { url: process.env.TEST_DATABASE_URL, stop: async () => undefined };
  if (await databaseAnswers(LOCAL_SERVER)) return { url: LOCAL_SERVER, stop: async () => undefined };
  return startEmbeddedPostgres(
    { dataDir: '.data/test-postgres', port: 54339, database: 'postgres' },
    createLogger('warn'),
  );
}

/** Creates an empty database with a unique name; returns its URL. */
export async function createScratchDatabase(adminUrl: string, prefix: string): Promise<string> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  await withClient(adminUrl, (client) => client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`));
  return urlForDatabase(adminUrl, name);
}

export async function dropDatabase(adminUrl: string, databaseUrl: string): Promise<void> {
  await withClient(adminUrl, (client) =>
    client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(databaseName(databaseUrl))} WITH (FORCE)`),
  );
}
