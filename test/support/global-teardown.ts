import type { RunningDatabase } from '../../src/db/embedded-postgres';
import { dropDatabase } from '../../testkit/postgres-server';

export default async function globalTeardown(): Promise<void> {
  const server = (globalThis as { testServer?: RunningDatabase }).testServer;
  if (!server || !process.env.DATABASE_URL) return;
  await dropDatabase(server.url, process.env.DATABASE_URL);
  await server.stop();
}
