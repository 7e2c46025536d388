import request from 'supertest';
import { FakePipedrive } from '../../testkit/fake-pipedrive';
import { personCreations, waitUntilSettled } from '../mirror/mirror-support';
import { waitFor } from '../support/wait-for';
import { contactRow, deliveryOutcomes, eventsOf, FAKE_WEBHOOKS, settled, startSyncedApp, WEBHOOK_PASSWORD, WEBHOOK_USER, type SyncedApp } from './inbound-support';

/**
 * Two-way sync: what the sales team changes in Pipedrive reaches the local database through
 * webhooks v2 (delivered by the fake, with its duplicates, reordering and retries), field by field,
 * without losing a newer local change, and without echoing the service's own writes.
 */
let fake: FakePipedrive;
let app: SyncedApp;

beforeAll(async () => {
  fake = await FakePipedrive.start({ webhooks: FAKE_WEBHOOKS });
});
afterAll(() => fake.close());
beforeEach(() => fake.reset());
afterEach(() => app?.close());

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function mirroredContact(body: Record<string, unknown>): Promise<{ id: number; crmId: number }> {
  const res = await request(app.t.app).post('/contact').send(body).expect(201);
  expect(res.body.sync_status).toBe('synced');
  await settled(fake, app.t);
  return { id: res.body.contact_id, crmId: res.body.crm_id };
}

const pipedriveUpdates = (crmId: number) => fake.requests.filter((r) => r.method === 'PATCH' && r.path === `/api/v2/persons/${crmId}`);

async function pauseMirror(): Promise<void> {
  await app.t.services.mirrorRepository.pause(new Date(Date.now() + 60_000), 'test: local changes wait');
}

async function resumeMirror(): Promise<void> {
  await app.t.services.mirrorRepository.resume();
  await waitUntilSettled(app.t);
  await settled(fake, app.t);
}

describe('a change made in Pipedrive', () => {
  beforeEach(async () => {
    app = await startSyncedApp(fake);
  });

  it('is taken into the linked contact, with an audit event whose source is Pipedrive, and sends nothing back', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com', phone: '+44 20 7946 0000' });
    const updatesBefore = pipedriveUpdates(crmId).length;

    fake.editPerson(crmId, (person) => {
      person.name = 'Ada Lovelace';
      person.phones = [{ value: '020 7946 0999', primary: true, label: 'mobile' }];
    });
    await settled(fake, app.t);

    const row = await contactRow(app.t, id);
    expect(row).toMatchObject({ name: 'Ada Lovelace', phone: '020 7946 0999', phoneE164: null, email: 'ada@example.com', syncStatus: 'synced' });
    const event = (await eventsOf(app.t, id)).at(-1)!;
    expect(event).toMatchObject({ type: 'updated', source: 'pipedrive', payload: { changes: { name: 'Ada Lovelace', phone: '020 7946 0999' }, previous: { name: 'Ada', phone: '+44 20 7946 0000' } } });
    // Nothing queued, nothing sent: Pipedrive has it already.
    await waitUntilSettled(app.t);
    expect(pipedriveUpdates(crmId)).toHaveLength(updatesBefore);
    expect(await deliveryOutcomes(app.t)).toContain(`change ${crmId}: applied`);
  });

  it('takes the primary email when the one this service sent is gone, and keeps it when the sales team only added another', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    fake.editPerson(crmId, (person) => person.emails.push({ value: 'ada@home.example', primary: false, label: 'home' }));
    await settled(fake, app.t);
    expect((await contactRow(app.t, id)).email).toBe('ada@example.com');

    fake.editPerson(crmId, (person) => {
      person.emails = [{ value: 'Ada.King@Example.com', primary: true, label: 'work' }];
    });
    await settled(fake, app.t);
    expect((await contactRow(app.t, id)).email).toBe('ada.king@example.com');
  });

  it('is an echo when it is the service’s own write: nothing changes, no event', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    await request(app.t.app).patch('/contact').send({ contact_id: id, fields: { name: 'Ada King' } }).expect(200);
    await waitUntilSettled(app.t);
    await settled(fake, app.t);

    expect(fake.deliveries.filter((d) => d.action === 'change' && d.entityId === crmId).length).toBeGreaterThan(0);
    expect((await eventsOf(app.t, id)).filter((e) => e.source === 'pipedrive')).toEqual([]);
    expect((await deliveryOutcomes(app.t)).filter((outcome) => outcome.startsWith('change'))).toEqual([`change ${crmId}: unchanged`]);
    expect((await contactRow(app.t, id)).name).toBe('Ada King');
  });

  it('loses to a newer local change not yet mirrored: the local value wins and is pushed', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    await pauseMirror();
    fake.webhookFault({ kind: 'hold', match: { action: 'change', entityId: crmId } });
    fake.editPerson(crmId, (person) => {
      person.name = 'Ada (Pipedrive)';
    });
    await fake.webhooksSettled();
    // The local change comes after the person's update time (whole seconds in Pipedrive).
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await request(app.t.app).patch('/contact').send({ contact_id: id, fields: { name: 'Ada (local)' } }).expect(200);

    fake.releaseHeld();
    await settled(fake, app.t);
    expect(await deliveryOutcomes(app.t)).toContain(`change ${crmId}: kept-local`);
    expect((await contactRow(app.t, id)).name).toBe('Ada (local)');

    await resumeMirror();
    expect(fake.persons.get(crmId)!.name).toBe('Ada (local)');
    expect((await contactRow(app.t, id)).syncStatus).toBe('synced');
  });

  it('wins over an older local change not yet mirrored: Pipedrive’s value is taken, and not sent back', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    await pauseMirror();
    await request(app.t.app).patch('/contact').send({ contact_id: id, fields: { name: 'Ada (local)' } }).expect(200);
    fake.advanceClock(2_000);
    fake.editPerson(crmId, (person) => {
      person.name = 'Ada (Pipedrive)';
    });
    await settled(fake, app.t);
    expect((await contactRow(app.t, id)).name).toBe('Ada (Pipedrive)');
    const updatesBefore = pipedriveUpdates(crmId).length;

    await resumeMirror();
    expect(pipedriveUpdates(crmId)).toHaveLength(updatesBefore);
    expect(fake.persons.get(crmId)!.name).toBe('Ada (Pipedrive)');
    expect(await contactRow(app.t, id)).toMatchObject({ name: 'Ada (Pipedrive)', syncStatus: 'synced' });
  });
});

