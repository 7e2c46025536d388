import request from 'supertest';
import { FakePipedrive } from '../../testkit/fake-pipedrive';
import type { TestApp } from '../support/test-app';
import { personCreations, startMirroredApp, waitUntilSettled } from './mirror-support';

/**
 * Pipedrive is a mirror people edit: the sales team adds emails and phones, deletes and merges
 * persons. The mirror keeps what they put there, and follows a contact's person when it is gone.
 */
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

async function mirroredContact(body: Record<string, unknown>): Promise<{ id: number; crmId: number }> {
  const res = await request(t.app).post('/contact').send(body).expect(201);
  expect(res.body.sync_status).toBe('synced');
  return { id: res.body.contact_id, crmId: res.body.crm_id };
}

async function patch(id: number, fields: Record<string, unknown>): Promise<void> {
  await request(t.app).patch('/contact').send({ contact_id: id, fields }).expect(200);
  await waitUntilSettled(t);
}

const eventsOf = async (id: number) =>
  (await request(t.app).get(`/contact/${id}/events`).expect(200)).body.items.map((e: { type: string; payload: unknown }) => [e.type, e.payload]);

describe('emails and phones the sales team added', () => {
  it('stay when the contact’s email changes: only the value this service set is replaced, in its place', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    fake.persons.get(crmId)!.emails.push({ value: 'ada@home.example', primary: false, label: 'home' });

    await patch(id, { email: 'ada.king@example.com' });
    expect(fake.persons.get(crmId)!.emails).toEqual([
      { value: 'ada.king@example.com', primary: true, label: 'work' },
      { value: 'ada@home.example', primary: false, label: 'home' },
    ]);
    // The person was read first (1 token) because its list had to change.
    expect(fake.requests.filter((r) => r.method === 'GET' && r.path === `/api/v2/persons/${crmId}`)).toHaveLength(1);
  });

  it('keep the primary flag where the sales team moved it, and a label they chose', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Ada', phone: '+44 20 7946 0000' });
    const person = fake.persons.get(crmId)!;
    person.phones = [
      { value: '+1 202 555 0100', primary: true, label: 'mobile' },
      { value: '+44 20 7946 0000', primary: false, label: 'home' },
    ];

    await patch(id, { phone: '+44 20 7946 0001' });
    expect(fake.persons.get(crmId)!.phones).toEqual([
      { value: '+1 202 555 0100', primary: true, label: 'mobile' },
      { value: '+442079460001', primary: false, label: 'home' },
    ]);
  });

  it('stay when the contact’s phone is cleared: only its own number goes, another becomes primary', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Ada', phone: '+44 20 7946 0000' });
    fake.persons.get(crmId)!.phones.push({ value: '+1 202 555 0100', primary: false, label: 'mobile' });

    await patch(id, { phone: null });
    expect(fake.persons.get(crmId)!.phones).toEqual([{ value: '+1 202 555 0100', primary: true, label: 'mobile' }]);
  });

  it('are not read at all for a name change', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    fake.persons.get(crmId)!.emails.push({ value: 'ada@home.example', primary: false, label: 'home' });
    await patch(id, { name: 'Ada King' });
    const [update] = fake.requests.filter((r) => r.method === 'PATCH');
    expect(update!.body).toEqual({ name: 'Ada King' });
    expect(fake.requests.filter((r) => r.method === 'GET' && r.path === `/api/v2/persons/${crmId}`)).toEqual([]);
    expect(fake.persons.get(crmId)!.emails).toHaveLength(2);
  });

  it('stay when a contact is linked to a person found by email: its phone is added beside theirs', async () => {
    const existing = fake.seedPerson({ name: 'A. Lovelace', email: 'ada@example.com', phone: '+1 202 555 0100' });
    fake.persons.get(existing.id)!.phones[0]!.label = 'mobile';
    const { crmId } = await mirroredContact({ name: 'Ada Lovelace', email: 'ada@example.com', phone: '+44 20 7946 0000' });
    expect(crmId).toBe(existing.id);
    expect(fake.persons.get(crmId)).toMatchObject({
      name: 'Ada Lovelace',
      emails: [{ value: 'ada@example.com', primary: true, label: 'work' }],
      phones: [
        { value: '+1 202 555 0100', primary: true, label: 'mobile' },
        { value: '+442079460000', primary: false, label: 'work' },
      ],
    });
  });

  it('stay on a full sync (POST /contact/:id/sync): the name is restored, nothing is removed', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    const person = fake.persons.get(crmId)!;
    person.name = 'Edited in Pipedrive';
    person.emails.push({ value: 'ada@home.example', primary: false, label: 'home' });

    await request(t.app).post(`/contact/${id}/sync`).expect(202);
    await waitUntilSettled(t);
    expect(fake.persons.get(crmId)).toMatchObject({
      name: 'Ada',
      emails: [
        { value: 'ada@example.com', primary: true, label: 'work' },
        { value: 'ada@home.example', primary: false, label: 'home' },
      ],
    });
  });
});

