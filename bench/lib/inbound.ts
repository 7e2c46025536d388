import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Request } from 'autocannon';
import { PhoneNumbers } from '../../src/contacts/phone-numbers';
import { FakePipedrive, type FakePerson } from '../../testkit/fake-pipedrive';
import { measure, type LoadResult, type LoadSettings, type Operation } from './load';
import { PostgresCpu } from './postgres';
import { cpuSeconds, freePort, MemorySampler, stopChild, type Child } from './processes';
import { launchService, serviceSettings, waitForService, type ServiceMode } from './service';

export interface InboundSettings {
  /** Contacts seeded, each linked to a person of the fake and mirrored (crm_id, crm_pushed). */
  contacts: number;
  /** Sales-team edits made in the fake for the end-to-end part, one person each (at most `contacts`). */
  edits: number;
  load: LoadSettings;
  mode: ServiceMode;
  /** Give up waiting for the recorded deliveries to be processed (and for the edits) after this long. */
  timeoutMs: number;
}

/** Percentiles in ms, nearest rank; undefined when there is nothing to rank. */
export interface Spread {
  p50?: number;
  p99?: number;
  max?: number;
}

export interface InboundResult {
  contacts: number;
  /** The person index's backfill at start-up (through the fake), before anything is measured. */
  indexFilledSeconds: number;
  /** GET /contact/:id on the same service process, before the receiver's run and after its backlog was processed. */
  baseline: { before: LoadResult; after: LoadResult };
  receiver: LoadResult;
  processing: {
    /** Deliveries the load generator built (warm-up included), and those recorded. */
    sent: number;
    recorded: number;
    /** From the end of the receiver's load to no delivery waiting; undefined when it timed out. */
    drainedAfterLoadSeconds?: number;
    waitingLeft: number;
    /** From the first delivery received to the last processed. */
    spanSeconds: number;
    /** Processed per second: over the whole span, while the receiver was loaded, and after (the backlog alone). */
    perSecond: { overall: number; duringLoad: number; afterLoad: number };
    processedDuringLoad: number;
    processedAfterLoad: number;
    /** processed_at - received_at, ms. */
    lagMs: Spread;
    outcomes: Record<string, number>;
    /** Deliveries whose processing began more than once (a failure and a retry). */
    retried: number;
    /** While the backlog was processed alone: CPU of the service and of PostgreSQL's backends, per delivery and in % of one core. */
    afterLoadCpu: { nodeMsPerDelivery?: number; postgresMsPerDelivery?: number; nodePercent?: number; postgresPercent?: number };
  };
  endToEnd: {
    edits: number;
    /** From the first edit to every contact showing its new name; undefined when it timed out. */
    allShownSeconds?: number;
    shown: number;
    /** From each edit to its contact's `updated` event (source pipedrive), ms. */
    perContactMs: Spread;
    /** From each edit to its delivery being recorded, ms. */
    receivedMs: Spread;
    /** The fake's delivery attempts by answer (200, 'timeout', 'error', …), and retries among them. */
    attempts: Record<string, number>;
    retries: number;
    settled: boolean;
    recorded: number;
    outcomes: Record<string, number>;
    /** `updated` events with source pipedrive written for the edits: in all, contacts with more than one, edited contacts with none, other contacts with one. */
    events: number;
    appliedTwice: number;
    lost: number;
    unexpected: number;
    /** Calls the service made to the fake while the edits came in (an echo would be one), and contacts queued for the mirror after. */
    pipedriveCalls: number;
    queuedForMirror: number;
  };
  peakRssMb: number;
  passedThrough: Record<string, string>;
}

/** Nearest-rank percentiles of `values` (ms). */
function spread(values: number[]): Spread {
  if (values.length === 0) return {};
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
  return { p50: at(0.5), p99: at(0.99), max: sorted.at(-1) };
}

/** v2 writes update_time to the second. */
const toSecond = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

type PersonTemplate = Omit<FakePerson, 'name' | 'update_time'>;

/**
 * A webhooks v2 `change` delivery for a person, shaped as the fake (and Pipedrive) sends it: the
 * person's new state in `data`, the changed field's former value in `previous`.
 */
