import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import { loadConfig } from '../../src/config/config';
import { TcpProxy, type ProxyMode } from '../support/tcp-proxy';
import { createTestApp, type TestApp } from '../support/test-app';
import { waitFor } from '../support/wait-for';

/**
 * The app reaches PostgreSQL through a proxy the tests cut: `refuse` is PostgreSQL crashed or
 * restarting (connections cut, the port closed), `blackhole` a network partition (nothing
 * answers, nothing is closed: only the app's own timeouts can notice).
 */
/** The service's default timeouts, which are to meet the budget. */
const { connectTimeoutMs: CONNECT_TIMEOUT_MS, queryTimeoutMs: QUERY_TIMEOUT_MS } = loadConfig({}).database;
/** The slowest a request may answer while the database is down: a second. */
const BUDGET_MS = 1_000;
/** Small, so that connections lost for good would soon leave none (see the recovery test). */
const POOL_SIZE = 4;

let proxy: TcpProxy;
/** The app under test, through the proxy. */
let t: TestApp;
/** Straight to the database, for set-up and checks. */
let direct: TestApp;

beforeAll(async () => {
  const proxied = await TcpProxy.forDatabase(process.env.DATABASE_URL!);
  proxy = proxied.proxy;
  t = createTestApp({
    databaseUrl: proxied.url,
    env: {
      DATABASE_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
      DATABASE_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
      DATABASE_POOL_SIZE: String(POOL_SIZE),
    },
  });
  direct = createTestApp();
});
afterEach(() => proxy.setMode('up'));
afterAll(async () => {
  await t.close();
  await direct.close();
  await proxy.close();
});

/** Rows of this file carry it in their email, so that nothing else's rows are counted or touched. */
const tag = `down-${randomBytes(4).toString('hex')}`;
let serial = 0;
const uniqueEmail = () => `lead${(serial += 1)}@${tag}.example.com`;

const seedContact = async (): Promise<number> =>
  (await request(t.app).post('/contact').send({ name: 'Seeded', email: uniqueEmail() }).expect(201)).body.contact_id;

interface Route {
  name: string;
  send: () => request.Test;
  /** The status it answers while the database is up. */
  okStatus: number;
}

/** Every route that needs the database, aimed at `id` (deleted last when the database is up); POST creates `newName`. */
const routes = (id: number, newName = 'Grace'): Route[] => [
  { name: 'POST /contact', send: () => request(t.app).post('/contact').send({ name: newName, email: uniqueEmail() }), okStatus: 201 },
  { name: 'GET /contact/:id', send: () => request(t.app).get(`/contact/${id}`), okStatus: 200 },
  { name: 'GET /contacts', send: () => request(t.app).get('/contacts?search=seeded&limit=5'), okStatus: 200 },
  { name: 'PATCH /contact', send: () => request(t.app).patch('/contact').send({ contact_id: id, fields: { name: 'Changed' } }), okStatus: 200 },
  { name: 'POST /contact/note', send: () => request(t.app).post('/contact/note').send({ contact_id: id, content: 'Call back' }), okStatus: 201 },
  { name: 'GET /contact/:id/events', send: () => request(t.app).get(`/contact/${id}/events`), okStatus: 200 },
  { name: 'DELETE /contact/:id', send: () => request(t.app).delete(`/contact/${id}`), okStatus: 204 },
  { name: 'GET /contact/health', send: () => request(t.app).get('/contact/health'), okStatus: 200 },
];

/** Sends, with a client-side limit far above the budget so that a hang fails the test, not jest. */
async function timed(send: () => request.Test): Promise<{ res: request.Response; ms: number }> {
  const started = performance.now();
  const res = await send().timeout(10_000);
  return { res, ms: Math.round(performance.now() - started) };
}

