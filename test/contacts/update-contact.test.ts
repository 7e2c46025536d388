import request from 'supertest';
import { createTestApp, type TestApp } from '../support/test-app';

let t: TestApp;
beforeAll(() => {
  t = createTestApp();
});
beforeEach(() => t.reset());
afterAll(() => t.close());

async function createContact(body: Record<string, unknown>): Promise<number> {
  const res = await request(t.app).post('/contact').send(body).expect(201);
  return res.body.contact_id;
}

describe('PATCH /contact', () => {
  it('changes only the given fields and answers 200 with the contact', async () => {
    const id = await createContact({ name: 'Ada', email: 'ada@example.com', phone: '+44 20 7946 0101' });
    const res = await request(t.app)
      .patch('/contact')
      .send({ contact_id: id, fields: { name: 'Ada King', email: 'ADA.KING@example.com' } })
      .expect(200);
    expect(res.body).toEqual({
      success: true,
      message: expect.any(String),
      contact: expect.objectContaining({ id, name: 'Ada King', email: 'ada.king@example.com', phone: '+44 20 7946 0101' }),
    });
    const stored = await t.prisma.contact.findUniqueOrThrow({ where: { id } });
    expect(stored).toMatchObject({ name: 'Ada King', email: 'ada.king@example.com', phone: '+44 20 7946 0101' });
  });

  it('moves updated_at forward and leaves created_at alone', async () => {
    const id = await createContact({ name: 'Ada' });
    const before = await t.prisma.contact.findUniqueOrThrow({ where: { id } });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await request(t.app).patch('/contact').send({ contact_id: id, fields: { phone: '+1 202 555 0100' } }).expect(200);
    const after = await t.prisma.contact.findUniqueOrThrow({ where: { id } });
    expect(after.updatedAt.getTime()).toBeGreaterThan(before.updatedAt.getTime());
    expect(after.createdAt.getTime()).toBe(before.createdAt.getTime());
  });

  it('clears email and phone with null or ""', async () => {
    const id = await createContact({ name: 'Ada', email: 'ada@example.com', phone: '+44 20 7946 0101' });
    const res = await request(t.app).patch('/contact').send({ contact_id: id, fields: { email: null, phone: '' } }).expect(200);
    expect(res.body.contact).toMatchObject({ email: null, phone: null });
  });

  it('keeps a contact’s own email without calling it a conflict', async () => {
    const id = await createContact({ name: 'Ada', email: 'ada@example.com' });
    await request(t.app).patch('/contact').send({ contact_id: id, fields: { email: 'Ada@example.com' } }).expect(200);
  });

  it('answers 409 CONTACT_EXISTS naming the other contact when the email belongs to it', async () => {
    const ada = await createContact({ name: 'Ada', email: 'ada@example.com' });
    const grace = await createContact({ name: 'Grace', email: 'grace@example.com' });
    const res = await request(t.app).patch('/contact').send({ contact_id: grace, fields: { email: 'ADA@example.com' } }).expect(409);
    expect(res.body.error).toMatchObject({ code: 'CONTACT_EXISTS', contact_id: ada });
    const stored = await t.prisma.contact.findUniqueOrThrow({ where: { id: grace } });
    expect(stored.email).toBe('grace@example.com');
  });

  it('answers 404 NOT_FOUND for an unknown contact', async () => {
    const res = await request(t.app).patch('/contact').send({ contact_id: 999, fields: { name: 'Nobody' } }).expect(404);
    expect(res.body).toEqual({ success: false, error: { code: 'NOT_FOUND', message: expect.any(String) } });
  });

  describe('rejects with 400 VALIDATION_ERROR and changes nothing', () => {
    it.each([
      ['no fields', (id: number) => ({ contact_id: id, fields: {} })],
      ['fields missing', (id: number) => ({ contact_id: id })],
      ['unknown field', (id: number) => ({ contact_id: id, fields: { company: 'ACME' } })],
      ['unknown top-level key', (id: number) => ({ contact_id: id, fields: { name: 'X' }, extra: 1 })],
      ['name set to null', (id: number) => ({ contact_id: id, fields: { name: null } })],
      ['empty name', (id: number) => ({ contact_id: id, fields: { name: '' } })],
      ['bad email', (id: number) => ({ contact_id: id, fields: { email: 'nope' } })],
      ['contact_id as a string', (id: number) => ({ contact_id: String(id), fields: { name: 'X' } })],
      ['contact_id fractional', () => ({ contact_id: 1.5, fields: { name: 'X' } })],
      ['contact_id beyond an integer', () => ({ contact_id: 2 ** 31, fields: { name: 'X' } })],
    ])('%s', async (_label, makeBody) => {
      const id = await createContact({ name: 'Ada', email: 'ada@example.com' });
      const before = await t.prisma.contact.findUniqueOrThrow({ where: { id } });
      const res = await request(t.app).patch('/contact').send(makeBody(id)).expect(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
      expect(res.body.error.details.length).toBeGreaterThan(0);
      expect(await t.prisma.contact.findUniqueOrThrow({ where: { id } })).toEqual(before);
    });
  });
});
