import { applyMigrations } from '../../src/db/migrate';
import { createScratchDatabase, locateTestServer } from '../../testkit/postgres-server';

/** One migrated database for the whole run; test files empty it between tests. */
export default async function globalSetup(): Promise<void> {
  const server = await locateTestServer();
  const databaseUrl = await createScratchDatabase(server.url, 'contact_sync_test');
  await applyMigrations(databaseUrl);
  process.env.TEST_ADMIN_DATABASE_URL = server.url;
  process.env.DATABASE_URL = databaseUrl;
  (globalThis as { testServer?: typeof server }).testServer = server;
}
