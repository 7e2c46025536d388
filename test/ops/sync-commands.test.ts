import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FakePipedrive } from '../../testkit/fake-pipedrive';
import { fastMirrorEnv, personCreations, waitUntilSettled } from '../mirror/mirror-support';
import { runCli, startCli } from '../support/run-cli';
import { createTestApp, type TestApp } from '../support/test-app';
import { waitFor } from '../support/wait-for';

/**
 * The two-way sync's operator commands, run as an operator would (a child process), on the suite's
 * real PostgreSQL and against the fake Pipedrive: webhooks install/list/remove, import, push and
 * import-csv, with their dry runs, resumption after an interruption, and the budget reserve.
 */
jest.setTimeout(90_000);

let fake: FakePipedrive;
let t: TestApp;
let folder: string;

const WEBHOOK = { PIPEDRIVE_WEBHOOK_USER: 'pipedrive', PIPEDRIVE_WEBHOOK_PASSWORD: 'webhook-secret-0123456789' };

beforeAll(async () => {
  fake = await FakePipedrive.start();
  folder = await mkdtemp(path.join(os.tmpdir(), 'sync-commands-'));
});
afterAll(async () => {
  await fake.close();
  await rm(folder, { recursive: true, force: true });
});
beforeEach(async () => {
  fake.reset();
  t = createTestApp({ env: fastMirrorEnv(fake) });
  await t.reset();
});
afterEach(() => t.close());

/** The CLI's environment: the suite's database and the fake, as an operator's .env would say. */
const cliEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
  DATABASE_URL: process.env.DATABASE_URL!,
  PIPEDRIVE_API_KEY: fake.token,
  PIPEDRIVE_BASE_URL: fake.url,
  LOG_LEVEL: 'warn',
  ...WEBHOOK,
  ...extra,
});

const ops = (args: string[], extra: Record<string, string> = {}) => runCli(args, cliEnv(extra), { timeoutMs: 80_000 });
const pipedriveCalls = () => fake.requests.length;

