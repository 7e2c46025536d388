import request from 'supertest';
import { createTestApp, type TestApp } from '../support/test-app';

/** Phone numbers are stored as given and in E.164; a number no country issues is refused. */
let t: TestApp;
let gb: TestApp;
beforeAll(() => {
  t = createTestApp();
  gb = createTestApp({ env: { DEFAULT_PHONE_REGION: 'gb' } });
});
beforeEach(() => t.reset());
afterAll(async () => {
  await t.close();
  await gb.close();
});

const stored = (id: number) =>
  t.prisma.$queryRaw<{ phone: string | null; phone_e164: string | null }[]>`SELECT phone, phone_e164 FROM contacts WHERE id = ${id}`.then(
    ([row]) => row,
  );

describe('POST /contact and PATCH /contact', () => {
  it('keep the number as given beside its E.164 form', async () => {
    const res = await request(t.app).post('/contact').send({ name: 'Ada', phone: '+44 (0)20 7946-0000' }).expect(201);
    expect(res.body.contact).toMatchObject({ phone: '+44 (0)20 7946-0000', phone_e164: '+442079460000' });
    expect(await stored(res.body.contact_id)).toEqual({ phone: '+44 (0)20 7946-0000', phone_e164: '+442079460000' });

    const patched = await request(t.app).patch('/contact').send({ contact_id: res.body.contact_id, fields: { phone: '+1 202 555 0100' } }).expect(200);
    expect(patched.body.contact).toMatchObject({ phone: '+1 202 555 0100', phone_e164: '+12025550100' });
    await request(t.app).patch('/contact').send({ contact_id: res.body.contact_id, fields: { name: 'Ada King' } }).expect(200);
    expect(await stored(res.body.contact_id)).toEqual({ phone: '+1 202 555 0100', phone_e164: '+12025550100' });
    await request(t.app).patch('/contact').send({ contact_id: res.body.contact_id, fields: { phone: null } }).expect(200);
    expect(await stored(res.body.contact_id)).toEqual({ phone: null, phone_e164: null });
  });

  it('refuse a number no country issues with 400 naming the field, and write nothing', async () => {
    const res = await request(t.app).post('/contact').send({ name: 'Ada', phone: '+1 555 0100' }).expect(400);
    expect(res.body).toEqual({
      success: false,
      error: {
        code: 'VALIDATION_ERROR',
        message: 'Invalid phone number',
        details: [{ field: 'phone', message: expect.stringMatching(/^is not a valid phone number: write it with \+ and its country code/) }],
      },
    });
    expect(await t.prisma.contact.count()).toBe(0);

    const created = await request(t.app).post('/contact').send({ name: 'Ada', phone: '+44 20 7946 0000' }).expect(201);
    const refused = await request(t.app).patch('/contact').send({ contact_id: created.body.contact_id, fields: { name: 'Other', phone: '+44 20 7946' } }).expect(400);
    expect(refused.body.error.details).toEqual([{ field: 'fields.phone', message: expect.any(String) }]);
    expect(await t.prisma.contact.findUniqueOrThrow({ where: { id: created.body.contact_id } })).toMatchObject({ name: 'Ada', phone: '+44 20 7946 0000' });
  });

  it('refuse a national number without DEFAULT_PHONE_REGION, and read it as one of that country with it', async () => {
    const refused = await request(t.app).post('/contact').send({ name: 'Ada', phone: '020 7946 0000' }).expect(400);
    expect(refused.body.error.details[0].message).not.toMatch(/national/);

    const res = await request(gb.app).post('/contact').send({ name: 'Ada', phone: '020 7946 0000' }).expect(201);
    expect(res.body.contact).toMatchObject({ phone: '020 7946 0000', phone_e164: '+442079460000' });
    const wrong = await request(gb.app).post('/contact').send({ name: 'Grace', phone: '020 7946' }).expect(400);
    expect(wrong.body.error.details[0].message).toMatch(/or as a national number of GB$/);
  });
});

describe('GET /contacts?phone=', () => {
  it('finds a contact by its number however either side wrote it', async () => {
    const ada = await request(t.app).post('/contact').send({ name: 'Ada', phone: '+44 20 7946 0000' }).expect(201);
    await request(t.app).post('/contact').send({ name: 'Grace', phone: '+44 20 7946 0001' }).expect(201);

    for (const phone of ['+442079460000', '+44 (0) 20 7946 0000']) {
      const res = await request(t.app).get('/contacts').query({ phone }).expect(200);
      expect(res.body.items.map((c: { id: number }) => c.id)).toEqual([ada.body.contact_id]);
    }
    const national = await request(gb.app).get('/contacts').query({ phone: '020 7946 0000' }).expect(200);
    expect(national.body.total).toBe(1);
    await request(t.app).get('/contacts').query({ phone: '+1 555 0100' }).expect(400);
  });
});

describe('normalising stored phones', () => {
  it('gives rows written before normalisation their E.164 form, keeps unreadable numbers as given, and queues no mirror', async () => {
    await t.prisma.$executeRaw`
      INSERT INTO contacts (name, phone, sync_status, crm_id) VALUES
        ('Spaced', '+44 20 7946 0000', 'synced', 7), ('National', '020 7946 0001', 'disabled', NULL),
        ('Unreadable', '+44 1', 'disabled', NULL), ('None', NULL, 'disabled', NULL)`;

    expect(await t.services.contactService.normaliseStoredPhones()).toEqual({ normalised: 1, unreadable: 2 });
    expect(await gb.services.contactService.normaliseStoredPhones()).toEqual({ normalised: 1, unreadable: 1 });

    const rows = await t.prisma.$queryRaw<{ name: string; phone: string | null; phone_e164: string | null; mirror_due_at: Date | null }[]>`
      SELECT name, phone, phone_e164, mirror_due_at FROM contacts ORDER BY id`;
    // A synced contact stays synced: the number Pipedrive has is the same number.
    expect(await t.prisma.contact.findFirstOrThrow({ where: { name: 'Spaced' } })).toMatchObject({ syncStatus: 'synced' });
    expect(rows).toEqual([
      { name: 'Spaced', phone: '+44 20 7946 0000', phone_e164: '+442079460000', mirror_due_at: null },
      { name: 'National', phone: '020 7946 0001', phone_e164: '+442079460001', mirror_due_at: null },
      { name: 'Unreadable', phone: '+44 1', phone_e164: null, mirror_due_at: null },
      { name: 'None', phone: null, phone_e164: null, mirror_due_at: null },
    ]);
  });
});
