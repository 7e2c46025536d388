import request from 'supertest';
import { budgetDayStart, nextBudgetReset } from '../../src/mirror/token-budget';
import { FakePipedrive } from '../../testkit/fake-pipedrive';
import { createTestApp, type TestApp } from '../support/test-app';
import { waitFor } from '../support/wait-for';
import { fastMirrorEnv, waitUntilSettled } from './mirror-support';

/** Pipedrive's daily token budget, shared by every app and user of the company. */
const fakes: FakePipedrive[] = [];
let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
  await Promise.all(fakes.splice(0).map((fake) => fake.close()));
});

async function start(fakeOptions: Parameters<typeof FakePipedrive.start>[0], env: Record<string, string> = {}): Promise<{ fake: FakePipedrive; app: TestApp }> {
  const fake = await FakePipedrive.start(fakeOptions);
  fakes.push(fake);
  t = createTestApp({ env: fastMirrorEnv(fake, { CRM_SYNC_WAIT_MS: '0', SYNC_CONCURRENCY: '1', ...env }) });
  await t.reset();
  return { fake, app: t };
}

const status = async (app: TestApp) => (await request(app.app).get('/sync/status').expect(200)).body;

/** Three contacts on a budget that covers two: the third is refused, and the whole mirror pauses until the reset. */
async function expectDailyPauseAfterTwoOfThree(app: TestApp): Promise<void> {
  for (const name of ['Ada', 'Grace', 'Hedy']) {
    await request(app.app).post('/contact').send({ name, email: `${name.toLowerCase()}@example.com` }).expect(201);
  }
  await app.startWorker();
  await waitFor('the daily pause', async () => (await status(app)).paused_until !== null, 10_000);

  const paused = await status(app);
  expect(paused.pause_reason).toMatch(/daily token budget is spent/);
  expect(paused.paused_until).toBe(paused.pipedrive_tokens.resets_at);
  expect(paused.contacts).toMatchObject({ synced: 2, pending: 1, failed: 0 });
}

describe('the budget day', () => {
  it('begins at the reset hour (UTC), the day before when that hour is yet to come', () => {
    const at = (iso: string) => new Date(iso);
    expect(budgetDayStart(at('2026-11-29T15:00:00Z'), 0)).toEqual(at('2026-11-29T00:00:00Z'));
    expect(budgetDayStart(at('2026-11-29T05:00:00Z'), 8)).toEqual(at('2026-11-28T08:00:00Z'));
    expect(nextBudgetReset(at('2026-11-29T08:00:00Z'), 8)).toEqual(at('2026-11-30T08:00:00Z'));
  });
});

describe('spending the daily budget', () => {
  it('counts each call’s tokens and what Pipedrive reports left, in /sync/status and /metrics', async () => {
    const { app } = await start({ dailyTokens: 1_000 });
    await request(app.app).post('/contact').send({ name: 'Ada', email: 'ada@example.com' }).expect(201);
    await app.startWorker();
    await waitUntilSettled(app);
    // The person index's first page (10) and one creation (5): no search.
    await waitFor('the tokens to be recorded', async () => (await status(app)).pipedrive_tokens.spent_today === 15, 5_000);
    expect((await status(app)).pipedrive_tokens).toMatchObject({ spent_today: 15, left: 985, limit: 1_000, reserve: 0 });
    const metrics = (await request(app.app).get('/metrics').expect(200)).text;
    expect(metrics).toMatch(/^pipedrive_daily_tokens\{state="spent"\} 15$/m);
    expect(metrics).toMatch(/^pipedrive_daily_tokens\{state="left"\} 985$/m);
  });

  it('once spent, pauses the whole mirror until the budget comes back, failing nothing and spending no attempt', async () => {
    // The index's page (10) and two creations (5 each) spend it; the third creation is refused.
    // A "day" long enough for the three runs on a busy machine.
    const dayStartedBy = Date.now();
    const { fake, app } = await start({ dailyTokens: 20, dayMs: 6_000 }, { SYNC_MAX_ATTEMPTS: '1' });
    await expectDailyPauseAfterTwoOfThree(app);
    const [waiting] = await app.prisma.$queryRaw<{ mirror_attempts: number }[]>`SELECT mirror_attempts FROM contacts WHERE sync_status = 'pending'`;
    expect(waiting).toEqual({ mirror_attempts: 0 });
    const refused = fake.requests.length;

    // Nothing is sent while paused; once the budget is back (the fake's short day), the rest goes.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, dayStartedBy + 6_100 - Date.now())));
    expect(fake.requests).toHaveLength(refused);
    await app.services.mirrorRepository.resume();
    await waitUntilSettled(app);
    expect((await status(app)).contacts).toMatchObject({ synced: 3, pending: 0, failed: 0 });
  });
});

