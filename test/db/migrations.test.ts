import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { applyMigrations, listPendingMigrations, migrationsDirectory, repoRoot } from '../../src/db/migrate';
import { withClient } from '../../src/db/pg-admin';
import { createScratchDatabase as createScratchDatabaseOn, dropDatabase } from '../../testkit/postgres-server';

// The wasm schema engine is slow-ish, and `migrate deploy` lingers ~10 s before exiting.
jest.setTimeout(60_000);

const adminUrl = process.env.TEST_ADMIN_DATABASE_URL!;
const createdDatabases: string[] = [];


async function createScratchDatabase(): Promise<string> {
  const url = await createScratchDatabaseOn(adminUrl, 'contact_sync_migrations');
  createdDatabases.push(url);
  return url;
}

async function shadowDatabases(): Promise<string[]> {
  return withClient(adminUrl, async (client) => {
    const { rows } = await client.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname LIKE 'prisma_migrate_shadow_db_%'",
    );
    return rows.map((row) => row.datname);
  });
}

/** `prisma migrate diff` from the committed migrations to a schema file; the shadow database lives on adminUrl's server. */
function driftCheck(schemaPath: string): Promise<{ exitCode: number; output: string }> {
  const args = [
    require.resolve('prisma/build/index.js'),
    'migrate', 'diff',
    '--from-migrations', migrationsDirectory,
    '--to-schema-datamodel', schemaPath,
    '--exit-code',
  ];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { cwd: repoRoot, env: { ...process.env, DATABASE_URL: adminUrl, CHECKPOINT_DISABLE: '1' }, timeout: 50_000 },
      (error, stdout, stderr) => {
        const exitCode = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ exitCode, output: `${stdout}${stderr}` });
      },
    );
  });
}

afterAll(async () => {
  for (const url of createdDatabases) await dropDatabase(adminUrl, url);
});

// The tests share one database, in order: the first one migrates it.
describe('applyMigrations and listPendingMigrations', () => {
  let databaseUrl: string;

  beforeAll(async () => {
    databaseUrl = await createScratchDatabase();
  });

  test('apply every migration to an empty database, leaving none pending', async () => {
    const local = (await readdir(migrationsDirectory, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    expect(local).toEqual(expect.arrayContaining([expect.stringMatching(/^\d{14}_init$/)]));
    expect(await listPendingMigrations(databaseUrl)).toEqual(local);

    await applyMigrations(databaseUrl);

    const tables = await withClient(databaseUrl, (client) =>
      client.query("SELECT to_regclass('contacts') AS contacts, to_regclass('notes') AS notes"),
    );
    expect(tables.rows[0]).toEqual({ contacts: 'contacts', notes: 'notes' });
    expect(await listPendingMigrations(databaseUrl)).toEqual([]);
  });

  test('a second run is a no-op', async () => {
    const history = 'SELECT id, checksum, finished_at FROM _prisma_migrations ORDER BY id';
    const before = await withClient(databaseUrl, (client) => client.query(history));

    await applyMigrations(databaseUrl);

    const after = await withClient(databaseUrl, (client) => client.query(history));
    expect(after.rows).toEqual(before.rows);
    expect(await listPendingMigrations(databaseUrl)).toEqual([]);
  });

  test('every table and column of the schema has a comment', async () => {
    const { rows } = await withClient(databaseUrl, (client) =>
      client.query<{ table_name: string; column_name: string | null; comment: string | null }>(`
        SELECT c.relname AS table_name, NULL AS column_name, obj_description(c.oid, 'pg_class') AS comment
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> '_prisma_migrations'
        UNION ALL
        SELECT c.relname, a.attname, col_description(c.oid, a.attnum)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_attribute a ON a.attrelid = c.oid
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> '_prisma_migrations'
           AND a.attnum > 0 AND NOT a.attisdropped`),
    );
    expect(rows.map((row) => `${row.table_name}.${row.column_name ?? ''}`)).toEqual(
      expect.arrayContaining(['contacts.', 'contacts.email', 'contacts.sync_status', 'notes.', 'notes.content', 'crm_health.state']),
    );
    expect(rows.filter((row) => !row.comment?.trim())).toEqual([]);
  });

  test('a plain SQL UPDATE advances contacts.updated_at', async () => {
    const past = new Date('2000-01-01T00:00:00Z');
    await withClient(databaseUrl, async (client) => {
      const inserted = await client.query<{ id: number; updated_at: Date }>(
        'INSERT INTO contacts (name, updated_at) VALUES ($1, $2) RETURNING id, updated_at',
        ['Trigger Test', past],
      );
      const { id } = inserted.rows[0]!;
      expect(inserted.rows[0]!.updated_at).toEqual(past);

      const updated = await client.query<{ updated_at: Date; now: Date }>(
        "UPDATE contacts SET phone = '+1 202 555 0100' WHERE id = $1 RETURNING updated_at, now() AS now",
        [id],
      );
      const { updated_at: updatedAt, now } = updated.rows[0]!;
      expect(updatedAt.getTime()).toBeGreaterThan(past.getTime());
      expect(Math.abs(updatedAt.getTime() - now.getTime())).toBeLessThanOrEqual(1);
    });
  });

  test('rejects with the CLI output, with the password redacted', async () => {
    // The missing database is named like the password, so the CLI's output does contain it.
    const secret = `contact_sync_secret_${randomBytes(5).toString('hex')}`;
    const url = new URL(adminUrl);
    url.password = secret;
    url.pathname = `/${secret}`;

    const error: unknown = await applyMigrations(url.toString()).then(
      () => undefined,
      (rejection: unknown) => rejection,
    );

    expect(error).toBeInstanceOf(Error);
    const { message } = error as Error;
    expect(message).toMatch(/^prisma migrate deploy failed \(exit code 1\):\n/);
    // Trust auth reports the missing database; password auth rejects the wrong password.
    expect(message).toMatch(/does not exist|credentials .* are not valid/);
    expect(message).toContain('***');
    expect(message).not.toContain(secret);
  });
});

describe('schema drift check (migrate diff --exit-code)', () => {
  let tempDir: string;

  beforeAll(async () => {
    tempDir = await mkdtemp(path.join(os.tmpdir(), 'contact-sync-drift-'));
  });

  afterAll(async () => {
    await rm(tempDir, { recursive: true, force: true });
  });

  test('finds no difference between the migrations and prisma/schema.prisma', async () => {
    const shadowsBefore = await shadowDatabases();

    const { exitCode, output } = await driftCheck(path.join(repoRoot, 'prisma', 'schema.prisma'));

    expect(output).toContain('No difference detected');
    expect(exitCode).toBe(0);
    expect(await shadowDatabases()).toEqual(shadowsBefore);
  });

  test('fails for a schema with a column the migrations lack', async () => {
    const schema = await readFile(path.join(repoRoot, 'prisma', 'schema.prisma'), 'utf8');
    const drifted = schema.replace(/^(\s*)phone(\s+)String\?.*$/m, '$&\n$1company$2String?');
    expect(drifted).not.toEqual(schema);
    const driftedPath = path.join(tempDir, 'schema.prisma');
    await writeFile(driftedPath, drifted);

    const { exitCode, output } = await driftCheck(driftedPath);

    expect(exitCode).toBe(2);
    expect(output).toContain('company');
  });
});
