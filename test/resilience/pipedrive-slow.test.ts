import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import { FakePipedrive, type Fault } from '../../testkit/fake-pipedrive';
import { createTestApp, type TestApp } from '../support/test-app';
import { fastMirrorEnv } from '../mirror/mirror-support';

/**
 * Pipedrive slow, hanging or down never makes a write wait longer than CRM_SYNC_WAIT_MS: the
 * write is committed with its mirror job, answered 201 `pending`, and mirrored once Pipedrive
 * answers again.
 */
const SYNC_WAIT_MS = 300;
/**
 * Over CRM_SYNC_WAIT_MS: one insert statement and the last look at the row, on two cores that the
 * worker's retries (and, on a developer's machine, other work) share: 529 ms was seen with 200,
 * 667 ms with 350 in a CI run. Still below what Pipedrive's faults here would cost (1.5 s, 5 s, a hang).
 */
const SLACK_MS = 700;
/**
 * PATCH and the readiness probe do not wait for the mirror at all: they answer before a wait for it
 * could even have ended. (Their own time varies with the machine's load: the worker retries
 * alongside, at its fastest settings, on the same two cores.)
 */
const PATCH_BUDGET_MS = SYNC_WAIT_MS;
/** How long the worker waits for each Pipedrive request. */
const PIPEDRIVE_TIMEOUT_MS = 2_000;

const tag = `crm-${randomBytes(4).toString('hex')}`;
let serial = 0;
const uniqueEmail = () => `lead${(serial += 1)}@${tag}.example.com`;

let fake: FakePipedrive;
let t: TestApp;

beforeEach(async () => {
  fake = await FakePipedrive.start();
  // No reset: the rows of other files stay untouched; this file only looks at its own.
  t = createTestApp({ env: fastMirrorEnv(fake, { CRM_SYNC_WAIT_MS: String(SYNC_WAIT_MS), PIPEDRIVE_TIMEOUT_MS: String(PIPEDRIVE_TIMEOUT_MS) }) });
  await t.startWorker();
  // The app's first write pays for its first connection and query plans, whatever Pipedrive does:
  // made here, unmeasured, with Pipedrive well.
  await request(t.app).post('/contact').send({ name: 'Warm-up', email: uniqueEmail() }).expect(201);
});
afterEach(async () => {
  // Closing the fake first ends hung requests, so that the worker stops at once.
  await fake.close();
  await t.close();
});


async function timed(send: () => request.Test): Promise<{ res: request.Response; ms: number }> {
  const started = performance.now();
  const res = await send().timeout(10_000);
  return { res, ms: Math.round(performance.now() - started) };
}

const timings: Record<string, Record<string, number[]>> = {};
afterAll(() => {
  if (process.env.RESILIENCE_REPORT) console.info(JSON.stringify(timings));
});

const cases: [string, Fault][] = [
  ['hangs', { kind: 'hang' }],
  // Slower than PIPEDRIVE_TIMEOUT_MS: every request times out.
  ['is slow (5 s per request)', { kind: 'latency', ms: 5_000 }],
  // Slow, but within PIPEDRIVE_TIMEOUT_MS: every request succeeds, late.
  ['is slow but answering (1.5 s per request)', { kind: 'latency', ms: 1_500 }],
  ['is down (503)', { kind: 'status', status: 503 }],
];

/** How soon after Pipedrive answers again everything written meanwhile must be mirrored. */
const CATCH_UP_MS = 10_000;

interface Written {
  contactIds: number[];
  noteIds: number[];
}

