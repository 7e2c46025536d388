import request from 'supertest';
import { createTestApp, type TestApp } from '../support/test-app';

let t: TestApp;
beforeAll(() => {
  t = createTestApp();
});
beforeEach(() => t.reset());
afterAll(() => t.close());

const contactCount = () => t.prisma.contact.count();

describe('POST /contact', () => {
  it('records a contact and answers 201 with its id and the stored contact', async () => {
    const res = await request(t.app)
      .post('/contact')
      .send({ name: 'Ada Lovelace', email: 'ada@example.com', phone: '+44 20 7946 0000' })
      .expect(201);

    expect(res.body).toEqual({
      success: true,
      contact_id: expect.any(Number),
      crm_id: null,
      sync_status: 'disabled',
      contact: {
        id: res.body.contact_id,
        name: 'Ada Lovelace',
        email: 'ada@example.com',
        phone: '+44 20 7946 0000',
        phone_e164: '+442079460000',
        crm_id: null,
        crm_deleted: false,
        sync_status: 'disabled',
        crm_synced_at: null,
        crm_last_error: null,
        created_at: expect.any(String),
        updated_at: expect.any(String),
      },
    });
    const stored = await t.prisma.contact.findUniqueOrThrow({ where: { id: res.body.contact_id } });
    expect(stored).toMatchObject({ name: 'Ada Lovelace', email: 'ada@example.com', phone: '+44 20 7946 0000' });
    expect(new Date(res.body.contact.created_at).getTime()).toBe(stored.createdAt.getTime());
  });

  it('accepts a name alone', async () => {
    const res = await request(t.app).post('/contact').send({ name: 'Only A Name' }).expect(201);
    expect(res.body.contact).toMatchObject({ email: null, phone: null });
  });

  it('stores email trimmed and lower-cased', async () => {
    const res = await request(t.app).post('/contact').send({ name: 'Grace', email: '  Grace.Hopper@Example.COM ' }).expect(201);
    expect(res.body.contact.email).toBe('grace.hopper@example.com');
    const row = await t.prisma.$queryRaw<{ email: string }[]>`SELECT email FROM contacts WHERE id = ${res.body.contact_id}`;
    expect(row[0]?.email).toBe('grace.hopper@example.com');
  });

  it('treats blank or null email and phone as absent', async () => {
    const res = await request(t.app).post('/contact').send({ name: 'Blank', email: '  ', phone: null }).expect(201);
    expect(res.body.contact).toMatchObject({ email: null, phone: null });
  });

  it.each([
    ['Chinese', '张伟'],
    ['accents', 'Zoë Ñúñez-Łukasz'],
    ['emoji', 'Ana 🚀 Souza'],
    ['right-to-left', 'محمد علي'],
  ])('keeps a unicode name intact (%s)', async (_label, name) => {
    const res = await request(t.app).post('/contact').send({ name }).expect(201);
    expect(res.body.contact.name).toBe(name);
    const stored = await t.prisma.contact.findUniqueOrThrow({ where: { id: res.body.contact_id } });
    expect(stored.name).toBe(name);
  });

  it('accepts a name of exactly 255 characters, including multi-byte ones', async () => {
    const name = 'é'.repeat(255);
    const res = await request(t.app).post('/contact').send({ name }).expect(201);
    expect(res.body.contact.name).toBe(name);
  });

  it('answers 409 CONTACT_EXISTS with the existing id when the email is taken, in any case', async () => {
    const first = await request(t.app).post('/contact').send({ name: 'Ada', email: 'ada@example.com' }).expect(201);
    const res = await request(t.app).post('/contact').send({ name: 'Ada again', email: 'ADA@Example.com' }).expect(409);
    expect(res.body).toEqual({
      success: false,
      error: { code: 'CONTACT_EXISTS', message: expect.any(String), contact_id: first.body.contact_id },
    });
    expect(await contactCount()).toBe(1);
  });

  it('lets exactly one of many concurrent POSTs of one email win', async () => {
    const attempts = 12;
    const responses = await Promise.all(
      Array.from({ length: attempts }, (_, i) =>
        request(t.app).post('/contact').send({ name: `Racer ${i}`, email: 'race@example.com' }),
      ),
    );
    const statuses = responses.map((res) => res.status).sort();
    expect(statuses.filter((status) => status === 201)).toHaveLength(1);
    expect(statuses.filter((status) => status === 409)).toHaveLength(attempts - 1);
    const winner = responses.find((res) => res.status === 201)!;
    for (const loser of responses.filter((res) => res.status === 409)) {
      expect(loser.body.error.contact_id).toBe(winner.body.contact_id);
    }
    expect(await contactCount()).toBe(1);
  });

  it('allows many contacts without an email', async () => {
    await request(t.app).post('/contact').send({ name: 'No email 1' }).expect(201);
    await request(t.app).post('/contact').send({ name: 'No email 2' }).expect(201);
    expect(await contactCount()).toBe(2);
  });

  describe('rejects bad input with 400 VALIDATION_ERROR and stores nothing', () => {
    it.each([
      ['no name', { email: 'a@example.com' }, 'name'],
      ['empty name', { name: '   ' }, 'name'],
      ['name too long', { name: 'x'.repeat(256) }, 'name'],
      ['name not a string', { name: 42 }, 'name'],
      ['invalid email', { name: 'A', email: 'not-an-email' }, 'email'],
      ['email too long', { name: 'A', email: `${'a'.repeat(250)}@example.com` }, 'email'],
      ['email not a string', { name: 'A', email: ['a@example.com'] }, 'email'],
      ['phone too long', { name: 'A', phone: '+1 555 555 555 555 555' }, 'phone'],
      ['phone with letters', { name: 'A', phone: 'call me' }, 'phone'],
      ['unknown field', { name: 'A', company: 'ACME' }, 'company'],
    ])('%s', async (_label, body, field) => {
      const res = await request(t.app).post('/contact').send(body).expect(400);
      expect(res.body.success).toBe(false);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
      expect(res.body.error.details).toEqual(
        expect.arrayContaining([expect.objectContaining({ field: expect.stringContaining(field), message: expect.any(String) })]),
      );
      expect(await contactCount()).toBe(0);
    });

    it('a JSON array instead of an object', async () => {
      const res = await request(t.app).post('/contact').send([{ name: 'A' }]).expect(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
    });

    it('no body at all', async () => {
      const res = await request(t.app).post('/contact').expect(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
      expect(await contactCount()).toBe(0);
    });
  });
});