describe('a person deleted or merged in Pipedrive', () => {
  it('deleted: the next change links the contact to a new person, with an audit event, and is not failed', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    fake.deletePerson(crmId);

    await patch(id, { name: 'Ada King' });
    const contact = (await request(t.app).get(`/contact/${id}`).expect(200)).body;
    expect(contact).toMatchObject({ sync_status: 'synced', crm_last_error: null });
    expect(contact.crm_id).not.toBe(crmId);
    expect(fake.persons.get(contact.crm_id)).toMatchObject({ name: 'Ada King', emails: [{ value: 'ada@example.com', primary: true, label: 'work' }] });
    expect(personCreations(fake)).toHaveLength(2);
    const events = await eventsOf(id);
    expect(events.slice(-2)).toEqual([
      ['crm_unlinked', { crm_id: crmId, reason: expect.stringMatching(/404/) }],
      ['crm_synced', { crm_id: contact.crm_id, action: 'created' }],
    ]);
  });

  it('merged: the contact follows its email to the survivor, which is not duplicated', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    const survivor = fake.seedPerson({ name: 'Ada Lovelace (CRM)', email: 'lovelace@example.com' });
    fake.mergePersons(crmId, survivor.id);

    await patch(id, { phone: '+44 20 7946 0000' });
    const contact = (await request(t.app).get(`/contact/${id}`).expect(200)).body;
    expect(contact).toMatchObject({ sync_status: 'synced', crm_id: survivor.id });
    expect(personCreations(fake)).toHaveLength(1);
    expect(fake.persons.get(survivor.id)).toMatchObject({
      name: 'Ada',
      emails: [
        { value: 'lovelace@example.com', primary: true, label: 'work' },
        { value: 'ada@example.com', primary: false, label: 'work' },
      ],
      phones: [{ value: '+442079460000', primary: true, label: 'work' }],
    });
    expect((await eventsOf(id)).slice(-2)).toEqual([
      ['crm_unlinked', { crm_id: crmId, reason: expect.any(String) }],
      ['crm_synced', { crm_id: survivor.id, action: 'linked' }],
    ]);
  });

  it('gone when a note is added: the note goes to the person the contact is linked to again', async () => {
    const { id, crmId } = await mirroredContact({ name: 'Ada', email: 'ada@example.com' });
    fake.deletePerson(crmId);

    const note = await request(t.app).post('/contact/note').send({ contact_id: id, content: 'Called back' }).expect(201);
    expect(note.body).toMatchObject({ sync_status: 'synced' });
    const contact = (await request(t.app).get(`/contact/${id}`).expect(200)).body;
    expect(contact.crm_id).not.toBe(crmId);
    expect(fake.notes.get(note.body.crm_note_id)).toMatchObject({ content: 'Called back', person_id: contact.crm_id });
  });
});
