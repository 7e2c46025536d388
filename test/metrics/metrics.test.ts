import request from 'supertest';
import { FakePipedrive } from '../../testkit/fake-pipedrive';
import { createTestApp, type TestApp } from '../support/test-app';
import { startMirroredApp, waitUntilSettled } from '../mirror/mirror-support';

const KEY = 'metrics-key-0123456789';

/** The value of one sample line of the Prometheus text format, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const line = text.split('\n').find((candidate) => {
    if (!candidate.startsWith(`${name}{`) && !candidate.startsWith(`${name} `)) return false;
    return Object.entries(labels).every(([key, value]) => candidate.includes(`${key}="${value}"`));
  });
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('GET /metrics', () => {
  let t: TestApp;
  beforeAll(() => {
    t = createTestApp({ env: { API_KEYS: KEY } });
  });
  beforeEach(() => t.reset());
  afterAll(() => t.close());

  const scrape = async () => (await request(t.app).get('/metrics').set('authorization', `Bearer ${KEY}`).expect(200)).text;

  it('needs a key, and answers in the Prometheus text format', async () => {
    await request(t.app).get('/metrics').expect(401);
    const res = await request(t.app).get('/metrics').set('authorization', `Bearer ${KEY}`).expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.text).toContain('# TYPE http_request_duration_seconds histogram');
    expect(res.text).toContain('process_resident_memory_bytes');
  });

  it('times requests by route pattern, method and status', async () => {
    const created = await request(t.app).post('/contact').set('x-api-key', KEY).send({ name: 'Ada' }).expect(201);
    await request(t.app).get(`/contact/${created.body.contact_id}`).set('x-api-key', KEY).expect(200);
    await request(t.app).get('/contact/99999').set('x-api-key', KEY).expect(404);
    await request(t.app).get('/no/such/path').set('x-api-key', KEY).expect(404);

    const text = await scrape();
    expect(sample(text, 'http_request_duration_seconds_count', { method: 'POST', route: '/contact', status: '201' })).toBe(1);
    expect(sample(text, 'http_request_duration_seconds_count', { method: 'GET', route: '/contact/:id', status: '200' })).toBe(1);
    expect(sample(text, 'http_request_duration_seconds_count', { method: 'GET', route: '/contact/:id', status: '404' })).toBe(1);
    expect(sample(text, 'http_request_duration_seconds_count', { route: 'unmatched', status: '404' })).toBe(1);
    expect(text).not.toContain(`/contact/${created.body.contact_id}"`);
  });

  it('reports the depth of the mirror queue', async () => {
    const text = await scrape();
    expect(sample(text, 'mirror_queue', { state: 'queued' })).toBe(0);
    expect(sample(text, 'mirror_queue', { state: 'failed' })).toBe(0);
  });
});

describe('mirror metrics', () => {
  let fake: FakePipedrive;
  let t: TestApp;
  beforeAll(async () => {
    fake = await FakePipedrive.start();
  });
  afterAll(() => fake.close());
  beforeEach(async () => {
    fake.reset();
    t = await startMirroredApp(fake, { API_KEYS: KEY });
  });
  afterEach(() => t.close());

  const scrape = async () => (await request(t.app).get('/metrics').set('x-api-key', KEY).expect(200)).text;

  it('counts mirror runs by outcome (a 429 pauses), times Pipedrive calls by endpoint, and counts 429s', async () => {
    fake.fault({ kind: 'status', status: 429, retryAfterSeconds: 1, times: 1 });
    await request(t.app).post('/contact').set('x-api-key', KEY).send({ name: 'Ada', email: 'ada@example.com' }).expect(201);
    await waitUntilSettled(t);
    const { crmId } = await t.prisma.contact.findFirstOrThrow();
    await request(t.app).patch('/contact').set('x-api-key', KEY).send({ contact_id: 1, fields: { name: 'Ada King' } }).expect(200);
    await waitUntilSettled(t);

    const text = await scrape();
    expect(sample(text, 'mirror_runs_total', { outcome: 'paused' })).toBe(1);
    expect(sample(text, 'mirror_runs_total', { outcome: 'synced' })).toBe(2);
    expect(sample(text, 'pipedrive_rate_limited_total')).toBe(1);
    expect(sample(text, 'pipedrive_request_duration_seconds_count', { method: 'POST', endpoint: '/api/v2/persons', outcome: 'ok' })).toBe(1);
    expect(sample(text, 'pipedrive_request_duration_seconds_count', { method: 'PATCH', endpoint: '/api/v2/persons/:id', outcome: 'ok' })).toBe(1);
    expect(text).not.toContain(`/api/v2/persons/${crmId}"`);
  });

  it('counts a run that gives up as failed', async () => {
    fake.fault({ kind: 'status', status: 422, match: { method: 'POST', path: /^\/api\/v2\/persons$/ } });
    await request(t.app).post('/contact').set('x-api-key', KEY).send({ name: 'Ada' }).expect(201);
    await waitUntilSettled(t);
    const text = await scrape();
    expect(sample(text, 'mirror_runs_total', { outcome: 'failed' })).toBe(1);
    expect(sample(text, 'mirror_queue', { state: 'failed' })).toBe(1);
  });
});
