import request from 'supertest';
import { FakePipedrive } from '../../testkit/fake-pipedrive';
import { createTestApp, type TestApp } from '../support/test-app';
import { waitFor } from '../support/wait-for';
import { fastMirrorEnv, waitUntilSettled } from './mirror-support';

/**
 * The mirror's queue is the contacts rows themselves (versions, due time, claim, priority) and a
 * pause: what it gives beyond job-per-change is coalescing, any writer queuing, expiring claims,
 * priorities and a pause of the whole mirror.
 */
let fake: FakePipedrive;
let t: TestApp;

beforeAll(async () => {
  fake = await FakePipedrive.start();
});
afterAll(() => fake.close());
beforeEach(async () => {
  fake.reset();
  // No worker until a test starts one: the queue can be looked at before anything runs.
  t = createTestApp({ env: fastMirrorEnv(fake, { CRM_SYNC_WAIT_MS: '0' }) });
  await t.reset();
});
afterEach(() => t.close());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A claim that no token reserve holds back. */
const ANY_BUDGET = { dayStart: new Date(0), reserve: 0 };
const patches = () => fake.requests.filter((r) => r.method === 'PATCH');

async function createContact(body: Record<string, unknown>): Promise<number> {
  return (await request(t.app).post('/contact').send(body).expect(201)).body.contact_id;
}

async function syncedContact(body: Record<string, unknown>): Promise<{ id: number; crmId: number }> {
  const id = await createContact(body);
  const worker = await t.startWorker();
  await waitUntilSettled(t);
  await worker.stop();
  const { crmId } = await t.prisma.contact.findUniqueOrThrow({ where: { id } });
  return { id, crmId: crmId! };
}

const patchContact = (id: number, fields: Record<string, unknown>) =>
  request(t.app).patch('/contact').send({ contact_id: id, fields }).expect(200);

describe('the queue in the contacts rows', () => {
  it('coalesces changes made while no worker runs into one update with the latest values', async () => {
    const { id, crmId } = await syncedContact({ name: 'Ada', email: 'ada@example.com', phone: '+44 20 7946 0101' });
    await patchContact(id, { name: 'Ada B' });
    await patchContact(id, { name: 'Ada King', phone: '+44 20 7946 0102' });
    await patchContact(id, { phone: '+44 20 7946 0103' });

    await t.startWorker();
    await waitUntilSettled(t);
    expect(patches()).toHaveLength(1);
    expect(patches()[0]).toMatchObject({
      path: `/api/v2/persons/${crmId}`,
      body: { name: 'Ada King', phones: [{ value: '+442079460103', primary: true, label: 'work' }] },
    });
    expect(Object.keys(patches()[0]!.body as object).sort()).toEqual(['name', 'phones']);
  });

  it('sends a change made while its contact is being mirrored in a second run', async () => {
    const { id, crmId } = await syncedContact({ name: 'Ada', email: 'ada@example.com' });
    await t.startWorker();
    fake.fault({ kind: 'latency', ms: 600, times: 1, match: { method: 'PATCH' } });
    await patchContact(id, { name: 'First' });
    await waitFor('the first update to reach Pipedrive', async () => patches().length === 1, 5_000);
    const second = await patchContact(id, { name: 'Second' });
    expect(second.body.contact.sync_status).toBe('pending');

    await waitUntilSettled(t);
    expect(patches().map((r) => (r.body as { name: string }).name)).toEqual(['First', 'Second']);
    expect(fake.persons.get(crmId)!.name).toBe('Second');
    expect(await t.prisma.contact.findUniqueOrThrow({ where: { id } })).toMatchObject({ syncStatus: 'synced' });
  });

  it('mirrors a change written with psql: every writer queues by the same rule', async () => {
    const { id, crmId } = await syncedContact({ name: 'Ada', email: 'ada@example.com' });
    await t.prisma.$executeRaw`UPDATE contacts SET phone = '+44 20 7946 0000' WHERE id = ${id}`;
    expect(await t.prisma.contact.findUniqueOrThrow({ where: { id } })).toMatchObject({ syncStatus: 'pending' });

    await t.startWorker();
    await waitUntilSettled(t);
    expect(patches()).toHaveLength(1);
    expect(fake.persons.get(crmId)!.phones.map((p) => p.value)).toEqual(['+44 20 7946 0000']);
  });

  it('sends nothing for a PATCH that changes nothing', async () => {
    const { id } = await syncedContact({ name: 'Ada', email: 'ada@example.com' });
    await t.startWorker();
    const res = await patchContact(id, { name: 'Ada', email: 'ada@example.com' });
    expect(res.body.contact.sync_status).toBe('synced');
    await sleep(300);
    expect(patches()).toEqual([]);
  });
});

