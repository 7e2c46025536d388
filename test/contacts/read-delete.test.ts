import request from 'supertest';
import { createTestApp, type TestApp } from '../support/test-app';

let t: TestApp;
beforeAll(() => {
  t = createTestApp();
});
beforeEach(() => t.reset());
afterAll(() => t.close());

async function seed(names: string[]): Promise<number[]> {
  const ids: number[] = [];
  for (const [i, name] of names.entries()) {
    const res = await request(t.app).post('/contact').send({ name, email: `person${i}@example.com` }).expect(201);
    ids.push(res.body.contact_id);
  }
  return ids;
}

describe('GET /contact/:id', () => {
  it('answers the contact', async () => {
    const [id] = await seed(['Ada']);
    const res = await request(t.app).get(`/contact/${id}`).expect(200);
    expect(res.body).toEqual({
      id,
      name: 'Ada',
      email: 'person0@example.com',
      phone: null,
      phone_e164: null,
      crm_id: null,
      crm_deleted: false,
      sync_status: 'disabled',
      crm_synced_at: null,
      crm_last_error: null,
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      updated_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
  });

  it('answers 404 NOT_FOUND for an unknown id', async () => {
    const res = await request(t.app).get('/contact/12345').expect(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
  });

  it.each(['abc', '0', '-3', '1.5', '99999999999'])('answers 400 VALIDATION_ERROR for the id %s', async (id) => {
    const res = await request(t.app).get(`/contact/${id}`).expect(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: [expect.objectContaining({ field: 'id' })] });
  });
});

describe('GET /contacts', () => {
  it('pages through contacts oldest first with a total', async () => {
    const ids = await seed(['A', 'B', 'C', 'D', 'E']);
    const res = await request(t.app).get('/contacts?skip=1&limit=2').expect(200);
    expect(res.body).toMatchObject({ total: 5, skip: 1, limit: 2 });
    expect(res.body.items.map((c: { id: number }) => c.id)).toEqual(ids.slice(1, 3));
  });

  it('defaults to skip 0 and limit 50', async () => {
    await seed(Array.from({ length: 55 }, (_, i) => `Person ${i}`));
    const res = await request(t.app).get('/contacts').expect(200);
    expect(res.body).toMatchObject({ total: 55, skip: 0, limit: 50 });
    expect(res.body.items).toHaveLength(50);
  });

  it('accepts the bounds: limit 1 and 200, a skip past the end', async () => {
    await seed(['A', 'B']);
    expect((await request(t.app).get('/contacts?limit=1').expect(200)).body.items).toHaveLength(1);
    expect((await request(t.app).get('/contacts?limit=200').expect(200)).body.items).toHaveLength(2);
    const past = await request(t.app).get('/contacts?skip=10').expect(200);
    expect(past.body).toMatchObject({ items: [], total: 2, skip: 10 });
  });

  it.each(['limit=0', 'limit=201', 'limit=-1', 'limit=ten', 'skip=-1', 'skip=1.5', 'limit=1&limit=2'])(
    'answers 400 VALIDATION_ERROR for %s',
    async (query) => {
      const res = await request(t.app).get(`/contacts?${query}`).expect(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
    },
  );

  it('searches names case-insensitively by substring', async () => {
    await seed(['Ada Lovelace', 'Grace Hopper', 'ADALINE', 'Zoë Ådalsteinsdóttir', 'Linus']);
    const res = await request(t.app).get('/contacts?search=ada').expect(200);
    expect(res.body.items.map((c: { name: string }) => c.name).sort()).toEqual(['ADALINE', 'Ada Lovelace']);
    expect(res.body.total).toBe(2);
    const unicode = await request(t.app).get(`/contacts?search=${encodeURIComponent('ådal')}`).expect(200);
    expect(unicode.body.items.map((c: { name: string }) => c.name)).toEqual(['Zoë Ådalsteinsdóttir']);
  });

  it('treats search text literally, wildcards included', async () => {
    await seed(['100% Sales', 'Under_score', 'Back\\slash', 'Plain']);
    const percent = await request(t.app).get(`/contacts?search=${encodeURIComponent('%')}`).expect(200);
    expect(percent.body.items.map((c: { name: string }) => c.name)).toEqual(['100% Sales']);
    const underscore = await request(t.app).get('/contacts?search=_').expect(200);
    expect(underscore.body.items.map((c: { name: string }) => c.name)).toEqual(['Under_score']);
    const backslash = await request(t.app).get(`/contacts?search=${encodeURIComponent('\\')}`).expect(200);
    expect(backslash.body.items.map((c: { name: string }) => c.name)).toEqual(['Back\\slash']);
  });

  it('filters by exact email in any case', async () => {
    await seed(['A', 'B']);
    const res = await request(t.app).get('/contacts?email=PERSON1@example.com').expect(200);
    expect(res.body.items.map((c: { name: string }) => c.name)).toEqual(['B']);
    await request(t.app).get('/contacts?email=not-an-email').expect(400);
  });
});

describe('DELETE /contact/:id', () => {
  it('deletes the contact and its notes, then answers 404', async () => {
    const [id] = await seed(['Ada']);
    await request(t.app).post('/contact/note').send({ contact_id: id, content: 'note' }).expect(201);
    const res = await request(t.app).delete(`/contact/${id}`).expect(204);
    expect(res.text).toBe('');
    expect(await t.prisma.contact.count()).toBe(0);
    expect(await t.prisma.note.count()).toBe(0);
    await request(t.app).delete(`/contact/${id}`).expect(404);
    await request(t.app).get(`/contact/${id}`).expect(404);
  });

  it('answers 400 for an id that is not a number', async () => {
    await request(t.app).delete('/contact/abc').expect(400);
  });
});