function changeDelivery(id: string, person: PersonTemplate, name: string, previousName: string, atMs: number): string {
  return JSON.stringify({
    meta: {
      action: 'change',
      entity: 'person',
      entity_id: String(person.id),
      id,
      version: '2.0',
      company_id: 1,
      user_id: 1,
      timestamp: new Date(atMs).toISOString(),
      correlation_id: id,
      change_source: 'app',
      attempt: 1,
      webhook_id: '1',
      webhook_owner_id: 1,
      is_bulk_edit: false,
      host: 'bench.pipedrive.com',
      permitted_user_ids: [1],
    },
    data: { ...person, name, update_time: toSecond(atMs), owner_id: 1, visible_to: 3 },
    previous: { name: previousName },
  });
}

async function untilTrue(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(intervalMs);
  }
  return check();
}

const counts = (rows: { key: string | null; n: number }[]) => Object.fromEntries(rows.map((row) => [row.key ?? 'null', row.n]));

/**
 * The two-way sync's inbound side, on one service process (`node dist/server.js`, or src/ with --tsx) with webhook
 * credentials and PIPEDRIVE_API_KEY pointing at the fake Pipedrive:
 *
 * 1. `contacts` contacts are seeded by SQL as the mirror leaves them (linked to a person of the fake,
 *    synced, `crm_pushed` set); the service fills its person index from the fake at start.
 * 2. GET /contact/:id, then POST /webhooks/pipedrive with a distinct delivery per request (a name
 *    change of a random seeded person, each newer than the last), the same load settings: receiver
 *    throughput and latency against a baseline from the same moment.
 * 3. The deliveries recorded are processed in the background: time until none waits, deliveries per
 *    second, processed_at - received_at. Then GET /contact/:id again.
 * 4. `edits` names changed with fake.editPerson at once, delivered by the fake through a webhooks
 *    subscription: time until every contact shows its new name; each applied exactly once.
 */
