import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { migrationsDirectory } from '../../src/db/migrate';
import { withClient } from '../../src/db/pg-admin';
import { createScratchDatabase, dropDatabase } from '../../testkit/postgres-server';

/**
 * Migration contact_mirror_outbox carries rows written before it into the outbox: what Pipedrive
 * has counts as sent, and pending work (graphile-worker's jobs until then) is due at once.
 */
const adminUrl = process.env.TEST_ADMIN_DATABASE_URL!;
let databaseUrl: string;

beforeAll(async () => {
  databaseUrl = await createScratchDatabase(adminUrl, 'contact_sync_outbox_migration');
});
afterAll(() => dropDatabase(adminUrl, databaseUrl));

async function migrationSql(): Promise<{ before: string[]; outbox: string }> {
  const names = (await readdir(migrationsDirectory, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const index = names.findIndex((name) => name.endsWith('_contact_mirror_outbox'));
  const read = (name: string) => readFile(path.join(migrationsDirectory, name, 'migration.sql'), 'utf8');
  return { before: await Promise.all(names.slice(0, index).map(read)), outbox: await read(names[index]!) };
}

test('synced rows count as sent, pending rows and pending notes are due now, the old job queue goes', async () => {
  const { before, outbox } = await migrationSql();
  const rows = await withClient(databaseUrl, async (client) => {
    for (const sql of before) await client.query(sql);
    await client.query(`CREATE SCHEMA graphile_worker; CREATE TABLE graphile_worker._private_jobs (id bigint)`);
    await client.query(`
      INSERT INTO contacts (name, email, phone, crm_id, sync_status) VALUES
        ('Synced', 's@example.com', '+44 20 7946 0101', 10, 'synced'),
        ('Pending', NULL, NULL, NULL, 'pending'),
        ('Failed', NULL, NULL, NULL, 'failed'),
        ('Note waits', NULL, NULL, 11, 'synced'),
        ('Local', NULL, NULL, NULL, 'disabled')`);
    await client.query(`INSERT INTO notes (contact_id, content, sync_status) VALUES (4, 'to send', 'pending')`);
    await client.query(outbox);
    const { rows } = await client.query(`
      SELECT name, change_version, mirrored_version, crm_pushed, mirror_due_at IS NOT NULL AS due,
             mirror_queued_at IS NOT NULL AS queued, sync_status::text
        FROM contacts ORDER BY id`);
    const { rows: schemas } = await client.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'graphile_worker'`);
    expect(schemas).toEqual([]);
    return rows;
  });
  const sent = { change_version: 1, mirrored_version: 1, due: false, queued: false };
  const waiting = { change_version: 1, mirrored_version: 0, crm_pushed: null, due: true, queued: true };
  expect(rows).toEqual([
    { name: 'Synced', ...sent, crm_pushed: { name: 'Synced', email: 's@example.com', phone: '+44 20 7946 0101' }, sync_status: 'synced' },
    { name: 'Pending', ...waiting, sync_status: 'pending' },
    { name: 'Failed', change_version: 1, mirrored_version: 0, crm_pushed: null, due: false, queued: false, sync_status: 'failed' },
    { name: 'Note waits', ...sent, crm_pushed: { name: 'Note waits', email: null, phone: null }, due: true, queued: true, sync_status: 'synced' },
    { name: 'Local', change_version: 1, mirrored_version: 0, crm_pushed: null, due: false, queued: false, sync_status: 'disabled' },
  ]);
});
