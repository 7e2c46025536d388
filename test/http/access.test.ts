import request from 'supertest';
import { createTestApp, type TestApp } from '../support/test-app';

const KEYS = 'key-one-0123456789,key-two-0123456789';
let t: TestApp;
beforeAll(() => {
  t = createTestApp({ env: { API_KEYS: KEYS } });
});
beforeEach(() => t.reset());
afterAll(() => t.close());

const expectUnauthorized = (body: unknown) =>
  expect(body).toEqual({ success: false, error: { code: 'UNAUTHORIZED', message: expect.any(String) } });

describe('API keys', () => {
  it('refuses a request without a key with 401 and stores nothing', async () => {
    const res = await request(t.app).post('/contact').send({ name: 'Ada' }).expect(401);
    expectUnauthorized(res.body);
    expect(await t.prisma.contact.count()).toBe(0);
  });

  it.each([
    ['x-api-key', 'wrong-key'],
    ['x-api-key', 'key-one-012345678'],
    ['x-api-key', 'key-one-0123456789x'],
    ['authorization', 'Bearer wrong-key'],
    ['authorization', 'Basic a2V5LW9uZS0wMTIzNDU2Nzg5'],
    ['authorization', 'key-one-0123456789'],
  ])('refuses %s: %s', async (header, value) => {
    const res = await request(t.app).get('/contacts').set(header, value).expect(401);
    expectUnauthorized(res.body);
  });

  it.each([
    ['x-api-key', 'key-one-0123456789'],
    ['x-api-key', 'key-two-0123456789'],
    ['authorization', 'Bearer key-two-0123456789'],
    ['authorization', 'bearer   key-one-0123456789'],
  ])('accepts %s: %s', async (header, value) => {
    await request(t.app).post('/contact').set(header, value).send({ name: 'Ada' }).expect(201);
  });

  it.each(['/health', '/contact/health', '/openapi.json', '/docs/'])('leaves %s open', async (path) => {
    await request(t.app).get(path).expect(200);
  });

  it('keeps telling keys apart once they have been accepted', async () => {
    const contacts = (header: string, value: string) => request(t.app).get('/contacts').set(header, value);
    await contacts('x-api-key', 'key-one-0123456789').expect(200);
    await contacts('x-api-key', 'key-one-012345678').expect(401);
    await contacts('x-api-key', 'key-one-0123456780').expect(401);
    await contacts('authorization', 'Bearer key-one-0123456789').expect(200);
    await contacts('x-api-key', 'key-two-0123456789').expect(200);
    await contacts('x-api-key', 'key-one-0123456789').expect(200);
  });

  it('guards unknown routes too, so they reveal nothing without a key', async () => {
    expectUnauthorized((await request(t.app).get('/nowhere').expect(401)).body);
  });
});

describe('rate limiting', () => {
  let limited: TestApp;
  beforeAll(() => {
    limited = createTestApp({ env: { API_KEYS: KEYS, RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' } });
  });
  afterAll(() => limited.close());

  it('answers 429 RATE_LIMITED with Retry-After once a key has used its window, per key', async () => {
    for (let i = 0; i < 3; i += 1) await request(limited.app).get('/contacts').set('x-api-key', 'key-one-0123456789').expect(200);
    const res = await request(limited.app).get('/contacts').set('x-api-key', 'key-one-0123456789').expect(429);
    expect(res.body).toEqual({ success: false, error: { code: 'RATE_LIMITED', message: expect.stringMatching(/retry after \d+ seconds/) } });
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60);
    await request(limited.app).get('/contacts').set('x-api-key', 'key-two-0123456789').expect(200);
    await request(limited.app).get('/health').expect(200);
  });

  it('counts a key as one caller whichever header carries it', async () => {
    const twice = createTestApp({ env: { API_KEYS: KEYS, RATE_LIMIT_MAX: '2' } });
    try {
      await request(twice.app).get('/contacts').set('x-api-key', 'key-two-0123456789').expect(200);
      await request(twice.app).get('/contacts').set('authorization', 'Bearer key-two-0123456789').expect(200);
      await request(twice.app).get('/contacts').set('x-api-key', 'key-two-0123456789').expect(429);
    } finally {
      await twice.close();
    }
  });

  it('never limits the probes, nor counts them', async () => {
    const open = createTestApp({ env: { RATE_LIMIT_MAX: '1' } });
    try {
      for (const path of ['/health', '/contact/health', '/health', '/contact/health']) {
        const res = await request(open.app).get(path).expect(200);
        expect(res.headers).not.toHaveProperty('ratelimit');
      }
      await request(open.app).get('/contacts').expect(200);
      await request(open.app).get('/contacts').expect(429);
      await request(open.app).get('/health').expect(200);
    } finally {
      await open.close();
    }
  });

  it('limits anonymous callers by address when no keys are configured', async () => {
    const open = createTestApp({ env: { RATE_LIMIT_MAX: '2' } });
    try {
      await request(open.app).get('/contacts').expect(200);
      await request(open.app).get('/contacts').expect(200);
      await request(open.app).get('/contacts').expect(429);
    } finally {
      await open.close();
    }
  });
});

describe('request ids and logs', () => {
  it('echoes a given x-request-id, makes one otherwise, and tags every log line of the request with it', async () => {
    const logLines: string[] = [];
    const logged = createTestApp({ env: { API_KEYS: KEYS }, logLines });
    try {
      const given = await request(logged.app).get('/contacts').set('x-api-key', 'key-one-0123456789').set('x-request-id', 'n8n-run-42').expect(200);
      expect(given.headers['x-request-id']).toBe('n8n-run-42');
      const made = await request(logged.app).get('/contacts').set('x-api-key', 'key-one-0123456789').expect(200);
      expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      const odd = await request(logged.app).get('/contacts').set('x-api-key', 'key-one-0123456789').set('x-request-id', 'x'.repeat(300)).expect(200);
      expect(odd.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);

      await request(logged.app).post('/contact').set('authorization', 'Bearer key-two-0123456789').send({ name: 42 }).expect(400);
      const requestLines = logLines.map((line) => JSON.parse(line)).filter((entry) => entry.req);
      expect(requestLines.filter((entry) => entry.req.id === 'n8n-run-42')).not.toHaveLength(0);
      for (const entry of requestLines) expect(entry.req.id).toEqual(expect.any(String));
    } finally {
      await logged.close();
    }
    const everything = logLines.join('\n');
    expect(everything).not.toContain('key-one-0123456789');
    expect(everything).not.toContain('key-two-0123456789');
  });
});