describe('claims', () => {
  it('lets another worker take a contact once the claim of a worker that died has expired', async () => {
    const id = await createContact({ name: 'Ada Lovelace' });
    // A worker claims the contact for 3 s, then dies without a word.
    const claimedAt = Date.now();
    expect(await t.services.mirrorRepository.claim(10, 3_000, ANY_BUDGET)).toEqual([{ contactId: id, version: 1, attempt: 1 }]);

    await t.startWorker();
    await sleep(700);
    expect(fake.requests).toEqual([]);
    await waitUntilSettled(t, 10_000);
    expect(fake.requests[0]!.at - claimedAt).toBeGreaterThanOrEqual(2_900);
    expect(fake.persons.size).toBe(1);
    // The dead worker's claim counted as an attempt: this is a retry, which looks for a person the
    // dead worker may have created (by name, the contact having no email or phone).
    expect(fake.requests[0]).toMatchObject({ path: '/api/v2/persons/search', query: { term: 'Ada Lovelace', fields: 'name' } });
    expect(await t.prisma.contact.findUniqueOrThrow({ where: { id } })).toMatchObject({ syncStatus: 'synced' });
  });

  it('takes live changes before bulk work, then the oldest due first', async () => {
    const bulk = await createContact({ name: 'Bulk' });
    await t.services.mirrorRepository.requeue(bulk, 'bulk');
    const first = await createContact({ name: 'Live 1' });
    const second = await createContact({ name: 'Live 2' });
    const order: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      const [claim] = await t.services.mirrorRepository.claim(1, 60_000, ANY_BUDGET);
      order.push(claim!.contactId);
    }
    expect(order).toEqual([first, second, bulk]);
    expect(await t.services.mirrorRepository.claim(1, 60_000, ANY_BUDGET)).toEqual([]);
    const status = await request(t.app).get('/sync/status').expect(200);
    expect(status.body.queue).toEqual({ live: 2, bulk: 1 });
  });
});

describe('the pause', () => {
  it('starts no mirror work before its end, shows it in /sync/status, and can be ended early', async () => {
    const until = new Date(Date.now() + 60_000);
    await t.services.mirrorRepository.pause(until, 'maintenance');
    await t.startWorker();
    const id = await createContact({ name: 'Ada' });
    await sleep(500);
    expect(fake.requests).toEqual([]);
    const status = await request(t.app).get('/sync/status').expect(200);
    expect(status.body).toMatchObject({ paused_until: until.toISOString(), pause_reason: 'maintenance', queue: { live: 1, bulk: 0 } });

    // A shorter pause (another 429) leaves the longer one in force.
    await t.services.mirrorRepository.pause(new Date(Date.now() + 1_000), 'shorter');
    expect((await request(t.app).get('/sync/status').expect(200)).body.pause_reason).toBe('maintenance');

    expect(await t.services.mirrorRepository.resume()).toBe(true);
    await waitUntilSettled(t);
    expect(await t.prisma.contact.findUniqueOrThrow({ where: { id } })).toMatchObject({ syncStatus: 'synced' });
    expect((await request(t.app).get('/sync/status').expect(200)).body).toMatchObject({ paused_until: null, pause_reason: null });
  });

  it('follows a 429: every contact waits as long as Pipedrive says, and the attempt does not count', async () => {
    await t.close();
    t = createTestApp({ env: fastMirrorEnv(fake, { CRM_SYNC_WAIT_MS: '0', SYNC_CONCURRENCY: '1', SYNC_MAX_ATTEMPTS: '1' }) });
    await createContact({ name: 'Ada', email: 'ada@example.com' });
    await createContact({ name: 'Grace', email: 'grace@example.com' });
    fake.fault({ kind: 'status', status: 429, retryAfterSeconds: 1, times: 1 });
    await t.startWorker();

    await waitFor('the 429', async () => fake.requests.length >= 1, 5_000);
    const status = await request(t.app).get('/sync/status').expect(200);
    expect(status.body.pause_reason).toMatch(/rate limit/i);
    await waitUntilSettled(t, 10_000);

    const [rejected, ...after] = fake.requests;
    expect(after.length).toBeGreaterThan(0);
    for (const next of after) expect(next.at - rejected!.at).toBeGreaterThanOrEqual(1_000);
    // One attempt allowed, and a 429 spent none: both synced.
    expect(await t.prisma.contact.count({ where: { syncStatus: 'synced' } })).toBe(2);
  });
});

describe('a block (403 with an HTML page)', () => {
  it('pauses the whole mirror as a 429 does, without failing the contact', async () => {
    await t.startWorker();
    fake.fault({ kind: 'blocked', times: 1 });
    const id = await createContact({ name: 'Ada', email: 'ada@example.com' });
    await waitFor('the pause', async () => (await request(t.app).get('/sync/status').expect(200)).body.paused_until !== null, 5_000);

    const status = (await request(t.app).get('/sync/status').expect(200)).body;
    expect(status.pause_reason).toMatch(/403 blocked/);
    expect(new Date(status.paused_until).getTime() - Date.now()).toBeGreaterThan(50_000);
    expect(await t.prisma.contact.findUniqueOrThrow({ where: { id } })).toMatchObject({ syncStatus: 'pending' });
    expect(fake.requests).toHaveLength(1);

    // An operator who knows the block is over ends the pause.
    await t.services.mirrorRepository.resume();
    await waitUntilSettled(t);
    expect(await t.prisma.contact.findUniqueOrThrow({ where: { id } })).toMatchObject({ syncStatus: 'synced' });
  });
});