export async function runInbound(databaseUrl: string, adminUrl: string, settings: InboundSettings, log: (line: string) => void): Promise<InboundResult> {
  if (!Number.isInteger(settings.contacts) || settings.contacts < 1) throw new Error('--inbound-contacts takes a whole number, at least 1');
  if (!Number.isInteger(settings.edits) || settings.edits < 0 || settings.edits > settings.contacts) throw new Error('--inbound-edits takes a whole number from 0 to --inbound-contacts');
  const fake = await FakePipedrive.start();
  const db = new pg.Client({ connectionString: databaseUrl });
  // Clean-up on Ctrl-C drops the database WITH (FORCE), which ends this connection: not a crash (queries still fail loudly).
  db.on('error', () => undefined);
  await db.connect();
  const children: Child[] = [];
  try {
    // 1. Persons in the fake and their contacts, linked and mirrored, as the mirror would have left them.
    const phones = new PhoneNumbers();
    const persons: FakePerson[] = [];
    // Created and last mirrored three days ago: the deliveries below (from two days ago on) and the
    // edits (now) are newer than what each contact has (crm_updated_at), so each is a change to take in.
    const mirroredAt = toSecond(Date.now() - 3 * 86_400_000);
    for (let i = 1; i <= settings.contacts; i += 1) {
      const person = fake.seedPerson({ name: `Inbound Person ${i}`, email: `inbound-${i}@example.com`, phone: `+44 20 7946 ${String(i % 10_000).padStart(4, '0')}` });
      person.add_time = mirroredAt;
      person.update_time = mirroredAt;
      persons.push(person);
    }
    const { rows: seeded } = await db.query<{ id: number; crm_id: number }>(
      `INSERT INTO contacts (name, email, phone, phone_e164, crm_id, sync_status, crm_synced_at, crm_pushed, crm_updated_at, mirrored_version)
       SELECT t.name, t.email, t.phone, t.e164, t.crm_id, 'synced', now(),
              jsonb_build_object('name', t.name, 'email', t.email, 'phone', COALESCE(t.e164, t.phone)), t.updated::timestamptz, 1
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[]) AS t(name, email, phone, e164, crm_id, updated)
        ORDER BY t.crm_id
       RETURNING id, crm_id`,
      [
        persons.map((person) => person.name),
        persons.map((person) => person.emails[0]!.value),
        persons.map((person) => person.phones[0]!.value),
        persons.map((person) => phones.toE164(person.phones[0]!.value)),
        persons.map((person) => person.id),
        persons.map((person) => person.update_time),
      ],
    );
    await db.query('VACUUM ANALYZE contacts');
    const contactOf = new Map(seeded.map((row) => [row.crm_id, row.id]));
    const contactIds = seeded.map((row) => row.id);

    const credentials = { user: 'bench-pipedrive', password: randomBytes(24).toString('hex') };
    const port = await freePort();
    const { child: service, passedThrough } = launchService({
      name: 'inbound service',
      mode: settings.mode,
      role: 'server',
      port,
      settings: {
        ...serviceSettings(databaseUrl),
        PIPEDRIVE_API_KEY: fake.token,
        PIPEDRIVE_BASE_URL: fake.url,
        PIPEDRIVE_WEBHOOK_USER: credentials.user,
        PIPEDRIVE_WEBHOOK_PASSWORD: credentials.password,
      },
    });
    children.push(service);
    const memory = new MemorySampler(service.pid);
    const startedAt = Date.now();
    await waitForService(service);
    // The worker fills the person index at start (GET /api/v2/persons) and takes every person in: done before measuring.
    const filled = await untilTrue(async () => (await db.query('SELECT 1 FROM pipedrive_index_state WHERE backfilled_at IS NOT NULL')).rowCount === 1, 60_000, 200);
    if (!filled) throw new Error(`the service did not fill its person index within 60 s:\n${service.output()}`);
    const indexFilledSeconds = (Date.now() - startedAt) / 1000;
    log(`  inbound: ${settings.contacts} linked contacts seeded; service ready, person index filled ${indexFilledSeconds.toFixed(1)} s after start`);
    const postgresCpu = await PostgresCpu.forDatabase(adminUrl, databaseUrl);
    const probes = { targetPid: service.pid, postgresCpu: postgresCpu && (() => postgresCpu.totalSeconds()) };

    // 2. The baseline, then the receiver, with the same load settings.
    const randomContact = () => contactIds[Math.floor(Math.random() * contactIds.length)]!;
    const getOperation: Operation = {
      label: 'GET /contact/:id',
      okStatus: 200,
      requests: () => [{ method: 'GET', path: '/contact/1', setupRequest: (request) => ({ ...request, path: `/contact/${randomContact()}` }) }],
    };
    const before = await measure(service.baseUrl, getOperation, settings.load, 'inbound-get-before', probes);
    log(`  inbound: GET /contact/:id            ${before.requestsPerSecond.toFixed(0).padStart(6)} req/s  p50 ${before.p50Ms} ms  p99 ${before.p99Ms} ms`);

    // Each delivery renames a random seeded person; its time is one second after the last one's,
    // all of them in the past (two days ago on), so each is newer than what its contact has.
    const templates = persons.map(({ name: _name, update_time: _time, ...template }) => template);
    const lastName = persons.map((person) => person.name);
    const firstEventAt = Date.now() - 2 * 86_400_000;
    let sequence = 0;
    const authorization = `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}`;
    const tag = `bench-${Date.now().toString(36)}`;
    const webhookOperation: Operation = {
      label: 'POST /webhooks/pipedrive',
      okStatus: 200,
      requests: (): Request[] => [
        {
          method: 'POST',
          path: '/webhooks/pipedrive',
          headers: { 'content-type': 'application/json', authorization },
          setupRequest: (request) => {
            sequence += 1;
            const index = Math.floor(Math.random() * templates.length);
            const name = `Inbound Person ${index + 1} r${sequence}`;
            const body = changeDelivery(`${tag}-${sequence}`, templates[index]!, name, lastName[index]!, firstEventAt + sequence * 1000);
            lastName[index] = name;
            return { ...request, body };
          },
        },
      ],
    };
    const loadStart = new Date();
    const receiver = await measure(service.baseUrl, webhookOperation, settings.load, 'inbound-webhooks', probes);
    const loadEnd = new Date();
    log(`  inbound: POST /webhooks/pipedrive    ${receiver.requestsPerSecond.toFixed(0).padStart(6)} req/s  p50 ${receiver.p50Ms} ms  p99 ${receiver.p99Ms} ms${receiver.failures.non2xx + receiver.failures.errors + receiver.failures.timeouts > 0 ? `  (!) ${JSON.stringify(receiver.failures)}` : ''}`);

    // 3. The backlog: processed by the same process, in the background.
    const cpuAtLoadEnd = { node: cpuSeconds(service.pid), postgres: await postgresCpu?.totalSeconds() };
    const waiting = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM pipedrive_webhook_deliveries WHERE processed_at IS NULL')).rows[0]?.n ?? 0;
    let lastReport = Date.now();
    let waitingLeft = await waiting();
    const drained = await untilTrue(async () => {
      waitingLeft = await waiting();
      if (Date.now() - lastReport >= 10_000) {
        lastReport = Date.now();
        log(`  inbound: ${waitingLeft} deliveries waiting ${((Date.now() - loadEnd.getTime()) / 1000).toFixed(0)} s after the load`);
      }
      return waitingLeft === 0;
    }, settings.timeoutMs);
    const drainedAt = Date.now();
    const cpuAtDrained = { node: cpuSeconds(service.pid), postgres: await postgresCpu?.totalSeconds() };

    const ours = `${tag}-%`;
    const { rows: [stats] } = await db.query<{
      recorded: number; first_received: Date | null; last_processed: Date | null;
      during: number; after: number; retried: number; lag: (number | null)[] | null; lag_max: number | null;
    }>(
      `SELECT count(*)::int AS recorded, min(received_at) AS first_received, max(processed_at) AS last_processed,
              count(*) FILTER (WHERE processed_at <= $2)::int AS during,
              count(*) FILTER (WHERE processed_at > $2)::int AS after,
              count(*) FILTER (WHERE attempts > 1)::int AS retried,
              percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at) * 1000) AS lag,
              (max(extract(epoch FROM processed_at - received_at)) * 1000)::float8 AS lag_max
         FROM pipedrive_webhook_deliveries WHERE id LIKE $1`,
      [ours, loadEnd],
    );
    const { rows: outcomeRows } = await db.query<{ key: string | null; n: number }>(
      'SELECT outcome AS key, count(*)::int AS n FROM pipedrive_webhook_deliveries WHERE id LIKE $1 GROUP BY 1 ORDER BY 2 DESC',
      [ours],
    );
    const recorded = stats?.recorded ?? 0;
    const firstReceived = stats?.first_received?.getTime() ?? loadStart.getTime();
    const lastProcessed = stats?.last_processed?.getTime() ?? drainedAt;
    const spanSeconds = (lastProcessed - firstReceived) / 1000;
    const afterSeconds = (lastProcessed - loadEnd.getTime()) / 1000;
    const processedDuringLoad = stats?.during ?? 0;
    const processedAfterLoad = stats?.after ?? 0;
    const drainSeconds = (drainedAt - loadEnd.getTime()) / 1000;
    const delta = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : b - a);
    const nodeSeconds = delta(cpuAtLoadEnd.node, cpuAtDrained.node);
    const postgresSeconds = delta(cpuAtLoadEnd.postgres, cpuAtDrained.postgres);
    const perDelivery = (seconds: number | undefined) => (seconds === undefined || processedAfterLoad === 0 ? undefined : (seconds * 1000) / processedAfterLoad);
    const percent = (seconds: number | undefined) => (seconds === undefined || drainSeconds <= 0 ? undefined : (100 * seconds) / drainSeconds);
    const processing: InboundResult['processing'] = {
      sent: sequence,
      recorded,
      drainedAfterLoadSeconds: drained ? drainSeconds : undefined,
      waitingLeft,
      spanSeconds,
      perSecond: {
        overall: spanSeconds > 0 ? (recorded - waitingLeft) / spanSeconds : 0,
        duringLoad: processedDuringLoad / ((loadEnd.getTime() - firstReceived) / 1000),
        afterLoad: afterSeconds > 0 ? processedAfterLoad / afterSeconds : 0,
      },
      processedDuringLoad,
      processedAfterLoad,
      lagMs: { p50: stats?.lag?.[0] ?? undefined, p99: stats?.lag?.[1] ?? undefined, max: stats?.lag_max ?? undefined },
      outcomes: counts(outcomeRows),
      retried: stats?.retried ?? 0,
      afterLoadCpu: { nodeMsPerDelivery: perDelivery(nodeSeconds), postgresMsPerDelivery: perDelivery(postgresSeconds), nodePercent: percent(nodeSeconds), postgresPercent: percent(postgresSeconds) },
    };
    log(
      `  inbound: ${recorded} deliveries recorded (${sequence} sent); ${drained ? `none waiting ${drainSeconds.toFixed(1)} s after the load` : `${waitingLeft} STILL WAITING after ${drainSeconds.toFixed(0)} s`}; ` +
        `${processing.perSecond.duringLoad.toFixed(0)}/s processed under load, ${processing.perSecond.afterLoad.toFixed(0)}/s after; lag p50 ${(processing.lagMs.p50 ?? NaN).toFixed(0)} ms, p99 ${(processing.lagMs.p99 ?? NaN).toFixed(0)} ms`,
    );

    const after = await measure(service.baseUrl, getOperation, settings.load, 'inbound-get-after', probes);
    log(`  inbound: GET /contact/:id (after)    ${after.requestsPerSecond.toFixed(0).padStart(6)} req/s  p50 ${after.p50Ms} ms  p99 ${after.p99Ms} ms`);

    // 4. End to end: the sales team renames `edits` persons at once; the fake delivers each change.
    const endToEnd = await editThroughTheFake(fake, db, service, credentials, contactOf, persons.slice(0, settings.edits), settings.timeoutMs, log);
    const peak = memory.stop();

    return {
      contacts: settings.contacts,
      indexFilledSeconds,
      baseline: { before, after },
      receiver,
      processing,
      endToEnd,
      peakRssMb: peak.peakMb,
      passedThrough,
    };
  } finally {
    await Promise.all(children.map((child) => stopChild(child, 5_000)));
    await fake.close();
    await db.end().catch(() => undefined);
  }
}

