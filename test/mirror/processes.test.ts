import request from 'supertest';
import { FakePipedrive } from '../../testkit/fake-pipedrive';
import { freePort, spawnServer, stopServer, waitForStatus, type ServerProcess } from '../support/server-process';
import { createTestApp, type TestApp } from '../support/test-app';
import { waitFor } from '../support/wait-for';
import { fastMirrorEnv, personCreations, personsByEmail } from './mirror-support';

/** Mirror jobs and API in separate processes, sharing the suite's database and a fake Pipedrive. */
let fake: FakePipedrive;
let api: TestApp;
const children: ServerProcess[] = [];

beforeAll(async () => {
  // Searches unlimited: a search refused by its bucket and retried would look like a contact run twice.
  fake = await FakePipedrive.start({ searchLimit: { limit: 10_000, windowMs: 2_000 } });
});
afterAll(() => fake.close());
beforeEach(async () => {
  fake.reset();
  // The API in this process queues jobs but runs none: workers are the child processes.
  api = createTestApp({ env: fastMirrorEnv(fake, { CRM_SYNC_WAIT_MS: '0', SYNC_WORKER: 'false' }) });
  await api.reset();
});
afterEach(async () => {
  await Promise.all(children.splice(0).map((child) => stopServer(child, 'SIGKILL')));
  await api.close();
});

const childEnv = (overrides: Record<string, string> = {}) => ({
  ...fastMirrorEnv(fake, { SYNC_STALE_LOCK_MS: '2000', SYNC_CONCURRENCY: '2', LOG_LEVEL: 'warn' }),
  DATABASE_URL: process.env.DATABASE_URL!,
  ...overrides,
});

async function queueContacts(count: number): Promise<void> {
  for (let i = 0; i < count; i += 1) {
    await request(api.app).post('/contact').send({ name: `Lead ${i}`, email: `lead${i}@example.com` }).expect(201);
  }
}

const syncedCount = () => api.prisma.contact.count({ where: { syncStatus: 'synced' } });

function expectEachMirroredOnce(count: number) {
  expect(fake.persons.size).toBe(count);
  for (let i = 0; i < count; i += 1) expect(personsByEmail(fake, `lead${i}@example.com`)).toHaveLength(1);
}

describe('the API process killed in the middle of a backlog', () => {
  it('loses nothing and duplicates nothing once restarted', async () => {
    const count = 24;
    await queueContacts(count);
    // Slow answers keep the backlog going long enough to kill the process inside it.
    fake.fault({ kind: 'latency', ms: 120 });
    const port = String(await freePort());
    const first = spawnServer(childEnv({ PORT: port }));
    children.push(first);
    await waitFor('a few contacts to be mirrored', async () => (await syncedCount()) >= 3, 30_000);
    first.child.kill('SIGKILL');
    await first.exited;
    const syncedAtKill = await syncedCount();
    expect(syncedAtKill).toBeLessThan(count);

    const second = spawnServer(childEnv({ PORT: port }));
    children.push(second);
    await waitForStatus(second, '/contact/health', 200, 30_000);
    await waitFor('the whole backlog to be mirrored', async () => (await syncedCount()) === count, 45_000, 200);

    expectEachMirroredOnce(count);
    const contacts = await api.prisma.contact.findMany();
    for (const contact of contacts) {
      expect(fake.persons.get(contact.crmId!)?.emails[0]?.value).toBe(contact.email);
    }
  }, 90_000);
});

describe('two worker processes on one database', () => {
  it('never run one job twice', async () => {
    const count = 30;
    fake.fault({ kind: 'latency', ms: 30 });
    const workers = [1, 2].map(() => spawnServer(childEnv({ LOG_LEVEL: 'info' }), 'src/worker.ts'));
    children.push(...workers);
    await waitFor('both workers to run', () => workers.every((w) => /mirror worker running/.test(w.output())), 30_000);

    await queueContacts(count);
    await waitFor('the whole backlog to be mirrored', async () => (await syncedCount()) === count, 45_000, 200);

    expectEachMirroredOnce(count);
    // One creation, and one crm_synced event, per contact: a contact run twice would have two.
    expect(personCreations(fake)).toHaveLength(count);
    const synced = await api.prisma.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM contact_events WHERE type = 'crm_synced'`;
    expect(synced).toEqual([{ n: count }]);
    for (const worker of workers) expect(await stopServer(worker, 'SIGTERM')).toBe(0);
  }, 90_000);
});

describe('four worker processes on one API token', () => {
  let limitedFake: FakePipedrive;
  let limitedApi: TestApp;
  beforeAll(async () => {
    // The lowest plan's burst limit; searches at their own limit (the index takes them anyway).
    limitedFake = await FakePipedrive.start({ rateLimit: { limit: 20, windowMs: 2_000 } });
  });
  afterAll(() => limitedFake.close());
  beforeEach(async () => {
    limitedApi = createTestApp({ env: fastMirrorEnv(limitedFake, { CRM_SYNC_WAIT_MS: '0', SYNC_WORKER: 'false' }) });
    await limitedApi.reset();
  });
  afterEach(() => limitedApi.close());

  it('stay within the burst limit together: at most one call answered 429 in any window, each contact mirrored once', async () => {
    const count = 60;
    const env = {
      ...fastMirrorEnv(limitedFake, { SYNC_CONCURRENCY: '4', LOG_LEVEL: 'warn' }),
      // Runs wait their turn for the limit; the claim must outlast that.
      SYNC_STALE_LOCK_MS: '60000',
      // The fake answers in this busy test process, which a loaded CI machine stalls for longer than
      // the default margin: a call let through can reach it in its next window.
      PIPEDRIVE_RATE_LIMIT_MARGIN_MS: '500',
      DATABASE_URL: process.env.DATABASE_URL!,
    };
    const workers = [1, 2, 3, 4].map(() => spawnServer(env, 'src/worker.ts'));
    children.push(...workers);
    for (let i = 0; i < count; i += 1) {
      await request(limitedApi.app).post('/contact').send({ name: `Lead ${i}`, email: `lead${i}@example.com` }).expect(201);
    }
    const synced = () => limitedApi.prisma.contact.count({ where: { syncStatus: 'synced' } });
    await waitFor('the whole backlog to be mirrored', async () => (await synced()) === count, 60_000, 200);

    expect(limitedFake.persons.size).toBe(count);
    for (let i = 0; i < count; i += 1) expect(personsByEmail(limitedFake, `lead${i}@example.com`)).toHaveLength(1);
    // More calls than one window holds: the limit was reached, and kept.
    expect(limitedFake.requests.length).toBeGreaterThan(2 * 20);
    const rejections = [...limitedFake.rejectionsPerWindow().values()];
    expect(rejections.filter((n) => n > 1)).toEqual([]);
    for (const worker of workers) expect(await stopServer(worker, 'SIGTERM')).toBe(0);
  }, 120_000);
});
