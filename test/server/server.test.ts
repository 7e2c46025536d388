import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createScratchDatabase, dropDatabase } from '../../testkit/postgres-server';
import { freePort, spawnServer, stopServer, waitForStatus, type ServerProcess } from '../support/server-process';

const adminUrl = () => process.env.TEST_ADMIN_DATABASE_URL!;
const running: ServerProcess[] = [];
const start = (env: Record<string, string>) => {
  const server = spawnServer(env);
  running.push(server);
  return server;
};
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => stopServer(server, 'SIGKILL')));
});

async function tablesIn(databaseUrl: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public'");
    return rows.map((row) => row.tablename).sort();
  } finally {
    await client.end();
  }
}

describe('the server process', () => {
  it('with DATABASE_URL set, applies pending migrations, serves, and exits 0 on SIGTERM', async () => {
    const databaseUrl = await createScratchDatabase(adminUrl(), 'contact_sync_start');
    try {
      expect(await tablesIn(databaseUrl)).toEqual([]);
      const port = await freePort();
      const server = start({ PORT: String(port), DATABASE_URL: databaseUrl.replace('postgresql://', 'postgresql+psycopg://') });
      const health = await waitForStatus(server, '/contact/health', 200, 60_000);
      expect(await health.json()).toMatchObject({ status: 'ok', database: 'up', crm_configured: false });
      expect(await tablesIn(databaseUrl)).toEqual(expect.arrayContaining(['_prisma_migrations', 'contacts', 'notes']));

      const created = await fetch(`${server.baseUrl}/contact`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Ada', email: 'ada@example.com' }),
      });
      expect(created.status).toBe(201);

      expect(await stopServer(server, 'SIGTERM')).toBe(0);
      expect(server.output()).toMatch(/stopped/);
      const { password } = new URL(databaseUrl);
      if (password) expect(server.output()).not.toContain(`:${password}@`);
    } finally {
      await dropDatabase(adminUrl(), databaseUrl);
    }
  }, 90_000);

  it('with AUTO_MIGRATE=false and migrations pending, refuses to start and says what to do', async () => {
    const databaseUrl = await createScratchDatabase(adminUrl(), 'contact_sync_nomigrate');
    try {
      const server = start({ PORT: String(await freePort()), DATABASE_URL: databaseUrl, AUTO_MIGRATE: 'false' });
      expect(await server.exited).toBe(1);
      expect(server.output()).toMatch(/migration\(s\) not applied.*init.*npm run db:migrate/s);
      expect(await tablesIn(databaseUrl)).toEqual([]);
    } finally {
      await dropDatabase(adminUrl(), databaseUrl);
    }
  }, 60_000);

  it('refuses a bad setting with a message naming it', async () => {
    const server = start({ PORT: 'eighty' });
    expect(await server.exited).toBe(1);
    expect(server.output()).toMatch(/Invalid configuration: PORT/);
  }, 30_000);

  it('says so when its port is taken', async () => {
    const port = await freePort();
    const first = start({ PORT: String(port), DATABASE_URL: process.env.DATABASE_URL! });
    await waitForStatus(first, '/health', 200, 60_000);
    const second = start({ PORT: String(port), DATABASE_URL: process.env.DATABASE_URL! });
    expect(await second.exited).toBe(1);
    expect(second.output()).toMatch(new RegExp(`Port ${port} is already in use`));
  }, 90_000);

  it('with no database configured, starts an embedded PostgreSQL and serves on it', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'contact-sync-embedded-'));
    // As root the embedded server runs as the postgres user, which must be able to enter this folder.
    chmodSync(dataDir, 0o755);
    try {
      const port = await freePort();
      const server = start({ PORT: String(port), EMBEDDED_POSTGRES_DIR: path.join(dataDir, 'pg'), EMBEDDED_POSTGRES_PORT: String(await freePort()) });
      const health = await waitForStatus(server, '/contact/health', 200, 120_000);
      expect(await health.json()).toMatchObject({ status: 'ok', database: 'up' });
      const created = await fetch(`${server.baseUrl}/contact`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Embedded Ada' }),
      });
      expect(created.status).toBe(201);
      expect(server.output()).toMatch(/embedded PostgreSQL is running/);
      expect(await stopServer(server, 'SIGTERM')).toBe(0);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 150_000);
});