async function editThroughTheFake(
  fake: FakePipedrive,
  db: pg.Client,
  service: Child,
  credentials: { user: string; password: string },
  contactOf: Map<number, number>,
  edited: FakePerson[],
  timeoutMs: number,
  log: (line: string) => void,
): Promise<InboundResult['endToEnd']> {
  // The subscription, as `npm run ops -- pipedrive webhooks install` creates it.
  const response = await fetch(`${fake.url}/v1/webhooks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-token': fake.token },
    body: JSON.stringify({
      subscription_url: `${service.baseUrl}/webhooks/pipedrive`,
      event_action: '*',
      event_object: 'person',
      name: 'contact-sync benchmark',
      http_auth_user: credentials.user,
      http_auth_password: credentials.password,
      version: '2.0',
    }),
  });
  if (response.status !== 201) throw new Error(`the fake refused the webhook subscription: ${response.status} ${await response.text()}`);
  const requestsBefore = fake.requests.length;
  const deliveriesBefore = fake.deliveries.length;
  const { rows: [mark] } = await db.query<{ at: Date; event: number }>('SELECT now() AS at, COALESCE(max(id), 0)::int AS event FROM contact_events');
  const since = mark!.at;
  const lastEventBefore = mark!.event;

  const tag = Date.now().toString(36);
  const newName = new Map<number, string>();
  const editedAt = new Map<number, number>();
  const editsStart = Date.now();
  for (const person of edited) {
    const name = `Edited ${person.id} ${tag}`;
    newName.set(contactOf.get(person.id)!, name);
    editedAt.set(person.id, Date.now());
    fake.editPerson(person.id, (p) => {
      p.name = name;
    });
  }
  const ids = [...newName.keys()];
  const names = ids.map((id) => newName.get(id)!);
  let shown = 0;
  const allShown = await untilTrue(async () => {
    shown = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM contacts c JOIN unnest($1::int[], $2::text[]) AS e(id, name) ON c.id = e.id AND c.name = e.name', [ids, names])).rows[0]?.n ?? 0;
    return shown === ids.length;
  }, timeoutMs, 50);
  const allShownSeconds = allShown ? (Date.now() - editsStart) / 1000 : undefined;
  let settled = true;
  await fake.webhooksSettled(Math.min(timeoutMs, 60_000)).catch(() => (settled = false));
  // Whatever was recorded is processed before counting (a late duplicate would show here).
  await untilTrue(async () => (await db.query('SELECT 1 FROM pipedrive_webhook_deliveries WHERE processed_at IS NULL LIMIT 1')).rowCount === 0, 30_000);
  await sleep(500);

  const attempts: Record<string, number> = {};
  const newDeliveries = fake.deliveries.slice(deliveriesBefore);
  for (const attempt of newDeliveries) attempts[String(attempt.status)] = (attempts[String(attempt.status)] ?? 0) + 1;
  const retries = newDeliveries.filter((attempt) => attempt.attempt > 1).length;

  const { rows: received } = await db.query<{ entity_id: number; received_ms: number; outcome: string | null }>(
    `SELECT entity_id, (extract(epoch FROM received_at) * 1000)::float8 AS received_ms, outcome FROM pipedrive_webhook_deliveries WHERE received_at >= $1`,
    [since],
  );
  const outcomes: Record<string, number> = {};
  for (const row of received) outcomes[row.outcome ?? 'null'] = (outcomes[row.outcome ?? 'null'] ?? 0) + 1;
  const receivedMs = received.flatMap((row) => (editedAt.has(row.entity_id) ? [row.received_ms - editedAt.get(row.entity_id)!] : []));

  const { rows: events } = await db.query<{ contact_id: number; n: number; first_ms: number; crm_id: number | null }>(
    `SELECT e.contact_id, count(*)::int AS n, (extract(epoch FROM min(e.created_at)) * 1000)::float8 AS first_ms, c.crm_id
       FROM contact_events e JOIN contacts c ON c.id = e.contact_id
      WHERE e.id > $1 AND e.source = 'pipedrive' AND e.type = 'updated'
      GROUP BY e.contact_id, c.crm_id`,
    [lastEventBefore],
  );
  const editedContacts = new Set(ids);
  const perContactMs = events.flatMap((row) => (row.crm_id !== null && editedAt.has(row.crm_id) ? [row.first_ms - editedAt.get(row.crm_id)!] : []));
  const withEvent = new Set(events.map((row) => row.contact_id));
  const queued = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM contacts WHERE mirror_due_at IS NOT NULL')).rows[0]?.n ?? 0;

  const result: InboundResult['endToEnd'] = {
    edits: edited.length,
    allShownSeconds,
    shown,
    perContactMs: spread(perContactMs),
    receivedMs: spread(receivedMs),
    attempts,
    retries,
    settled,
    recorded: received.length,
    outcomes,
    events: events.reduce((sum, row) => sum + row.n, 0),
    appliedTwice: events.filter((row) => row.n > 1).length,
    lost: ids.filter((id) => !withEvent.has(id)).length,
    unexpected: events.filter((row) => !editedContacts.has(row.contact_id)).length,
    pipedriveCalls: fake.requests.length - requestsBefore,
    queuedForMirror: queued,
  };
  log(
    `  inbound: ${edited.length} edits in the fake: ${allShown ? `every contact renamed after ${allShownSeconds!.toFixed(2)} s` : `only ${shown} renamed after ${(timeoutMs / 1000).toFixed(0)} s`}; ` +
      `attempts ${JSON.stringify(attempts)}, ${result.events} events (twice ${result.appliedTwice}, lost ${result.lost})`,
  );
  return result;
}