describe('deliveries as Pipedrive makes them', () => {
  beforeEach(async () => {
    app = await startSyncedApp(fake);
  });

  it('are recognised when duplicated: recorded and applied once', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    fake.webhookFault({ kind: 'duplicate', match: { action: 'change' } });
    fake.editPerson(crmId, (person) => {
      person.name = 'Ada Lovelace';
    });
    await settled(fake, app.t);

    const changes = fake.deliveries.filter((d) => d.action === 'change');
    expect(changes).toHaveLength(2);
    expect(changes.every((d) => d.status === 200 && d.deliveryId === changes[0]!.deliveryId)).toBe(true);
    expect(await app.t.prisma.pipedriveWebhookDelivery.count({ where: { action: 'change' } })).toBe(1);
    expect((await eventsOf(app.t, id)).filter((e) => e.source === 'pipedrive')).toHaveLength(1);
  });

  it('never let an older state overwrite a newer one when they arrive out of order', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    fake.webhookFault({ kind: 'hold', times: 1, match: { action: 'change', entityId: crmId } });
    fake.editPerson(crmId, (person) => {
      person.name = 'First';
    });
    fake.advanceClock(2_000);
    fake.editPerson(crmId, (person) => {
      person.name = 'Second';
    });
    await settled(fake, app.t);
    expect((await contactRow(app.t, id)).name).toBe('Second');

    fake.releaseHeld();
    await settled(fake, app.t);
    expect((await contactRow(app.t, id)).name).toBe('Second');
    expect((await deliveryOutcomes(app.t)).filter((outcome) => outcome.startsWith('change'))).toEqual([`change ${crmId}: applied`, `change ${crmId}: stale`]);
  });

  it('refused while the service cannot record them (its database) arrive with Pipedrive’s retry', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    await app.t.prisma.$executeRawUnsafe(`ALTER TABLE pipedrive_webhook_deliveries RENAME TO pipedrive_webhook_deliveries_away`);
    try {
      fake.editPerson(crmId, (person) => {
        person.name = 'Ada Lovelace';
      });
      await waitFor('the first attempt to fail', async () => fake.deliveries.some((d) => d.action === 'change' && d.status !== 200), 5_000);
    } finally {
      await app.t.prisma.$executeRawUnsafe(`ALTER TABLE pipedrive_webhook_deliveries_away RENAME TO pipedrive_webhook_deliveries`);
    }
    await settled(fake, app.t);

    const attempts = fake.deliveries.filter((d) => d.action === 'change');
    expect(attempts[0]!.status).toBeGreaterThanOrEqual(500);
    expect(attempts.at(-1)).toMatchObject({ status: 200 });
    expect(attempts.at(-1)!.attempt).toBeGreaterThan(1);
    expect((await contactRow(app.t, id)).name).toBe('Ada Lovelace');
  });
});