describe('a 429 without the daily-token headers', () => {
  it('is the spent day when our own count says so: the mirror pauses until the reset, failing nothing', async () => {
    // The budget was last reported at 20 tokens left; no answer since has carried the headers.
    const { fake, app } = await start({ dailyTokens: 20, tokenHeaders: 'never', dayMs: 60_000 }, { SYNC_MAX_ATTEMPTS: '1' });
    await app.prisma.$executeRaw`
      INSERT INTO pipedrive_budget (id, day_start, tokens_spent, token_limit, tokens_left) VALUES (1, now(), 0, 20, 20)`;
    await expectDailyPauseAfterTwoOfThree(app);
    expect([...fake.rejectionsPerWindow().values()].reduce((sum, n) => sum + n, 0)).toBe(1);
  });

  it('is the burst limit while our count leaves tokens: a short pause, then the contact goes', async () => {
    const { fake, app } = await start({ tokenHeaders: 'never' });
    await app.prisma.$executeRaw`
      INSERT INTO pipedrive_budget (id, day_start, tokens_spent, token_limit, tokens_left) VALUES (1, now(), 0, 30000, 29000)`;
    fake.fault({ kind: 'status', status: 429, times: 1, match: { method: 'POST', path: /^\/api\/v2\/persons$/ } });
    await request(app.app).post('/contact').send({ name: 'Ada', email: 'ada@example.com' }).expect(201);
    await app.startWorker();
    // Settled within the burst pause: a pause until the day's reset would not end here.
    await waitUntilSettled(app);
    expect((await status(app)).contacts).toMatchObject({ synced: 1, failed: 0 });
    expect(fake.requests.filter((r) => r.method === 'POST' && r.path === '/api/v2/persons')).toHaveLength(2);
  });
});

describe('the reserve', () => {
  it('holds bulk work back while the tokens left are at or below it; live changes still go', async () => {
    // Answers without the token headers: the count goes down from the seeded figure by our own calls.
    const { fake, app } = await start({ tokenHeaders: 'never' }, { PIPEDRIVE_DAILY_TOKEN_RESERVE: '500' });
    const bulk = (await request(app.app).post('/contact').send({ name: 'Bulk', email: 'bulk@example.com' }).expect(201)).body.contact_id;
    await app.services.mirrorRepository.requeue(bulk, 'bulk');
    await app.prisma.$executeRaw`
      INSERT INTO pipedrive_budget (id, day_start, tokens_spent, token_limit, tokens_left) VALUES (1, now(), 0, 30000, 400)`;
    await app.startWorker();

    const live = (await request(app.app).post('/contact').send({ name: 'Live', email: 'live@example.com' }).expect(201)).body.contact_id;
    await waitFor('the live contact', async () => (await app.prisma.contact.findUniqueOrThrow({ where: { id: live } })).syncStatus === 'synced', 5_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await app.prisma.contact.findUniqueOrThrow({ where: { id: bulk } })).toMatchObject({ syncStatus: 'pending' });
    expect(JSON.stringify(fake.requests)).not.toContain('bulk@example.com');
    expect((await status(app)).pipedrive_tokens).toMatchObject({ left: 385, spent_today: 15 });
    expect((await status(app)).queue).toEqual({ live: 0, bulk: 1 });

    // A new day (a reported count above the reserve): bulk work goes.
    await app.prisma.$executeRaw`UPDATE pipedrive_budget SET tokens_left = 29000`;
    await waitUntilSettled(app);
    expect(await app.prisma.contact.findUniqueOrThrow({ where: { id: bulk } })).toMatchObject({ syncStatus: 'synced' });
  });
});
