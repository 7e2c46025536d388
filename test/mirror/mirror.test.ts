import request from 'supertest';
import { FakePipedrive } from '../../testkit/fake-pipedrive';
import { createTestApp, type TestApp } from '../support/test-app';
import { waitFor } from '../support/wait-for';
import { personCreations, personsByEmail, startMirroredApp, waitUntilSettled } from './mirror-support';

let fake: FakePipedrive;
let t: TestApp;

beforeAll(async () => {
  fake = await FakePipedrive.start();
});
afterAll(() => fake.close());
beforeEach(async () => {
  fake.reset();
  t = await startMirroredApp(fake);
});
afterEach(() => t.close());

async function createContact(body: Record<string, unknown>) {
  return (await request(t.app).post('/contact').send(body).expect(201)).body;
}

describe('mirroring to Pipedrive', () => {
  it('creates the person and answers with its crm_id', async () => {
    const body = await createContact({ name: 'Ada Lovelace', email: 'Ada@Example.com', phone: '+44 20 7946 0000' });

    expect(body).toMatchObject({ crm_id: expect.any(Number), sync_status: 'synced' });
    expect(body.contact).toMatchObject({ crm_id: body.crm_id, sync_status: 'synced', crm_synced_at: expect.any(String), crm_last_error: null });
    const [creation, ...others] = personCreations(fake);
    expect(others).toEqual([]);
    expect(creation!.headers['x-api-token']).toBe(fake.token);
    expect(creation!.body).toEqual({
      name: 'Ada Lovelace',
      emails: [{ value: 'ada@example.com', primary: true, label: 'work' }],
      // The number in E.164, as Pipedrive matches it.
      phones: [{ value: '+442079460000', primary: true, label: 'work' }],
    });
    expect(fake.persons.get(body.crm_id)).toMatchObject({ name: 'Ada Lovelace' });
    const stored = await t.prisma.contact.findUniqueOrThrow({ where: { id: body.contact_id } });
    expect(stored).toMatchObject({ crmId: body.crm_id, syncStatus: 'synced' });
    const events = (await request(t.app).get(`/contact/${body.contact_id}/events`).expect(200)).body.items;
    expect(events.map((e: { type: string; payload: object }) => [e.type, e.payload])).toEqual([
      ['created', { name: 'Ada Lovelace', email: 'ada@example.com', phone: '+44 20 7946 0000' }],
      ['crm_synced', { crm_id: body.crm_id, action: 'created' }],
    ]);
  });

  it('matches a new contact in the index of persons, not by a search, with the token in a header and never in the URL', async () => {
    await createContact({ name: 'Ada', email: 'ada@example.com' });
    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /api/v2/persons', 'POST /api/v2/persons']);
    expect(fake.requests[0]!.query).toEqual({ limit: '500' });
    expect(fake.requests.every((r) => r.headers['x-api-token'] === fake.token)).toBe(true);
    expect(JSON.stringify(fake.requests.map((r) => [r.path, r.query]))).not.toContain(fake.token);
  });

  it('links a person that already exists with the email instead of creating another', async () => {
    const existing = fake.seedPerson({ name: 'Ada L.', email: 'ada@example.com' });
    const body = await createContact({ name: 'Ada Lovelace', email: 'ada@example.com' });
    expect(body.crm_id).toBe(existing.id);
    expect(personCreations(fake)).toEqual([]);
    expect(fake.persons.size).toBe(1);
    // The local row is the truth: the person's name follows it.
    expect(fake.persons.get(existing.id)!.name).toBe('Ada Lovelace');
  });

  it('does not link a person that already mirrors another contact', async () => {
    const first = await createContact({ name: 'Front desk A', phone: '+1 202 555 0100' });
    const second = await createContact({ name: 'Front desk B', phone: '+1 202 555 0100' });
    expect(second.crm_id).not.toBe(first.crm_id);
    expect(personCreations(fake)).toHaveLength(2);
  });

  it('sends only the changed fields on PATCH', async () => {
    const { contact_id: id, crm_id: crmId } = await createContact({ name: 'Ada', email: 'ada@example.com', phone: '+44 20 7946 0101' });
    const res = await request(t.app).patch('/contact').send({ contact_id: id, fields: { phone: '+44 20 7946 0102', name: 'Ada King' } }).expect(200);
    expect(res.body.contact.sync_status).toBe('pending');

    await waitUntilSettled(t);
    const patches = fake.requests.filter((r) => r.method === 'PATCH');
    expect(patches).toHaveLength(1);
    expect(patches[0]).toMatchObject({
      path: `/api/v2/persons/${crmId}`,
      body: { name: 'Ada King', phones: [{ value: '+442079460102', primary: true, label: 'work' }] },
    });
    expect(Object.keys(patches[0]!.body as object).sort()).toEqual(['name', 'phones']);
    expect(fake.persons.get(crmId)).toMatchObject({ name: 'Ada King', emails: [expect.objectContaining({ value: 'ada@example.com' })] });
  });

  it('clears a field in Pipedrive when it is cleared locally', async () => {
    const { contact_id: id, crm_id: crmId } = await createContact({ name: 'Ada', phone: '+44 20 7946 0101' });
    await request(t.app).patch('/contact').send({ contact_id: id, fields: { phone: null } }).expect(200);
    await waitUntilSettled(t);
    expect(fake.persons.get(crmId)!.phones).toEqual([]);
  });

  it('adds notes to the person and answers with the Pipedrive note id', async () => {
    const { contact_id: id, crm_id: crmId } = await createContact({ name: 'Ada' });
    const res = await request(t.app).post('/contact/note').send({ contact_id: id, content: 'Wants a demo' }).expect(201);
    expect(res.body).toMatchObject({ crm_note_id: expect.any(Number), sync_status: 'synced' });
    const noteRequest = fake.requests.find((r) => r.path === '/v1/notes');
    expect(noteRequest).toMatchObject({ method: 'POST', body: { content: 'Wants a demo', person_id: crmId } });
    expect(fake.notes.get(res.body.crm_note_id)).toMatchObject({ content: 'Wants a demo', person_id: crmId });
  });

  it('queues nothing for a rejected write: the change and its queueing are one row', async () => {
    await createContact({ name: 'Ada', email: 'ada@example.com' });
    await request(t.app).post('/contact').send({ name: 'Ada again', email: 'ada@example.com' }).expect(409);
    await request(t.app).post('/contact/note').send({ contact_id: 999, content: 'x' }).expect(404);
    await waitUntilSettled(t);
    const queued = await t.prisma.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM contacts WHERE mirror_due_at IS NOT NULL`;
    expect(queued).toEqual([{ n: 0 }]);
    expect(await t.prisma.contact.count()).toBe(1);
    expect(personCreations(fake)).toHaveLength(1);
  });
});

describe('when Pipedrive misbehaves', () => {
  it('answers 201 pending once the wait is over, and finishes in the background', async () => {
    await t.close();
    t = await startMirroredApp(fake, { CRM_SYNC_WAIT_MS: '300', PIPEDRIVE_TIMEOUT_MS: '3000' });
    fake.fault({ kind: 'latency', ms: 800 });
    const started = Date.now();
    const body = await createContact({ name: 'Slow', email: 'slow@example.com' });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(body).toMatchObject({ crm_id: null, sync_status: 'pending' });

    await waitUntilSettled(t);
    const stored = await t.prisma.contact.findUniqueOrThrow({ where: { id: body.contact_id } });
    expect(stored.syncStatus).toBe('synced');
    expect(personsByEmail(fake, 'slow@example.com')).toHaveLength(1);
  });

  it('does not wait at all with CRM_SYNC_WAIT_MS=0', async () => {
    await t.close();
    t = await startMirroredApp(fake, { CRM_SYNC_WAIT_MS: '0' });
    fake.fault({ kind: 'latency', ms: 500 });
    const started = Date.now();
    const body = await createContact({ name: 'Quick' });
    expect(Date.now() - started).toBeLessThan(400);
    expect(body.sync_status).toBe('pending');
    await waitUntilSettled(t);
  });

  it('delivers every write exactly once, in order, after an outage', async () => {
    await t.close();
    t = await startMirroredApp(fake, { CRM_SYNC_WAIT_MS: '0', SYNC_MAX_ATTEMPTS: '100' });
    fake.fault({ kind: 'status', status: 503 });
    const ada = await createContact({ name: 'Ada', email: 'ada@example.com' });
    const grace = await createContact({ name: 'Grace', email: 'grace@example.com' });
    expect([ada.sync_status, grace.sync_status]).toEqual(['pending', 'pending']);
    await request(t.app).patch('/contact').send({ contact_id: ada.contact_id, fields: { phone: '+44 20 7946 0101' } }).expect(200);
    await request(t.app).post('/contact/note').send({ contact_id: ada.contact_id, content: 'first' }).expect(201);
    await request(t.app).post('/contact/note').send({ contact_id: ada.contact_id, content: 'second' }).expect(201);

    await waitFor('a failed attempt', async () => (await t.prisma.contact.count({ where: { crmLastError: { not: null } } })) === 2);
    const failing = await t.prisma.contact.findUniqueOrThrow({ where: { id: ada.contact_id } });
    expect(failing).toMatchObject({ syncStatus: 'pending', crmId: null, crmLastError: expect.stringMatching(/503/) });

    fake.clearFaults();
    await waitUntilSettled(t);

    expect(personsByEmail(fake, 'ada@example.com')).toHaveLength(1);
    expect(personsByEmail(fake, 'grace@example.com')).toHaveLength(1);
    const adaPerson = personsByEmail(fake, 'ada@example.com')[0]!;
    expect(adaPerson.phones.map((p) => p.value)).toEqual(['+442079460101']);
    expect([...fake.notes.values()].map((n) => [n.content, n.person_id])).toEqual([
      ['first', adaPerson.id],
      ['second', adaPerson.id],
    ]);
    // During the outage every request failed at the first search, so nothing but searches went out.
    const writes = fake.requests.filter((r) => r.method !== 'GET');
    const firstNoteAt = writes.findIndex((r) => r.path === '/v1/notes');
    const creationAt = writes.findIndex((r) => r.path === '/api/v2/persons' && (r.body as { name: string }).name === 'Ada');
    expect(creationAt).toBeGreaterThanOrEqual(0);
    expect(creationAt).toBeLessThan(firstNoteAt);
    const contacts = await t.prisma.contact.findMany({ orderBy: { id: 'asc' } });
    expect(contacts.map((c) => [c.syncStatus, c.crmLastError])).toEqual([
      ['synced', null],
      ['synced', null],
    ]);
  });

  it('does not create a second person when the creation reached Pipedrive but its answer was lost', async () => {
    fake.fault({ kind: 'lose-response', times: 1, match: { method: 'POST', path: /^\/api\/v2\/persons$/ } });
    const body = await createContact({ name: 'Ada', email: 'ada@example.com' });
    await waitUntilSettled(t);
    expect(personCreations(fake)).toHaveLength(1);
    expect(fake.persons.size).toBe(1);
    const stored = await t.prisma.contact.findUniqueOrThrow({ where: { id: body.contact_id } });
    expect(stored.crmId).toBe([...fake.persons.keys()][0]);
  });

  it('finds a person created by a lost answer by phone, or by name on a retry, when there is no email', async () => {
    fake.fault({ kind: 'lose-response', times: 2, match: { method: 'POST', path: /^\/api\/v2\/persons$/ } });
    await createContact({ name: 'Phone only', phone: '+1 202 555 0199' });
    await createContact({ name: 'Name Only' });
    await waitUntilSettled(t);
    expect(fake.persons.size).toBe(2);
    expect(await t.prisma.contact.count({ where: { syncStatus: 'synced' } })).toBe(2);
  });

  it('does not add a note twice when its answer was lost, yet keeps a repeated note', async () => {
    const { contact_id: id } = await createContact({ name: 'Ada', email: 'ada@example.com' });
    await request(t.app).post('/contact/note').send({ contact_id: id, content: 'Called' }).expect(201);
    fake.fault({ kind: 'lose-response', times: 1, match: { method: 'POST', path: /^\/v1\/notes$/ } });
    await request(t.app).post('/contact/note').send({ contact_id: id, content: 'Called' }).expect(201);
    await waitUntilSettled(t);
    expect([...fake.notes.values()].map((note) => note.content)).toEqual(['Called', 'Called']);
    const notes = await t.prisma.note.findMany({ orderBy: { id: 'asc' } });
    expect(notes.map((note) => note.syncStatus)).toEqual(['synced', 'synced']);
    expect(new Set(notes.map((note) => note.crmId)).size).toBe(2);
  });

  it('waits as long as a 429 says before trying again', async () => {
    fake.fault({ kind: 'status', status: 429, retryAfterSeconds: 1, times: 1 });
    const body = await createContact({ name: 'Ada', email: 'ada@example.com' });
    await waitUntilSettled(t);
    const [rejected, retried] = fake.requests;
    expect(retried!.at - rejected!.at).toBeGreaterThanOrEqual(1_000);
    expect(await t.prisma.contact.findUniqueOrThrow({ where: { id: body.contact_id } })).toMatchObject({ syncStatus: 'synced' });
    expect(fake.persons.size).toBe(1);
  });

  it('retries after a timeout without duplicating', async () => {
    fake.fault({ kind: 'hang', times: 1, match: { method: 'POST', path: /^\/api\/v2\/persons$/ } });
    await createContact({ name: 'Ada', email: 'ada@example.com' });
    await waitUntilSettled(t);
    expect(fake.persons.size).toBe(1);
  });

  it('retries after dropped connections', async () => {
    fake.fault({ kind: 'drop', times: 3 });
    const body = await createContact({ name: 'Ada', email: 'ada@example.com' });
    await waitUntilSettled(t);
    const stored = await t.prisma.contact.findUniqueOrThrow({ where: { id: body.contact_id } });
    expect(stored.syncStatus).toBe('synced');
    expect(fake.persons.size).toBe(1);
  });

  it('marks a contact failed with the error when Pipedrive rejects it, and needs no retry to say so', async () => {
    fake.fault({ kind: 'status', status: 422, match: { method: 'POST', path: /^\/api\/v2\/persons$/ } });
    const body = await createContact({ name: 'Ada', email: 'ada@example.com' });
    expect(body.sync_status).toBe('failed');
    expect(body.contact.crm_last_error).toMatch(/422/);
    expect(personCreations(fake)).toHaveLength(1);
  });

  it('gives up after the configured attempts, keeps the error inspectable, and retries on request', async () => {
    await t.close();
    t = await startMirroredApp(fake, { SYNC_MAX_ATTEMPTS: '3', CRM_SYNC_WAIT_MS: '0' });
    fake.fault({ kind: 'status', status: 500 });
    const body = await createContact({ name: 'Ada', email: 'ada@example.com' });

    await waitUntilSettled(t);
    const stored = await t.prisma.contact.findUniqueOrThrow({ where: { id: body.contact_id } });
    expect(stored).toMatchObject({ syncStatus: 'failed', crmLastError: expect.stringMatching(/500/) });
    // Three attempts, each failing at its first request; then out of the queue.
    expect(fake.requests).toHaveLength(3);
    const [queue] = await t.prisma.$queryRaw<{ mirror_due_at: Date | null; mirror_queued_at: Date | null }[]>`
      SELECT mirror_due_at, mirror_queued_at FROM contacts WHERE id = ${body.contact_id}`;
    expect(queue).toEqual({ mirror_due_at: null, mirror_queued_at: null });
    const events = (await request(t.app).get(`/contact/${body.contact_id}/events`).expect(200)).body.items;
    expect(events.map((e: { type: string }) => e.type)).toEqual(['created', 'crm_failed']);
    const status = await request(t.app).get('/sync/status').expect(200);
    expect(status.body).toMatchObject({ contacts: { failed: 1, pending: 0 }, queue: { live: 0, bulk: 0 } });

    fake.clearFaults();
    const resync = await request(t.app).post(`/contact/${body.contact_id}/sync`).expect(202);
    expect(resync.body).toMatchObject({ success: true, contact_id: body.contact_id, sync_status: 'pending', requeued_jobs: 1 });
    await waitUntilSettled(t);
    expect(await t.prisma.contact.findUniqueOrThrow({ where: { id: body.contact_id } })).toMatchObject({
      syncStatus: 'synced',
      crmLastError: null,
    });
    expect(personsByEmail(fake, 'ada@example.com')).toHaveLength(1);
  });

  it('on 401 fails the mirror clearly, reports degraded health, and still accepts local writes', async () => {
    fake.fault({ kind: 'status', status: 401 });
    const body = await createContact({ name: 'Ada', email: 'ada@example.com' });
    expect(body.sync_status).toBe('failed');
    expect(body.contact.crm_last_error).toMatch(/401|unauthori[sz]ed/i);
    const events = (await request(t.app).get(`/contact/${body.contact_id}/events`).expect(200)).body.items;
    expect(events.map((e: { type: string }) => e.type)).toEqual(['created', 'crm_failed']);
    expect(events[1].payload.error).toMatch(/401/);
    const note = await request(t.app).post('/contact/note').send({ contact_id: body.contact_id, content: 'kept locally' }).expect(201);
    expect(note.body.sync_status).toBe('failed');
    expect(await t.prisma.note.count()).toBe(1);

    const health = await request(t.app).get('/contact/health').expect(200);
    expect(health.body).toMatchObject({ status: 'degraded', crm: 'unauthorized', crm_configured: true, database: 'up' });

    fake.clearFaults();
    await request(t.app).post(`/contact/${body.contact_id}/sync`).expect(202);
    await waitUntilSettled(t);
    expect(await t.prisma.note.findFirstOrThrow()).toMatchObject({ syncStatus: 'synced', crmId: expect.any(Number) });
    expect((await request(t.app).get('/contact/health').expect(200)).body).toMatchObject({ status: 'ok', crm: 'ok' });
  });

  it('reports Pipedrive unreachable while it fails with 5xx', async () => {
    fake.fault({ kind: 'status', status: 502 });
    await createContact({ name: 'Ada' });
    const health = await request(t.app).get('/contact/health').expect(200);
    expect(health.body).toMatchObject({ status: 'degraded', crm: 'unreachable' });
  });
});

describe('POST /contact/:id/sync and GET /sync/status', () => {
  it('queues a full sync of a synced contact and counts rows by status', async () => {
    const { contact_id: id, crm_id: crmId } = await createContact({ name: 'Ada', email: 'ada@example.com' });
    fake.persons.get(crmId)!.name = 'Edited in Pipedrive';
    const res = await request(t.app).post(`/contact/${id}/sync`).expect(202);
    expect(res.body.requeued_jobs).toBe(1);
    await waitUntilSettled(t);
    expect(fake.persons.get(crmId)!.name).toBe('Ada');

    const status = await request(t.app).get('/sync/status').expect(200);
    expect(status.body).toEqual({
      contacts: { disabled: 0, pending: 0, synced: 1, failed: 0 },
      notes: { disabled: 0, pending: 0, synced: 0, failed: 0 },
      queue: { live: 0, bulk: 0 },
      oldest_pending_age_seconds: null,
      paused_until: null,
      pause_reason: null,
      pipedrive_tokens: expect.objectContaining({ reserve: 0, resets_at: expect.any(String) }),
      inbound: expect.objectContaining({ mode: 'apply', last_delivery_at: null, deliveries_waiting: 0 }),
    });
  });

  it('answers 404 for an unknown contact', async () => {
    await request(t.app).post('/contact/4242/sync').expect(404);
  });

  it('reports the queue and how long its oldest contact has waited', async () => {
    fake.fault({ kind: 'status', status: 503 });
    await createContact({ name: 'Waiting' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const status = await request(t.app).get('/sync/status').expect(200);
    expect(status.body.queue).toEqual({ live: 1, bulk: 0 });
    expect(status.body.contacts.pending).toBe(1);
    expect(status.body.oldest_pending_age_seconds).toBeGreaterThan(0.2);
  });
});

describe('without a Pipedrive key', () => {
  it('queues nothing and marks rows disabled; resync answers 409 CRM_DISABLED', async () => {
    const local = createTestApp();
    try {
      const res = await request(local.app).post('/contact').send({ name: 'Local only' }).expect(201);
      expect(res.body).toMatchObject({ sync_status: 'disabled', crm_id: null });
      const queued = await local.prisma.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM contacts WHERE mirror_due_at IS NOT NULL`;
      expect(queued).toEqual([{ n: 0 }]);
      const resync = await request(local.app).post(`/contact/${res.body.contact_id}/sync`).expect(409);
      expect(resync.body.error.code).toBe('CRM_DISABLED');
    } finally {
      await local.close();
    }
    expect(fake.requests).toEqual([]);
  });
});

describe('the rate limit', () => {
  it('drains a backlog without more than one rejection per window', async () => {
    await t.close();
    const limited = await FakePipedrive.start({ token: fake.token, rateLimit: { limit: 8, windowMs: 1000 } });
    try {
      t = await startMirroredApp(limited, { CRM_SYNC_WAIT_MS: '0' });
      const count = 14;
      for (let i = 0; i < count; i += 1) await createContact({ name: `Lead ${i}`, email: `lead${i}@example.com` });
      await waitUntilSettled(t, 20_000);

      expect(limited.persons.size).toBe(count);
      for (let i = 0; i < count; i += 1) expect(personsByEmail(limited, `lead${i}@example.com`)).toHaveLength(1);
      for (const rejections of limited.rejectionsPerWindow().values()) expect(rejections).toBeLessThanOrEqual(1);
      expect(await t.prisma.contact.count({ where: { syncStatus: 'synced' } })).toBe(count);
    } finally {
      await t.close();
      await limited.close();
      t = await startMirroredApp(fake);
    }
  }, 40_000);
});