describe('deletes and merges in Pipedrive', () => {
  beforeEach(async () => {
    app = await startSyncedApp(fake);
  });

  it('a deleted person: the contact is unlinked and marked, kept locally, and not mirrored again until queued', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Junk', email: 'junk@example.com' });
    fake.deletePerson(crmId);
    await settled(fake, app.t);

    expect(await contactRow(app.t, id)).toMatchObject({ crmId: null, crmDeleted: true, syncStatus: 'disabled' });
    expect((await eventsOf(app.t, id)).at(-1)).toMatchObject({ type: 'crm_unlinked', source: 'pipedrive', payload: { crm_id: crmId, crm_deleted: true } });
    const body = (await request(app.t.app).get(`/contact/${id}`).expect(200)).body;
    expect(body).toMatchObject({ crm_deleted: true, crm_id: null });

    await request(app.t.app).patch('/contact').send({ contact_id: id, fields: { name: 'Still junk' } }).expect(200);
    await request(app.t.app).post('/contact/note').send({ contact_id: id, content: 'a note' }).expect(201);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(personCreations(fake)).toHaveLength(1);

    // An operator's decision brings it back, as a new person.
    await request(app.t.app).post(`/contact/${id}/sync`).expect(202);
    await waitUntilSettled(app.t);
    expect(personCreations(fake)).toHaveLength(2);
    expect(await contactRow(app.t, id)).toMatchObject({ crmDeleted: false, syncStatus: 'synced' });
  });

  it('a delete taken in while the mirror is writing to that person: the run stops, and no person is created again', async () => {
    // The write is answered (404) 2 s after it is sent, well within the timeout: the delete is taken in meanwhile.
    await app.close();
    app = await startSyncedApp(fake, { PIPEDRIVE_TIMEOUT_MS: '10000' });
    const { id, crmId } = await mirroredContact({ name: 'Junk', email: 'junk@example.com' });
    fake.webhookFault({ kind: 'hold', match: { action: 'delete' } });
    fake.deletePerson(crmId);
    fake.fault({ kind: 'latency', ms: 2_000, times: 1, match: { method: 'PATCH', path: /^\/api\/v2\/persons\/\d+$/ } });
    await request(app.t.app).patch('/contact').send({ contact_id: id, fields: { name: 'Still junk' } }).expect(200);
    await waitFor('the mirror to write to the deleted person', () => pipedriveUpdates(crmId).length > 0, 5_000);

    fake.releaseHeld();
    await settled(fake, app.t);
    // The write's 404 comes 2 s after it was sent; a relink would follow it at once.
    const sentAt = pipedriveUpdates(crmId)[0]!.at;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, sentAt + 2_700 - Date.now())));

    expect(personCreations(fake)).toHaveLength(1);
    expect(await contactRow(app.t, id)).toMatchObject({ crmId: null, crmDeleted: true, syncStatus: 'disabled', mirrorClaimedUntil: null });
  });

  it('a merge: the contact is relinked to the survivor, and takes in the survivor’s name', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    const survivor = fake.seedPerson({ name: 'Ada Lovelace', email: 'lovelace@example.com' });
    await settled(fake, app.t);

    fake.mergePersons(crmId, survivor.id);
    await settled(fake, app.t);

    expect(await contactRow(app.t, id)).toMatchObject({ crmId: survivor.id, name: 'Ada Lovelace', email: 'ada@example.com', crmDeleted: false });
    expect((await eventsOf(app.t, id)).map((e) => `${e.type} ${e.source}`)).toEqual(
      expect.arrayContaining(['crm_linked pipedrive', 'updated pipedrive']),
    );
    // Nothing re-created: the survivor has the contact's email from the merge.
    await request(app.t.app).patch('/contact').send({ contact_id: id, fields: { phone: '+44 20 7946 0000' } }).expect(200);
    await waitUntilSettled(app.t);
    expect(personCreations(fake)).toHaveLength(1);
    expect(fake.persons.get(survivor.id)!.phones.map((p) => p.value)).toEqual(['+442079460000']);
  });

  it('a merge whose survivor’s change arrives before the delete: the relinked contact still takes in the survivor’s name', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    const survivor = fake.seedPerson({ name: 'Ada Lovelace', email: 'lovelace@example.com' });
    await settled(fake, app.t);
    fake.webhookFault({ kind: 'hold', match: { action: 'delete' } });

    fake.mergePersons(crmId, survivor.id);
    await settled(fake, app.t);
    expect((await deliveryOutcomes(app.t)).at(-1)).toBe(`change ${survivor.id}: indexed`);
    fake.releaseHeld();
    await settled(fake, app.t);

    expect(await contactRow(app.t, id)).toMatchObject({ crmId: survivor.id, name: 'Ada Lovelace' });
  });

  it('a merge into a person that mirrors another contact: one person, one contact; the merged one is unlinked, kept, and says why', async () => {
    const ada = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    const grace = await mirroredContact({ name: 'Grace', email: 'grace@example.com' });

    fake.mergePersons(ada.crmId, grace.crmId);
    await settled(fake, app.t);

    expect(await contactRow(app.t, grace.id)).toMatchObject({ crmId: grace.crmId, name: 'Grace' });
    const row = await contactRow(app.t, ada.id);
    expect(row).toMatchObject({ crmId: null, crmDeleted: true, syncStatus: 'disabled' });
    expect(row.crmLastError).toContain(`mirrors contact ${grace.id}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(personCreations(fake)).toHaveLength(2);
  });
});

describe('the receiver', () => {
  beforeEach(async () => {
    app = await startSyncedApp(fake, {}, false);
  });

  const delivery = (meta: Record<string, unknown> = {}) => ({
    meta: { id: 'd-1', action: 'change', entity: 'person', entity_id: '7', timestamp: new Date().toISOString(), version: '2.0', ...meta },
    data: { id: 7, name: 'Ada', emails: [], phones: [], update_time: new Date().toISOString().replace(/\.\d+Z$/, 'Z') },
    previous: { name: 'A' },
  });

  it('answers 401 to missing or wrong credentials, and records nothing', async () => {
    await request(app.t.app).post('/webhooks/pipedrive').send(delivery()).expect(401);
    const wrong = await request(app.t.app).post('/webhooks/pipedrive').set('authorization', basic(WEBHOOK_USER, 'not-the-password')).send(delivery()).expect(401);
    expect(wrong.body.error.code).toBe('UNAUTHORIZED');
    await request(app.t.app).post('/webhooks/pipedrive').set('authorization', basic('someone', WEBHOOK_PASSWORD)).send(delivery()).expect(401);
    expect(await app.t.prisma.pipedriveWebhookDelivery.count()).toBe(0);
  });

  it('answers 400 to a malformed or unknown payload, logs why, and records nothing', async () => {
    const logLines: string[] = [];
    await app.close();
    app = await startSyncedApp(fake, {}, false, logLines);
    const auth = basic(WEBHOOK_USER, WEBHOOK_PASSWORD);
    const post = (body: unknown) => request(app.t.app).post('/webhooks/pipedrive').set('authorization', auth).send(body as object);
    expect((await post({ hello: 'world' }).expect(400)).body.error.code).toBe('VALIDATION_ERROR');
    await post(delivery({ entity: 'deal' })).expect(400);
    await post(delivery({ action: 'merged' })).expect(400);
    await post(delivery({ entity_id: '8' })).expect(400);
    await post(delivery({ timestamp: 'yesterday' })).expect(400);
    expect(await app.t.prisma.pipedriveWebhookDelivery.count()).toBe(0);
    const refusals = logLines.map((line) => JSON.parse(line) as { level: number; msg: string }).filter((line) => line.msg.startsWith('refused a Pipedrive webhook delivery'));
    expect(refusals).toHaveLength(5);
    expect(refusals.every((line) => line.level === 40)).toBe(true);
  });

  it('answers 200 at once and says when a delivery is a duplicate', async () => {
    const auth = basic(WEBHOOK_USER, WEBHOOK_PASSWORD);
    const first = await request(app.t.app).post('/webhooks/pipedrive').set('authorization', auth).send(delivery()).expect(200);
    const again = await request(app.t.app).post('/webhooks/pipedrive').set('authorization', auth).send(delivery({ attempt: 2 })).expect(200);
    expect(first.body).toEqual({ received: true, duplicate: false });
    expect(again.body).toEqual({ received: true, duplicate: true });
    await app.t.services.inbound.settled();
    expect(await deliveryOutcomes(app.t)).toEqual(['change 7: indexed']);
  });

  it('a delivery left claimed by a process that was killed is processed once its claim has run out', async () => {
    const payload = delivery({ id: 'left-behind' });
    await app.t.prisma.$executeRaw`
      INSERT INTO pipedrive_webhook_deliveries (id, action, entity, entity_id, event_at, payload, attempts, claimed_until)
      VALUES ('left-behind', 'change', 'person', 7, now(), ${JSON.stringify(payload)}::jsonb, 1, now() + interval '1 second')`;
    app.t.services.inbound.processDeliveries();
    await app.t.services.inbound.settled();
    expect(await deliveryOutcomes(app.t)).toEqual(['change 7: null']);

    // The sweep, every few seconds, takes it up once the claim has run out.
    await waitFor('the sweep to process it', async () => (await deliveryOutcomes(app.t))[0] === 'change 7: indexed', 10_000);
    expect((await app.t.prisma.pipedriveWebhookDelivery.findUniqueOrThrow({ where: { id: 'left-behind' } })).attempts).toBe(2);
  });

  it('is described in /openapi.json from the schema that validates it', async () => {
    const document = (await request(app.t.app).get('/openapi.json').expect(200)).body;
    const operation = document.paths['/webhooks/pipedrive'].post;
    expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining(['200', '400', '401']));
    expect(operation.security).toEqual([{ basic: [] }]);
    expect(document.components.schemas.PipedriveWebhookDelivery.required).toEqual(expect.arrayContaining(['meta']));
  });

  it('needs no API key: its own credentials stand in', async () => {
    await app.close();
    app = await startSyncedApp(fake, { API_KEYS: 'caller-key' }, false);
    await request(app.t.app).post('/webhooks/pipedrive').set('authorization', basic(WEBHOOK_USER, WEBHOOK_PASSWORD)).send(delivery()).expect(200);
    await request(app.t.app).get('/contacts').expect(401);
  });
});

describe('persons created in Pipedrive', () => {
  it('are indexed only, by default', async () => {
    app = await startSyncedApp(fake);
    const person = fake.seedPerson({ name: 'Grace', email: 'grace@example.com' });
    await settled(fake, app.t);
    expect(await app.t.prisma.contact.count()).toBe(0);
    expect(await app.t.prisma.pipedrivePerson.findUnique({ where: { id: person.id } })).toMatchObject({ emails: ['grace@example.com'] });
  });

  it('become contacts with PIPEDRIVE_IMPORT_NEW=true, or link to the contact with their email', async () => {
    app = await startSyncedApp(fake, { PIPEDRIVE_IMPORT_NEW: 'true' });
    await app.t.prisma.$executeRawUnsafe(`INSERT INTO contacts (name, email, sync_status) VALUES ('Linus', 'linus@example.com', 'disabled')`);
    const grace = fake.seedPerson({ name: 'Grace', email: 'Grace@Example.com', phone: '+1 202 555 0100' });
    const linus = fake.seedPerson({ name: 'Linus T.', email: 'linus@example.com' });
    await settled(fake, app.t);

    const created = await app.t.prisma.contact.findFirstOrThrow({ where: { crmId: grace.id } });
    expect(created).toMatchObject({ name: 'Grace', email: 'grace@example.com', phone: '+1 202 555 0100', phoneE164: '+12025550100', syncStatus: 'synced' });
    expect((await eventsOf(app.t, created.id))[0]).toMatchObject({ type: 'created', source: 'pipedrive' });
    const linked = await app.t.prisma.contact.findFirstOrThrow({ where: { email: 'linus@example.com' } });
    expect(linked.crmId).toBe(linus.id);
    expect(await app.t.prisma.contact.count()).toBe(2);
    // The mirror's own creations are not imported a second time.
    await request(app.t.app).post('/contact').send({ name: 'Ada' }).expect(201);
    await waitUntilSettled(app.t);
    await settled(fake, app.t);
    expect(await app.t.prisma.contact.count({ where: { name: 'Ada' } })).toBe(1);
  });
});

describe('when webhooks are missed', () => {
  it('the index refresh finds the change and takes it in the same way', async () => {
    app = await startSyncedApp(fake);
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    fake.webhookFault({ kind: 'drop', match: { action: 'change' } });
    fake.editPerson(crmId, (person) => {
      person.name = 'Ada Lovelace';
    });
    await settled(fake, app.t);
    expect((await contactRow(app.t, id)).name).toBe('Ada');

    await app.t.services.pipedrive!.index.ready(true);
    expect((await contactRow(app.t, id)).name).toBe('Ada Lovelace');
    expect((await eventsOf(app.t, id)).at(-1)).toMatchObject({ type: 'updated', source: 'pipedrive' });
  });

  it('GET /sync/status shows the last delivery, the last refresh and the lag', async () => {
    app = await startSyncedApp(fake);
    const { crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    fake.editPerson(crmId, (person) => {
      person.name = 'Ada Lovelace';
    });
    await settled(fake, app.t);
    await app.t.services.pipedrive!.index.ready(true);

    const { inbound } = (await request(app.t.app).get('/sync/status').expect(200)).body;
    expect(inbound).toMatchObject({ mode: 'apply', deliveries_waiting: 0, deliveries_failed: 0 });
    expect(Date.now() - Date.parse(inbound.last_delivery_at)).toBeLessThan(30_000);
    expect(Date.now() - Date.parse(inbound.last_refresh_at)).toBeLessThan(30_000);
    expect(inbound.delivery_lag_seconds).toBeGreaterThanOrEqual(0);
    expect(inbound.delivery_lag_seconds).toBeLessThan(30);
    expect(inbound.refresh_age_seconds).toBeGreaterThanOrEqual(0);
  });
});

describe('PIPEDRIVE_INBOUND', () => {
  it('index-only: the index follows Pipedrive, contacts do not', async () => {
    app = await startSyncedApp(fake, { PIPEDRIVE_INBOUND: 'index-only' });
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    fake.editPerson(crmId, (person) => {
      person.name = 'Ada Lovelace';
      person.emails.push({ value: 'ada@home.example', primary: false, label: 'home' });
    });
    await settled(fake, app.t);
    expect((await contactRow(app.t, id)).name).toBe('Ada');
    expect((await app.t.prisma.pipedrivePerson.findUniqueOrThrow({ where: { id: crmId } })).emails).toEqual(['ada@example.com', 'ada@home.example']);
  });

  it('index-only: a merge is not taken in, but the mirror, finding the person gone, relinks to the survivor the webhook named', async () => {
    app = await startSyncedApp(fake, { PIPEDRIVE_INBOUND: 'index-only' });
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    const survivor = fake.seedPerson({ name: 'Ada Lovelace', email: 'lovelace@example.com' });
    fake.mergePersons(crmId, survivor.id);
    await settled(fake, app.t);
    expect((await contactRow(app.t, id)).crmId).toBe(crmId);
    expect(await app.t.prisma.pipedrivePerson.findUniqueOrThrow({ where: { id: crmId } })).toMatchObject({ gone: true, mergedInto: survivor.id });

    const before = fake.requests.length;
    await request(app.t.app).patch('/contact').send({ contact_id: id, fields: { name: 'Ada King' } }).expect(200);
    await waitUntilSettled(app.t);

    expect(await contactRow(app.t, id)).toMatchObject({ crmId: survivor.id, name: 'Ada King', syncStatus: 'synced' });
    expect(fake.persons.get(survivor.id)!.name).toBe('Ada King');
    // Straight to the survivor: no refresh of the index, no search, no new person.
    const calls = fake.requests.slice(before).map((r) => `${r.method} ${r.path}`);
    expect(calls).not.toContain('GET /api/v2/persons');
    expect(calls).not.toContain('GET /api/v2/persons/search');
    expect(personCreations(fake)).toHaveLength(1);
  });

  it('off: no receiver', async () => {
    app = await startSyncedApp(fake, { PIPEDRIVE_INBOUND: 'off' }, false);
    await request(app.t.app).post('/webhooks/pipedrive').set('authorization', basic(WEBHOOK_USER, WEBHOOK_PASSWORD)).send({}).expect(404);
  });
});