describe('pipedrive webhooks', () => {
  it('install subscribes the receiver with version 2.0 and the Basic credentials, replaces rather than duplicates; list and remove', async () => {
    const dry = await ops(['pipedrive', 'webhooks', 'install', '--url', 'http://127.0.0.1:8000', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/Would subscribe http:\/\/127\.0\.0\.1:8000\/webhooks\/pipedrive .* 10 tokens/);
    expect(fake.webhooks.size).toBe(0);

    const installed = await ops(['pipedrive', 'webhooks', 'install', '--url', 'http://127.0.0.1:8000']);
    expect(installed.code).toBe(0);
    const [hook] = [...fake.webhooks.values()];
    expect(hook).toMatchObject({
      subscription_url: 'http://127.0.0.1:8000/webhooks/pipedrive',
      event_action: '*',
      event_object: 'person',
      version: '2.0',
      http_auth_user: 'pipedrive',
      http_auth_password: 'webhook-secret-0123456789',
    });

    expect((await ops(['pipedrive', 'webhooks', 'install', '--url', 'http://127.0.0.1:8000'])).code).toBe(0);
    expect(fake.webhooks.size).toBe(1);

    const list = await ops(['pipedrive', 'webhooks', 'list']);
    expect(list.stdout).toMatch(/^\d+ {2}\*\.person {2}v2\.0 {2}active {2}http:\/\/127\.0\.0\.1:8000\/webhooks\/pipedrive {2}user pipedrive\n$/);

    const removed = await ops(['pipedrive', 'webhooks', 'remove']);
    expect(removed.stdout).toContain('Removed 1 subscription(s)');
    expect(fake.webhooks.size).toBe(0);
  });

  it('install refuses without the webhook credentials, and with a URL that is not one', async () => {
    const refused = await ops(['pipedrive', 'webhooks', 'install', '--url', 'http://127.0.0.1:8000'], { PIPEDRIVE_WEBHOOK_USER: '', PIPEDRIVE_WEBHOOK_PASSWORD: '' });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('PIPEDRIVE_WEBHOOK_USER and PIPEDRIVE_WEBHOOK_PASSWORD');
    expect((await ops(['pipedrive', 'webhooks', 'install', '--url', 'not a url'])).code).toBe(2);
    expect(fake.webhooks.size).toBe(0);
  });
});

describe('pipedrive import', () => {
  /** 1,200 persons: three pages of 500. */
  function seedPersons(): void {
    for (let i = 1; i <= 1_200; i += 1) fake.seedPerson({ name: `Person ${i}`, email: `person${i}@example.com` });
  }

  it('--dry-run says what it would do from the index, and calls nothing', async () => {
    seedPersons();
    await t.prisma.$executeRawUnsafe(`INSERT INTO contacts (name, email, sync_status) VALUES ('Local', 'person7@example.com', 'disabled')`);
    const indexed = createTestApp({ env: fastMirrorEnv(fake) });
    await indexed.services.pipedrive!.index.ready(true);
    await indexed.close();
    const before = pipedriveCalls();

    const dry = await ops(['pipedrive', 'import', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('1199 would become contacts, 1 would be linked to a contact with their email or phone, 0 are mirrored already');
    expect(dry.stdout).toContain('about 30 tokens (3 page(s) of 500)');
    expect(pipedriveCalls()).toBe(before);
    expect(await t.prisma.contact.count()).toBe(1);
  });

  it('makes every person a contact or links it, and after a failure goes on from the page it stopped at', async () => {
    seedPersons();
    await t.prisma.$executeRawUnsafe(`INSERT INTO contacts (name, email, sync_status) VALUES ('Local', 'person7@example.com', 'disabled')`);
    // The first page is read; then Pipedrive answers 503 for the rest of this run.
    const listing = { method: 'GET', path: /^\/api\/v2\/persons$/ };
    fake.fault({ kind: 'latency', ms: 0, times: 1, match: listing });
    fake.fault({ kind: 'status', status: 503, match: listing });

    const failed = await ops(['pipedrive', 'import']);
    expect(failed.code).toBe(1);
    expect(await t.prisma.contact.count()).toBe(500);
    const lists = fake.requests.filter((r) => r.path === '/api/v2/persons').length;
    expect(lists).toBeGreaterThanOrEqual(2);

    fake.clearFaults();
    const resumed = await ops(['pipedrive', 'import']);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toContain('Going on from an interrupted import');
    // The first page was not read again.
    const after = fake.requests.filter((r) => r.path === '/api/v2/persons').slice(lists);
    expect(after.map((r) => r.query.cursor !== undefined)).toEqual([true, true]);
    expect(await t.prisma.contact.count()).toBe(1_200);
    expect(await t.prisma.contact.count({ where: { crmId: null } })).toBe(0);
    const local = await t.prisma.contact.findFirstOrThrow({ where: { email: 'person7@example.com' } });
    expect(local.name).toBe('Local');
    expect(resumed.stderr).toContain('Imported: created 1199, linked 1.');
    const events = await t.prisma.contactEvent.groupBy({ by: ['source'], _count: true });
    expect(events).toEqual([{ source: 'import', _count: 1_200 }]);
    expect(personCreations(fake)).toHaveLength(0);

    const again = await ops(['pipedrive', 'import']);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/unchanged 1200/);
    expect(await t.prisma.contact.count()).toBe(1_200);
  });

  it('stops at the daily token reserve and says when to go on', async () => {
    seedPersons();
    await t.prisma.$executeRawUnsafe(`INSERT INTO pipedrive_budget (id, day_start, tokens_spent, token_limit, tokens_left) VALUES (1, now(), 0, 1000, 505)`);
    const before = pipedriveCalls();

    const stopped = await ops(['pipedrive', 'import'], { PIPEDRIVE_DAILY_TOKEN_RESERVE: '500' });
    expect(stopped.code).toBe(3);
    expect(stopped.stderr).toContain('Stopped at the daily token reserve (500)');
    expect(pipedriveCalls()).toBe(before);
    expect(await t.prisma.contact.count()).toBe(0);
  });
});

describe('pipedrive push', () => {
  it('--dry-run counts the never-mirrored contacts and their tokens; push queues them as bulk work; --wait follows them into Pipedrive', async () => {
    for (let i = 1; i <= 30; i += 1) await t.prisma.$executeRawUnsafe(`INSERT INTO contacts (name, email, sync_status) VALUES ('C${i}', 'c${i}@example.com', 'disabled')`);
    await t.prisma.$executeRawUnsafe(`INSERT INTO contacts (name, sync_status, crm_deleted) VALUES ('Deleted in Pipedrive', 'disabled', true)`);

    const dry = await ops(['pipedrive', 'push', '--dry-run']);
    expect(dry.stdout).toContain('30 contact(s) were never mirrored; pushing them costs about 153 tokens');
    expect(await t.prisma.contact.count({ where: { syncStatus: 'pending' } })).toBe(0);

    const worker = await t.startWorker();
    const pushed = await ops(['pipedrive', 'push', '--wait']);
    expect(pushed.code).toBe(0);
    expect(pushed.stderr).toContain('Queued 30 contact(s) as bulk work');
    expect(pushed.stderr).toContain('Every pushed contact has left the queue');
    await waitUntilSettled(t);
    await worker.stop();
    expect(personCreations(fake)).toHaveLength(30);
    expect(await t.prisma.contact.count({ where: { syncStatus: 'synced' } })).toBe(30);
    expect(await t.prisma.contact.findFirstOrThrow({ where: { crmDeleted: true } })).toMatchObject({ syncStatus: 'disabled', crmId: null });
  });

  it('stopped by Ctrl-C, leaves the rest unqueued; the same command queues the rest', async () => {
    await t.prisma.$executeRawUnsafe(`INSERT INTO contacts (name, sync_status) SELECT 'C' || i, 'disabled' FROM generate_series(1, 50000) AS i`);
    const first = startCli(['pipedrive', 'push'], cliEnv(), { timeoutMs: 80_000 });
    const pending = () => t.prisma.contact.count({ where: { syncStatus: 'pending' } });
    await waitFor('a first batch to be queued', async () => (await pending()) > 0, 60_000, 5);
    first.child.kill('SIGINT');
    const interrupted = await first.done;
    expect(interrupted.code).toBe(3);
    const queued = await pending();
    expect(queued).toBeLessThan(50_000);
    expect(queued % 500).toBe(0);

    const rest = await ops(['pipedrive', 'push']);
    expect(rest.code).toBe(0);
    expect(rest.stderr).toContain(`Queued ${50_000 - queued} contact(s)`);
    expect(await pending()).toBe(50_000);
  });

  it('queues bulk work that waits behind the reserve while live changes go on', async () => {
    await t.prisma.$executeRawUnsafe(`INSERT INTO contacts (name, sync_status) VALUES ('Old', 'disabled')`);
    expect((await ops(['pipedrive', 'push'])).code).toBe(0);
    const row = await t.prisma.contact.findFirstOrThrow({ where: { name: 'Old' } });
    expect(row).toMatchObject({ syncStatus: 'pending', mirrorPriority: 1 });
  });
});

describe('import-csv', () => {
  const CSV = [
    'Name,E-mail,Phone,Company',
    'Ada Lovelace,ada@example.com,+44 20 7946 0000,Analytical',
    'Grace Hopper,GRACE@example.com,,Navy',
    ',nobody@example.com,,',
    'Bad Email,not-an-email,,',
    'Bad Phone,bad@example.com,+44 1,',
    'Ada Again,ada@example.com,,',
    'Existing,existing@example.com,,',
  ].join('\n');

  it('--dry-run reports what would be created and rejected, and writes nothing', async () => {
    const file = path.join(folder, 'dry.csv');
    await writeFile(file, CSV);
    await t.prisma.$executeRawUnsafe(`INSERT INTO contacts (name, email, sync_status) VALUES ('Existing', 'existing@example.com', 'disabled')`);

    const dry = await ops(['import-csv', file, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stderr).toContain('Dry run: duplicate 2, rejected 3, would create 2;');
    expect(dry.stderr).toContain('about 11 tokens');
    expect(dry.stdout).toContain('line 4: name:');
    expect(await t.prisma.contact.count()).toBe(1);
  });

  it('creates contacts through POST /contact’s validation and dedupe, as bulk work from an import, and reports the rejected rows', async () => {
    const file = path.join(folder, 'contacts.csv');
    const report = path.join(folder, 'rejected.csv');
    await writeFile(file, CSV);
    await t.prisma.$executeRawUnsafe(`INSERT INTO contacts (name, email, sync_status) VALUES ('Existing', 'existing@example.com', 'disabled')`);

    const run = await ops(['import-csv', file, '--report', report]);
    expect(run.code).toBe(0);
    expect(run.stdout.split('\n').filter((line) => line.startsWith('line '))).toEqual([
      expect.stringMatching(/^line 4: name: /),
      expect.stringMatching(/^line 5: email: /),
      expect.stringMatching(/^line 6: phone: .*valid/i),
      'line 7: A contact with this email already exists (contact 2)',
      expect.stringMatching(/^line 8: A contact with this email already exists \(contact 1\)$/),
    ]);
    const rows = await t.prisma.contact.findMany({ where: { id: { gt: 1 } }, orderBy: { id: 'asc' } });
    expect(rows.map((row) => [row.name, row.email, row.phoneE164, row.syncStatus, row.mirrorPriority])).toEqual([
      ['Ada Lovelace', 'ada@example.com', '+442079460000', 'pending', 1],
      ['Grace Hopper', 'grace@example.com', null, 'pending', 1],
    ]);
    const created = await t.prisma.contactEvent.findMany({ where: { type: 'created', contactId: { gt: 1 } } });
    expect(created.map((event) => event.source)).toEqual(['import', 'import']);
    const written = await readFile(report, 'utf8');
    expect(written.split('\n')[0]).toBe('line,reason,name,email,phone');
    expect(written.split('\n').filter(Boolean)).toHaveLength(6);
  });

  it('goes on at the row it stopped after Ctrl-C, and imports every row once', async () => {
    const file = path.join(folder, 'big.csv');
    const lines = ['name,email'];
    for (let i = 1; i <= 3_000; i += 1) lines.push(`Row ${i},row${i}@example.com`);
    await writeFile(file, lines.join('\n'));

    const first = startCli(['import-csv', file], cliEnv(), { timeoutMs: 80_000 });
    await waitFor('some rows to be imported', async () => (await t.prisma.contact.count()) > 300, 60_000);
    first.child.kill('SIGINT');
    const interrupted = await first.done;
    expect(interrupted.code).toBe(3);
    expect(interrupted.stderr).toContain('run the same command again to resume');
    const imported = await t.prisma.contact.count();
    expect(imported).toBeLessThan(3_000);

    const resumed = await ops(['import-csv', file]);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/Going on from row \d+ of an interrupted import/);
    expect(resumed.stderr).toMatch(/created 3000/);
    expect(resumed.stderr).not.toMatch(/duplicate/);
    expect(await t.prisma.contact.count()).toBe(3_000);
  });
});