/** Creates, notes and patches 4 contacts, measuring each answer against its bound. */
async function writeWhileFaulty(label: string): Promise<Written> {
  const record = (what: string, ms: number) => ((timings[label] ??= {})[what] ??= []).push(ms);
  const written: Written = { contactIds: [], noteIds: [] };
  for (let i = 0; i < 4; i += 1) {
    const email = uniqueEmail();
    const created = await timed(() => request(t.app).post('/contact').send({ name: `Lead ${i}`, email }));
    record('POST /contact', created.ms);
    expect(created.res.status).toBe(201);
    expect(created.res.body).toMatchObject({ crm_id: null, sync_status: 'pending', contact: { email } });
    // It waited for the mirror, but no longer than CRM_SYNC_WAIT_MS.
    expect(created.ms).toBeGreaterThanOrEqual(SYNC_WAIT_MS - 50);
    expect(created.ms).toBeLessThan(SYNC_WAIT_MS + SLACK_MS);
    const contactId = created.res.body.contact_id as number;
    written.contactIds.push(contactId);

    const note = await timed(() => request(t.app).post('/contact/note').send({ contact_id: contactId, content: `Call ${i}` }));
    record('POST /contact/note', note.ms);
    expect(note.res.status).toBe(201);
    expect(note.res.body).toMatchObject({ crm_note_id: null, sync_status: 'pending' });
    expect(note.ms).toBeLessThan(SYNC_WAIT_MS + SLACK_MS);
    written.noteIds.push(note.res.body.note_id as number);

    const patched = await timed(() => request(t.app).patch('/contact').send({ contact_id: contactId, fields: { phone: `+1 202 555 010${i}` } }));
    record('PATCH /contact', patched.ms);
    expect(patched.res.status).toBe(200);
    expect(patched.ms).toBeLessThan(PATCH_BUDGET_MS);
  }
  // The readiness probe does not call Pipedrive either.
  const health = await timed(() => request(t.app).get('/contact/health'));
  record('GET /contact/health', health.ms);
  expect(health.res.status).toBe(200);
  expect(health.ms).toBeLessThan(PATCH_BUDGET_MS);
  return written;
}

describe.each(cases)('while Pipedrive %s', (label, fault) => {
  it(`POST /contact and POST /contact/note answer 201 within CRM_SYNC_WAIT_MS (${SYNC_WAIT_MS} ms), PATCH at once, and all is stored`, async () => {
    fake.fault(fault);
    const { contactIds, noteIds } = await writeWhileFaulty(label);

    const contacts = await t.prisma.contact.findMany({ where: { id: { in: contactIds } }, orderBy: { id: 'asc' } });
    expect(contacts.map((c) => [c.email, c.phone, c.syncStatus])).toEqual(
      contacts.map((c, i) => [expect.stringContaining(`@${tag}.example.com`), `+1 202 555 010${i}`, 'pending']),
    );
    expect(await t.prisma.note.count({ where: { id: { in: noteIds }, syncStatus: 'pending' } })).toBe(4);
  }, 30_000);

  it(`what was written meanwhile is mirrored within ${CATCH_UP_MS / 1000} s once Pipedrive answers again`, async () => {
    fake.fault(fault);
    const { contactIds, noteIds } = await writeWhileFaulty(label);
    fake.clearFaults();
    const backAt = performance.now();
    const synced = async () => ({
      contacts: await t.prisma.contact.count({ where: { id: { in: contactIds }, syncStatus: 'synced' } }),
      notes: await t.prisma.note.count({ where: { id: { in: noteIds }, syncStatus: 'synced' } }),
    });
    let state = await synced();
    while (state.contacts + state.notes < 8 && performance.now() - backAt < CATCH_UP_MS) {
      await sleep(100);
      state = await synced();
    }
    ((timings[label] ??= {})['mirrored after Pipedrive is back'] ??= []).push(Math.round(performance.now() - backAt));
    // Their contacts still queued, and when they will run: nothing should be left once the last run
    // has released its contact (a moment after its last row is marked synced).
    const queued = () => t.prisma.$queryRaw<{ id: number; run_in_s: number }[]>`
      SELECT id, round(extract(epoch FROM mirror_due_at - now()))::int AS run_in_s FROM contacts
       WHERE id = ANY(${contactIds}) AND mirror_due_at IS NOT NULL`;
    let late = await queued();
    const releasedBy = performance.now() + 2_000;
    while (late.length > 0 && performance.now() < releasedBy) {
      await sleep(50);
      late = await queued();
    }
    expect({ synced: state, queued: late }).toEqual({ synced: { contacts: 4, notes: 4 }, queued: [] });
    for (const contact of await t.prisma.contact.findMany({ where: { id: { in: contactIds } } })) {
      expect(fake.persons.get(contact.crmId!)).toMatchObject({ phones: [expect.objectContaining({ value: contact.phoneE164 })] });
    }
  }, 40_000);
});