function expectUnavailable(route: Route, res: request.Response): void {
  if (route.name === 'GET /contact/health') {
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ status: 'unavailable', database: 'down' });
  } else {
    expect({ route: route.name, status: res.status, code: res.body?.error?.code }).toEqual({
      route: route.name,
      status: 503,
      code: 'SERVICE_UNAVAILABLE',
    });
  }
}

function expectWithinBudget(what: string, ms: number): void {
  if (ms >= BUDGET_MS) throw new Error(`${what} took ${ms} ms; the budget is ${BUDGET_MS} ms`);
}

/** Leaves the pool holding POOL_SIZE open connections, as a busy service would. */
async function fillPool(): Promise<void> {
  await Promise.all(Array.from({ length: POOL_SIZE * 2 }, () => request(t.app).get('/contacts?limit=1').expect(200)));
  expect(proxy.openConnections).toBeGreaterThanOrEqual(POOL_SIZE);
}

const timings: Record<string, Record<string, number[]>> = {};
const record = (mode: string, what: string, ms: number) => ((timings[mode] ??= {})[what] ??= []).push(ms);
afterAll(() => {
  if (process.env.RESILIENCE_REPORT) console.info(JSON.stringify(timings, null, 1));
});

describe.each<ProxyMode>(['refuse', 'blackhole'])('PostgreSQL unreachable (%s)', (mode) => {
  it('every route that needs it answers 503 within a second, pooled connections included, and leaves no partial write', async () => {
    const id = await seedContact();
    const before = await direct.prisma.contact.findUniqueOrThrow({ where: { id } });
    await fillPool();
    await proxy.setMode(mode);

    // One at a time: the first ones meet the pooled connections, the later ones new connections.
    for (const route of routes(id, `Refused ${mode}`)) {
      const { res, ms } = await timed(route.send);
      record(mode, route.name, ms);
      expectUnavailable(route, res);
      expectWithinBudget(route.name, ms);
    }
    // All at once: twice as many as the pool holds.
    const all = [...routes(id, `Refused ${mode}`), ...routes(id, `Refused ${mode}`)];
    const results = await Promise.all(all.map((route) => timed(route.send)));
    results.forEach(({ res, ms }, i) => {
      record(mode, 'concurrently', ms);
      expectUnavailable(all[i]!, res);
      expectWithinBudget(`${all[i]!.name} (concurrently)`, ms);
    });

    await proxy.setMode('up');
    // What the partition held reaches PostgreSQL now, as TCP delivers it once a network heals.
    await sleep(300);
    expect(await direct.prisma.contact.findUnique({ where: { id } })).toEqual(before);
    const notes = await direct.prisma.note.count({ where: { contactId: id } });
    const events = await direct.prisma.contactEvent.findMany({ where: { contactId: id }, select: { type: true } });
    expect(events.filter((event) => event.type !== 'note_added')).toEqual([{ type: 'created' }]);
    expect(events.length - 1).toBe(notes);
    const created = await direct.prisma.contact.findMany({ where: { name: `Refused ${mode}` }, include: { contactEvents: true } });
    if (mode === 'refuse') {
      // A crashed server never got them.
      expect({ notes, created }).toEqual({ notes: 0, created: [] });
    }
    // In a partition, a creation sent on a pooled connection before the client gave up can still
    // arrive when the network heals, and commit: its 503 meant "outcome unknown", as a time-out
    // always does. It is whole (with its event), and sending it again answers 409 with its id.
    for (const contact of created) {
      expect(contact.contactEvents.map((event) => event.type)).toEqual(['created']);
      const again = await request(t.app).post('/contact').send({ name: contact.name, email: contact.email }).expect(409);
      expect(again.body.error.contact_id).toBe(contact.id);
    }
    record(mode, 'creations answered 503 and stored once the partition healed', created.length);
  }, 60_000);

  it('writes in flight when it goes away answer within a second, and the service recovers by itself when it is back', async () => {
    const load = startLoad(8);
    await waitFor('some contacts to be created', () => load.created().length >= 20, 10_000);
    await proxy.setMode(mode);
    await sleep(1_500);
    await proxy.setMode('up');
    const upAt = performance.now();
    const firstSuccess = await waitFor(
      'a contact to be created again',
      () => load.results.find((result) => result.status === 201 && result.startedAt >= upAt),
      5_000,
      10,
    );
    record(mode, 'recovered after', Math.round(firstSuccess!.startedAt + firstSuccess!.ms - upAt));
    await sleep(300);
    await load.stop();

    const unavailable = load.results.filter((result) => result.status === 503);
    expect(unavailable.length).toBeGreaterThan(0);
    for (const result of load.results) {
      expect([201, 503]).toContain(result.status);
      expectWithinBudget(`POST /contact answered ${result.status}`, result.ms);
    }
    unavailable.forEach((result) => record(mode, 'in-flight and during the outage (503s)', result.ms));

    // Every 201 is stored. A write whose COMMIT reached PostgreSQL just as the connection was cut
    // may be stored though answered 503: at most one per request in flight.
    const created = load.created();
    const stored = await direct.prisma.contact.findMany({ where: { email: { in: load.results.map((result) => result.email) } } });
    const storedEmails = new Set(stored.map((contact) => contact.email));
    expect(created.filter((result) => !storedEmails.has(result.email))).toEqual([]);
    expect(stored.length - created.length).toBeLessThanOrEqual(8);
    for (const result of created) expect(stored.find((contact) => contact.id === result.contactId)?.email).toBe(result.email);

    // Nothing was lost from the pool: more requests at once than it holds, then every route, succeed.
    await Promise.all(Array.from({ length: POOL_SIZE * 3 }, () => request(t.app).get('/contacts?limit=1').timeout(5_000).expect(200)));
    for (const route of routes(await seedContact())) {
      const { res } = await timed(route.send);
      expect({ route: route.name, status: res.status }).toEqual({ route: route.name, status: route.okStatus });
    }
  }, 60_000);
});

