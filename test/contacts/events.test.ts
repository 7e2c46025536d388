import request from 'supertest';
import { failInserts } from '../support/database-fault';
import { createTestApp, type TestApp } from '../support/test-app';

let t: TestApp;
beforeAll(() => {
  t = createTestApp();
});
beforeEach(() => t.reset());
afterAll(() => t.close());

const eventsOf = async (id: number, query = '') => (await request(t.app).get(`/contact/${id}/events${query}`).expect(200)).body;

describe('GET /contact/:id/events', () => {
  it('lists what happened to a contact, oldest first, with the details of each change', async () => {
    const created = await request(t.app).post('/contact').send({ name: 'Ada', email: 'ada@example.com' }).expect(201);
    const id = created.body.contact_id;
    await request(t.app).patch('/contact').send({ contact_id: id, fields: { name: 'Ada King', phone: '+44 20 7946 0101' } }).expect(200);
    const note = await request(t.app).post('/contact/note').send({ contact_id: id, content: 'Wants a demo' }).expect(201);

    const body = await eventsOf(id);
    expect(body).toMatchObject({ total: 3, skip: 0, limit: 50 });
    expect(body.items).toEqual([
      { id: expect.any(Number), type: 'created', source: 'api', payload: { name: 'Ada', email: 'ada@example.com', phone: null }, created_at: expect.any(String) },
      {
        id: expect.any(Number),
        type: 'updated',
        source: 'api',
        payload: { changes: { name: 'Ada King', phone: '+44 20 7946 0101' }, previous: { name: 'Ada', phone: null } },
        created_at: expect.any(String),
      },
      { id: expect.any(Number), type: 'note_added', source: 'api', payload: { note_id: note.body.note_id, content: 'Wants a demo' }, created_at: expect.any(String) },
    ]);
  });

  it('records what each of concurrent changes replaced: every update\'s previous value is the one before it', async () => {
    const { body } = await request(t.app).post('/contact').send({ name: 'Ada' }).expect(201);
    const id = body.contact_id;
    // Another session holds the row while the changes arrive, so that they all start before any commits.
    await t.prisma.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT id FROM contacts WHERE id = ${id} FOR UPDATE`;
      const changes = ['One', 'Two', 'Three'].map((name) => request(t.app).patch('/contact').send({ contact_id: id, fields: { name } }).then((res) => res));
      await new Promise((resolve) => setTimeout(resolve, 300));
      return changes;
    }).then(async (changes) => expect((await Promise.all(changes)).map((res) => res.status)).toEqual([200, 200, 200]));

    const updates = (await eventsOf(id)).items.filter((event: { type: string }) => event.type === 'updated');
    expect(updates).toHaveLength(3);
    const replaced = updates.map((event: { payload: { previous: { name: string } } }) => event.payload.previous.name);
    const before = ['Ada', ...updates.slice(0, -1).map((event: { payload: { changes: { name: string } } }) => event.payload.changes.name)];
    expect(replaced).toEqual(before);
  });

  it('pages with skip and limit', async () => {
    const { body } = await request(t.app).post('/contact').send({ name: 'Ada' }).expect(201);
    for (const content of ['one', 'two', 'three']) {
      await request(t.app).post('/contact/note').send({ contact_id: body.contact_id, content }).expect(201);
    }
    const page = await eventsOf(body.contact_id, '?skip=1&limit=2');
    expect(page).toMatchObject({ total: 4, skip: 1, limit: 2 });
    expect(page.items.map((e: { payload: { content: string } }) => e.payload.content)).toEqual(['one', 'two']);
    await request(t.app).get(`/contact/${body.contact_id}/events?limit=0`).expect(400);
  });

  it('answers 404 for an unknown contact and 400 for a bad id', async () => {
    await request(t.app).get('/contact/999/events').expect(404);
    await request(t.app).get('/contact/abc/events').expect(400);
  });

  it('records nothing for a rejected change', async () => {
    await request(t.app).post('/contact').send({ name: 'Ada', email: 'ada@example.com' }).expect(201);
    const { body } = await request(t.app).post('/contact').send({ name: 'Grace', email: 'grace@example.com' }).expect(201);
    await request(t.app).patch('/contact').send({ contact_id: body.contact_id, fields: { email: 'ada@example.com' } }).expect(409);
    await request(t.app).post('/contact').send({ name: 'Ada twin', email: 'ada@example.com' }).expect(409);
    expect((await eventsOf(body.contact_id)).items.map((e: { type: string }) => e.type)).toEqual(['created']);
    expect(await t.prisma.contactEvent.count()).toBe(2);
  });

  it('is written in the transaction of the change: a change that rolls back leaves no event', async () => {
    // The contact's statement fails at its last write: the event's.
    const fault = await failInserts(t.prisma, 'contact_events', 'event store unavailable');
    try {
      await request(t.app).post('/contact').send({ name: 'Ada' }).expect(500);
      expect(await t.prisma.contact.count()).toBe(0);
      expect(await t.prisma.contactEvent.count()).toBe(0);
    } finally {
      await fault.remove();
    }
  });

  it('is append-only, even from psql, and goes with its contact', async () => {
    const { body } = await request(t.app).post('/contact').send({ name: 'Ada' }).expect(201);
    await expect(t.prisma.$executeRaw`UPDATE contact_events SET type = 'updated'`).rejects.toThrow(/append-only/);
    await request(t.app).delete(`/contact/${body.contact_id}`).expect(204);
    expect(await t.prisma.contactEvent.count()).toBe(0);
  });
});
