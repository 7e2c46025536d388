import request from 'supertest';
import { FakePipedrive } from '../../testkit/fake-pipedrive';
import type { TestApp } from '../support/test-app';
import { waitFor } from '../support/wait-for';
import { personCreations, startMirroredApp, waitUntilSettled } from './mirror-support';

/** New contacts are matched in a local index of Pipedrive persons, not by search calls. */
let fake: FakePipedrive;
let t: TestApp | undefined;
beforeAll(async () => {
  fake = await FakePipedrive.start();
});
afterAll(() => fake.close());
beforeEach(() => fake.reset());
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const searches = () => fake.requests.filter((r) => r.path === '/api/v2/persons/search');
const lists = () => fake.requests.filter((r) => r.method === 'GET' && r.path === '/api/v2/persons');

async function create(app: TestApp, body: Record<string, unknown>) {
  return (await request(app.app).post('/contact').send(body).expect(201)).body;
}

it('is filled once, then matches by email, else by phone, with no search call', async () => {
  const byEmail = fake.seedPerson({ name: 'Ada L.', email: 'Ada@Example.com' });
  const byPhone = fake.seedPerson({ name: 'Grace H.', phone: '+44 20 7946 0000' });
  t = await startMirroredApp(fake);

  expect((await create(t, { name: 'Ada', email: 'ada@example.com', phone: '+1 202 555 0100' })).crm_id).toBe(byEmail.id);
  // A match is read once before it is linked (that read also gives the lists its phone joins).
  expect(fake.requests.filter((r) => r.method === 'GET' && r.path === `/api/v2/persons/${byEmail.id}`)).toHaveLength(1);
  expect(fake.persons.get(byEmail.id)!.phones.map((p) => p.value)).toEqual(['+12025550100']);
  expect((await create(t, { name: 'Grace', phone: '+442079460000' })).crm_id).toBe(byPhone.id);
  const hedy = await create(t, { name: 'Hedy', email: 'hedy@example.com' });
  expect(hedy.sync_status).toBe('synced');

  expect(searches()).toEqual([]);
  expect(lists()).toHaveLength(1);
  expect(personCreations(fake)).toHaveLength(1);
});

it('matches a phone by its E.164 form: a national number the sales team typed, and the number sent in E.164', async () => {
  const typed = fake.seedPerson({ name: 'Grace H.', phone: '020 7946 0000' });
  t = await startMirroredApp(fake, { DEFAULT_PHONE_REGION: 'GB' });

  expect((await create(t, { name: 'Grace', phone: '+44 (0)20 7946-0000' })).crm_id).toBe(typed.id);
  // Their way of writing it stays: the same number is not added twice.
  expect(fake.persons.get(typed.id)!.phones.map((p) => p.value)).toEqual(['020 7946 0000']);
  const hedy = await create(t, { name: 'Hedy', phone: '020 7946 0001' });
  expect(fake.persons.get(hedy.crm_id)!.phones.map((p) => p.value)).toEqual(['+442079460001']);
  expect(searches()).toEqual([]);
  expect(personCreations(fake)).toHaveLength(1);
});

it('finds the person a lost answer created through an updated_since refresh, not a search', async () => {
  t = await startMirroredApp(fake);
  await create(t, { name: 'First', email: 'first@example.com' }); // fills the index
  fake.fault({ kind: 'lose-response', times: 1, match: { method: 'POST', path: /^\/api\/v2\/persons$/ } });
  const ada = await create(t, { name: 'Ada', email: 'ada@example.com' });
  await waitUntilSettled(t);

  const stored = await t.prisma.contact.findUniqueOrThrow({ where: { id: ada.contact_id } });
  expect(personCreations(fake)).toHaveLength(2);
  expect(fake.persons.size).toBe(2);
  expect(stored.crmId).toBe([...fake.persons.values()].find((p) => p.name === 'Ada')!.id);
  expect(searches()).toEqual([]);
  expect(lists().at(-1)!.query).toEqual({ limit: '500', updated_since: expect.any(String) });
});

it('is refreshed when older than PIPEDRIVE_INDEX_MAX_AGE_MS: a person added in Pipedrive since is matched', async () => {
  t = await startMirroredApp(fake, { PIPEDRIVE_INDEX_MAX_AGE_MS: '0' });
  await create(t, { name: 'First', email: 'first@example.com' });
  const added = fake.seedPerson({ name: 'Added in Pipedrive', email: 'new@example.com' });
  expect((await create(t, { name: 'New', email: 'new@example.com' })).crm_id).toBe(added.id);
  expect(searches()).toEqual([]);
});

it('is filled when a worker starts and refreshed every PIPEDRIVE_INDEX_REFRESH_INTERVAL_MS with no contact to match, not while paused', async () => {
  const before = fake.seedPerson({ name: 'Before', email: 'before@example.com' });
  t = await startMirroredApp(fake, { PIPEDRIVE_INDEX_REFRESH_INTERVAL_MS: '300', PIPEDRIVE_INDEX_MAX_AGE_MS: '0' });
  const app = t;
  const indexed = async () => (await app.prisma.$queryRaw<{ id: number }[]>`SELECT id FROM pipedrive_persons`).map((row) => row.id);
  await waitFor('the backfill at start', async () => (await indexed()).includes(before.id), 5_000);
  expect(lists()[0]!.query).toEqual({ limit: '500' });

  const added = fake.seedPerson({ name: 'Added in Pipedrive', email: 'added@example.com' });
  await waitFor('a refresh', async () => (await indexed()).includes(added.id), 5_000);
  expect(lists().at(-1)!.query).toEqual({ limit: '500', updated_since: expect.any(String) });

  await app.services.mirrorRepository.pause(new Date(Date.now() + 60_000), 'operator');
  // A refresh that began before the pause is let finish first.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const whilePaused = lists().length;
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  expect(lists()).toHaveLength(whilePaused);
});

it('does not link a person deleted since it was indexed: the match is read first', async () => {
  const deleted = fake.seedPerson({ name: 'Ada', email: 'ada@example.com' });
  t = await startMirroredApp(fake);
  await create(t, { name: 'First', email: 'first@example.com' }); // indexes Ada's person
  fake.deletePerson(deleted.id);

  const ada = await create(t, { name: 'Ada', email: 'ada@example.com' });
  expect(ada.crm_id).not.toBe(deleted.id);
  expect(personCreations(fake)).toHaveLength(2);
  const [row] = await t.prisma.$queryRaw<{ gone: boolean }[]>`SELECT gone FROM pipedrive_persons WHERE id = ${deleted.id}`;
  expect(row).toEqual({ gone: true });
});

it('falls back to a search while another worker is still filling it', async () => {
  const seeded = fake.seedPerson({ name: 'Ada L.', email: 'ada@example.com' });
  t = await startMirroredApp(fake);
  await t.prisma.$executeRaw`INSERT INTO pipedrive_index_state (id, busy_until) VALUES (1, now() + interval '1 minute')`;
  const ada = await create(t, { name: 'Ada', email: 'ada@example.com' });
  expect(ada.crm_id).toBe(seeded.id);
  expect(searches()).toHaveLength(1);
  expect(lists()).toEqual([]);
});