describe('PostgreSQL answering too slowly', () => {
  it('a statement waiting past the query timeout answers 503, and leaves the pool usable', async () => {
    const id = await seedContact();
    // Another session holds the row: the PATCH waits for its lock.
    await direct.prisma.$transaction(
      async (tx) => {
        await tx.$executeRaw`SELECT id FROM contacts WHERE id = ${id} FOR UPDATE`;
        const { res, ms } = await timed(() => request(t.app).patch('/contact').send({ contact_id: id, fields: { name: 'Late' } }));
        record('slow', 'PATCH behind a row lock', ms);
        expect(res.status).toBe(503);
        expect(res.body.error.code).toBe('SERVICE_UNAVAILABLE');
        expect(ms).toBeGreaterThanOrEqual(QUERY_TIMEOUT_MS - 50);
        expect(ms).toBeLessThan(BUDGET_MS);
      },
      { timeout: 10_000 },
    );
    expect((await direct.prisma.contact.findUniqueOrThrow({ where: { id } })).name).toBe('Seeded');
    await request(t.app).patch('/contact').send({ contact_id: id, fields: { name: 'On time' } }).expect(200);
  });
});

interface LoadResult {
  email: string;
  status: number;
  ms: number;
  startedAt: number;
  contactId?: number;
}

/** `concurrency` loops creating contacts back to back until stopped. */
function startLoad(concurrency: number) {
  const results: LoadResult[] = [];
  let stopping = false;
  const loops = Array.from({ length: concurrency }, async () => {
    while (!stopping) {
      const email = uniqueEmail();
      const startedAt = performance.now();
      const res = await request(t.app).post('/contact').send({ name: 'Load', email }).timeout(10_000);
      results.push({ email, status: res.status, ms: Math.round(performance.now() - startedAt), startedAt, contactId: res.body?.contact_id });
    }
  });
  return {
    results,
    created: () => results.filter((result) => result.status === 201),
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
    },
  };
}
