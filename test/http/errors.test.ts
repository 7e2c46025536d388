import request from 'supertest';
import { failInserts } from '../support/database-fault';
import { createTestApp, type TestApp } from '../support/test-app';

let t: TestApp;
beforeAll(() => {
  t = createTestApp({ bodyLimit: '1kb' });
});
beforeEach(() => t.reset());
afterAll(() => t.close());

const expectErrorShape = (body: unknown, code: string) =>
  expect(body).toEqual({ success: false, error: expect.objectContaining({ code, message: expect.any(String) }) });

describe('error responses', () => {
  it('answers 400 MALFORMED_JSON for a body that is not JSON', async () => {
    const res = await request(t.app).post('/contact').set('content-type', 'application/json').send('{"name": "Ada",').expect(400);
    expectErrorShape(res.body, 'MALFORMED_JSON');
    expect(await t.prisma.contact.count()).toBe(0);
  });

  it('answers 413 PAYLOAD_TOO_LARGE beyond the body limit', async () => {
    const res = await request(t.app).post('/contact/note').send({ contact_id: 1, content: 'x'.repeat(5_000) }).expect(413);
    expectErrorShape(res.body, 'PAYLOAD_TOO_LARGE');
  });

  it.each([
    ['text/plain', 'name=Ada'],
    ['application/x-www-form-urlencoded', 'name=Ada'],
    ['application/xml', '<contact><name>Ada</name></contact>'],
  ])('answers 415 UNSUPPORTED_MEDIA_TYPE for %s', async (type, body) => {
    const res = await request(t.app).post('/contact').set('content-type', type).send(body).expect(415);
    expectErrorShape(res.body, 'UNSUPPORTED_MEDIA_TYPE');
    expect(await t.prisma.contact.count()).toBe(0);
  });

  it('answers 415 for JSON in a charset other than UTF-8', async () => {
    const res = await request(t.app)
      .post('/contact')
      .set('content-type', 'application/json; charset=latin1')
      .send('{"name":"Ada"}')
      .expect(415);
    expectErrorShape(res.body, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('accepts JSON with an explicit UTF-8 charset', async () => {
    await request(t.app).post('/contact').set('content-type', 'application/json; charset=utf-8').send('{"name":"Ada"}').expect(201);
  });

  it.each([
    ['GET', '/nowhere'],
    ['POST', '/contacts'],
    ['PUT', '/contact'],
    ['GET', '/contact'],
  ])('answers 404 NOT_FOUND in JSON for %s %s', async (method, path) => {
    const res = await request(t.app)[method.toLowerCase() as 'get'](path).expect(404);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expectErrorShape(res.body, 'NOT_FOUND');
  });

  it('answers 500 INTERNAL_ERROR without internals when something unexpected fails', async () => {
    const fault = await failInserts(t.prisma, 'contacts', 'secret internals at db.ts:42');
    try {
      const res = await request(t.app).post('/contact').send({ name: 'Ada' }).expect(500);
      expect(res.body).toEqual({ success: false, error: { code: 'INTERNAL_ERROR', message: 'Internal server error' } });
      expect(res.text).not.toMatch(/secret|db\.ts|at /);
      expect(await t.prisma.contact.count()).toBe(0);
    } finally {
      await fault.remove();
    }
  });

  it('does not announce Express and sets helmet’s headers', async () => {
    const res = await request(t.app).get('/health').expect(200);
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });
});

describe('database unreachable', () => {
  // A port on which nothing listens: connections are refused at once.
  const deadDatabase = 'postgresql://postgres@127.0.0.1:1/contacts';
  let down: TestApp;
  beforeAll(() => {
    down = createTestApp({ databaseUrl: deadDatabase });
  });
  afterAll(() => down.close());

  it.each([
    ['POST', '/contact', { name: 'Ada' }],
    ['GET', '/contact/1', undefined],
    ['GET', '/contacts', undefined],
    ['PATCH', '/contact', { contact_id: 1, fields: { name: 'X' } }],
    ['POST', '/contact/note', { contact_id: 1, content: 'x' }],
    ['DELETE', '/contact/1', undefined],
  ])('%s %s answers 503 SERVICE_UNAVAILABLE quickly', async (method, path, body) => {
    const started = Date.now();
    const req = request(down.app)[method.toLowerCase() as 'post'](path);
    const res = await (body ? req.send(body) : req).expect(503);
    expectErrorShape(res.body, 'SERVICE_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('still validates input before touching the database', async () => {
    const res = await request(down.app).post('/contact').send({ name: '' }).expect(400);
    expectErrorShape(res.body, 'VALIDATION_ERROR');
  });

  it('reports the database down on /contact/health with 503, while /health stays 200', async () => {
    const res = await request(down.app).get('/contact/health').expect(503);
    expect(res.body).toEqual({ status: 'unavailable', timestamp: expect.any(String), crm_configured: false, crm: 'disabled', database: 'down' });
    await request(down.app).get('/health').expect(200);
  });
});
