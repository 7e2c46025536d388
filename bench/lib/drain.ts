import autocannon from 'autocannon';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakePipedrive } from '../../testkit/fake-pipedrive';
import { BudgetDay, budgetDayTokens, type BudgetDayResult, type BudgetDaySettings } from './budget-day';
import { MemorySampler, freePort, stopChild, type Child } from './processes';
import { withClient } from '../../src/db/pg-admin';
import { launchService, serviceSettings, waitForService, type ServiceMode } from './service';

export interface DrainSettings {
  contacts: number;
  limit: number;
  windowMs: number;
  /** Give up waiting for the backlog after this long. */
  timeoutMs: number;
  mode: ServiceMode;
  /** Extra headers on the API requests (e.g. an API key). */
  headers: Record<string, string>;
  /** The share of the contacts whose email is already a person in Pipedrive (under another name). */
  existing: number;
  /** Worker processes draining together (`npm run worker` each), on one API token. */
  workers: number;
  /** A daily budget covering part of the backlog, with a short day (see budget-day.ts). */
  budgetDay?: BudgetDaySettings;
}

export interface DrainResult {
  contacts: number;
  insert: { requestsPerSecond: number; p99Ms: number; created: number; pendingAfterInsert: number; pipedriveCallsDuringInsert: number };
  /** From the worker's first Pipedrive request to the moment every contact was synced (or the time-out). */
  elapsedSeconds: number;
  workerStartSeconds: number;
  finished: boolean;
  requests: { total: number; accepted: number; rejected429: number; byRoute: Record<string, number> };
  acceptedPerSecond: number;
  allowedPerSecond: number;
  /**
   * Accepted requests / the most the fixed windows the drain spanned could accept (limit × windows
   * spanned, the partial first and last included): 1.0 means no window's budget was left unused.
   */
  fractionOfLimit: number;
  /** acceptedPerSecond / allowedPerSecond: the same by elapsed time, which partial windows can push above 1. */
  fractionOfRate: number;
  contactsPerSecond: number;
  windows: { spanned: number; full: number; meanAcceptedInFullWindows: number; minAcceptedInFullWindows: number; withRejections: number; mostRejectionsInOne: number; rejectedIn: number[] };
  persons: number;
  duplicates: number;
  lost: number;
  orphanPersons: number;
  statuses: Record<string, number>;
  /** Persons in Pipedrive before the drain (with the email of a contact). */
  existingPersons: number;
  /** Contacts still queued for the mirror when the drain ended. */
  queuedLeft: number;
  /** Pipedrive tokens the drain spent (each operation's x-token-cost), and per contact. */
  tokens: { spent: number; perContact: number };
  peakRssMb: { api: number; worker: number };
  concurrency: string;
  workers: number;
  budgetDay?: BudgetDayResult;
  passedThrough: Record<string, string>;
}

const ROUTES: [RegExp, string][] = [
  [/^GET \/api\/v2\/persons\/search$/, 'search person'],
  [/^POST \/api\/v2\/persons$/, 'create person'],
  [/^PATCH \/api\/v2\/persons\/\d+$/, 'update person'],
  [/^GET \/api\/v2\/persons\/\d+$/, 'get person'],
];

const routeOf = (method: string, path: string) => ROUTES.find(([pattern]) => pattern.test(`${method} ${path}`))?.[1] ?? `${method} ${path}`;

async function statusCounts(databaseUrl: string): Promise<Record<string, number>> {
  return withClient(databaseUrl, async (client) => {
    const { rows } = await client.query<{ sync_status: string; n: number }>('SELECT sync_status, count(*)::int AS n FROM contacts GROUP BY 1');
    return Object.fromEntries(rows.map((row) => [row.sync_status, row.n]));
  });
}

/**
 * The mirror drain: `contacts` contacts are recorded through the API while no worker runs, then
 * a worker process (`npm run worker`) mirrors the backlog to a fake Pipedrive that allows
 * `limit` requests per `windowMs` and answers 429 beyond. Measures how close to the allowed rate
 * the backlog drains, and checks Pipedrive ends with exactly one person per contact.
 */
export async function runDrain(databaseUrl: string, settings: DrainSettings, log: (line: string) => void): Promise<DrainResult> {
  const fake = await FakePipedrive.start({
    rateLimit: { limit: settings.limit, windowMs: settings.windowMs },
    ...(settings.budgetDay && { dailyTokens: budgetDayTokens(settings.budgetDay, settings.contacts), dayMs: settings.budgetDay.dayMs }),
  });
  const children: Child[] = [];
  try {
    const pipedrive = {
      ...serviceSettings(databaseUrl),
      PIPEDRIVE_API_KEY: fake.token,
      PIPEDRIVE_BASE_URL: fake.url,
      CRM_SYNC_WAIT_MS: '0',
    };

    // 1. The backlog: contacts recorded through the API, each with its mirror job, no worker running.
    const apiPort = await freePort();
    const { child: api, passedThrough } = launchService({ name: 'drain API', mode: settings.mode, role: 'server', port: apiPort, settings: { ...pipedrive, SYNC_WORKER: 'false' } });
    children.push(api);
    const apiMemory = new MemorySampler(api.pid);
    await waitForService(api);
    let sequence = 0;
    const inserted = await autocannon({
      url: api.baseUrl,
      connections: 10,
      amount: settings.contacts,
      timeout: 10,
      headers: settings.headers,
      requests: [
        {
          method: 'POST',
          path: '/contact',
          setupRequest: (request) => {
            sequence += 1;
            return {
              ...request,
              headers: { ...request.headers, 'content-type': 'application/json' },
              body: JSON.stringify({ name: `Drain Contact ${sequence}`, email: `drain-${sequence}@example.com`, phone: `+1 202 ${String(5_550_000 + (sequence % 10_000))}` }),
            };
          },
        },
      ],
    });
    const created = inserted.statusCodeStats['201']?.count ?? 0;
    const afterInsert = await statusCounts(databaseUrl);
    const pipedriveCallsDuringInsert = fake.requests.length;
    log(`  drain: ${created} contacts recorded (${Math.round(created / inserted.duration)} req/s, p99 ${inserted.latency.p99} ms); pending ${afterInsert.pending ?? 0}; Pipedrive calls so far ${pipedriveCallsDuringInsert}`);
    if (created !== settings.contacts) throw new Error(`expected ${settings.contacts} contacts created, got ${created}: ${JSON.stringify(inserted.statusCodeStats)}`);
    const apiPeak = apiMemory.stop();
    await stopChild(api);

    // 2. The drain: the worker alone, as `npm run worker` runs it. Windows count from here.
    fake.reset();
    // Persons the sales team already has: the same email, another name and no phone.
    for (let i = 1; i <= settings.contacts; i += 1) {
      if (Math.floor(i * settings.existing) !== Math.floor((i - 1) * settings.existing)) {
        fake.seedPerson({ name: `Existing person ${i}`, email: `drain-${i}@example.com` });
      }
    }
    const existingPersons = fake.persons.size;
    const windowsStart = Date.now();
    const budgetDay = settings.budgetDay && new BudgetDay(settings.budgetDay, settings.contacts, databaseUrl, fake, windowsStart);
    await budgetDay?.queueBacklogAsBulk();
    const workers = Array.from({ length: settings.workers }, (_, i) =>
      launchService({ name: `drain worker ${i + 1}`, mode: settings.mode, role: 'worker', port: 0, settings: { ...pipedrive, ...budgetDay?.workerSettings } }).child,
    );
    children.push(...workers);
    const workerMemory = new MemorySampler(workers[0]!.pid);
    let exited: { worker: Child; code: number | null } | undefined;
    for (const worker of workers) void worker.exited.then((code) => (exited ??= { worker, code }));

    const deadline = Date.now() + settings.timeoutMs;
    let statuses: Record<string, number> = {};
    let lastReport = Date.now();
    let finishedAt: number | undefined;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`a worker exited with code ${exited.code}:\n${exited.worker.output()}`);
      statuses = await statusCounts(databaseUrl);
      await budgetDay?.step(log);
      if ((statuses.synced ?? 0) + (statuses.failed ?? 0) >= (budgetDay?.total ?? settings.contacts)) {
        finishedAt = Date.now();
        break;
      }
      if (Date.now() - lastReport >= 15_000) {
        lastReport = Date.now();
        log(`  drain: ${statuses.synced ?? 0}/${budgetDay?.total ?? settings.contacts} synced after ${Math.round((Date.now() - windowsStart) / 1000)} s, ${fake.requests.length} Pipedrive requests`);
      }
      await sleep(100);
    }
    const workerPeak = workerMemory.stop();
    await Promise.all(workers.map((worker) => stopChild(worker)));
    const endedAt = finishedAt ?? Date.now();

    // 3. What Pipedrive saw.
    const requests = fake.requests.slice();
    const rejected429 = [...fake.rejectionsPerWindow().values()].reduce((sum, n) => sum + n, 0);
    const accepted = requests.length - rejected429;
    const firstAt = requests[0]?.at ?? endedAt;
    const elapsedSeconds = (endedAt - firstAt) / 1000;
    const byRoute: Record<string, number> = {};
    for (const request of requests) byRoute[routeOf(request.method, request.path)] = (byRoute[routeOf(request.method, request.path)] ?? 0) + 1;

    // Accepted requests per fixed window (the fake's windows start at reset()).
    const perWindow = new Map<number, number>();
    for (const request of requests) {
      const index = Math.floor((request.at - windowsStart) / settings.windowMs);
      perWindow.set(index, (perWindow.get(index) ?? 0) + 1);
    }
    for (const [index, rejected] of fake.rejectionsPerWindow()) perWindow.set(index, (perWindow.get(index) ?? 0) - rejected);
    const indexes = [...perWindow.keys()].sort((a, b) => a - b);
    const first = indexes[0] ?? 0;
    const last = indexes.at(-1) ?? -1;
    // The first and last windows are partial (the drain starts and ends inside them); a window
    // in between with no request at all counts as 0.
    const fullWindows: number[] = [];
    for (let index = first + 1; index < last; index += 1) fullWindows.push(perWindow.get(index) ?? 0);

    // 4. Lost and duplicated persons.
    const contacts = await withClient(databaseUrl, async (client) =>
      (await client.query<{ id: number; email: string | null; crm_id: number | null; sync_status: string }>('SELECT id, email, crm_id, sync_status FROM contacts')).rows,
    );
    const queuedLeft = await withClient(databaseUrl, async (client) => (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM contacts WHERE mirror_due_at IS NOT NULL')).rows[0]?.n ?? 0);
    const personsByEmail = new Map<string, number>();
    for (const person of fake.persons.values()) {
      for (const email of person.emails) personsByEmail.set(email.value.toLowerCase(), (personsByEmail.get(email.value.toLowerCase()) ?? 0) + 1);
    }
    const duplicates = [...personsByEmail.values()].reduce((sum, n) => sum + Math.max(0, n - 1), 0);
    const linked = new Set<number>();
    let lost = 0;
    for (const contact of contacts) {
      const person = contact.crm_id === null ? undefined : fake.persons.get(contact.crm_id);
      if (contact.crm_id !== null) linked.add(contact.crm_id);
      const matches = person?.emails.some((email) => email.value.toLowerCase() === contact.email);
      if (contact.sync_status !== 'synced' || !person || !matches) lost += 1;
    }
    const orphanPersons = [...fake.persons.keys()].filter((id) => !linked.has(id)).length;

    const allowedPerSecond = settings.limit / (settings.windowMs / 1000);
    const acceptedPerSecond = elapsedSeconds > 0 ? accepted / elapsedSeconds : 0;
    return {
      contacts: settings.contacts,
      insert: { requestsPerSecond: created / inserted.duration, p99Ms: inserted.latency.p99, created, pendingAfterInsert: afterInsert.pending ?? 0, pipedriveCallsDuringInsert },
      elapsedSeconds,
      workerStartSeconds: (firstAt - windowsStart) / 1000,
      finished: finishedAt !== undefined,
      requests: { total: requests.length, accepted, rejected429, byRoute },
      acceptedPerSecond,
      allowedPerSecond,
      fractionOfLimit: last >= first ? accepted / (settings.limit * (last - first + 1)) : 0,
      fractionOfRate: acceptedPerSecond / allowedPerSecond,
      contactsPerSecond: elapsedSeconds > 0 ? (statuses.synced ?? 0) / elapsedSeconds : 0,
      windows: {
        spanned: last - first + 1,
        full: fullWindows.length,
        meanAcceptedInFullWindows: fullWindows.length > 0 ? fullWindows.reduce((sum, n) => sum + n, 0) / fullWindows.length : 0,
        minAcceptedInFullWindows: fullWindows.length > 0 ? Math.min(...fullWindows) : 0,
        withRejections: [...fake.rejectionsPerWindow().values()].filter((n) => n > 0).length,
        mostRejectionsInOne: Math.max(0, ...fake.rejectionsPerWindow().values()),
        rejectedIn: [...fake.rejectionsPerWindow().keys()].sort((a, b) => a - b),
      },
      persons: fake.persons.size,
      existingPersons,
      tokens: { spent: fake.tokensSpent, perContact: fake.tokensSpent / (budgetDay?.total ?? settings.contacts) },
      duplicates,
      lost,
      orphanPersons,
      statuses,
      queuedLeft,
      peakRssMb: { api: apiPeak.peakMb, worker: workerPeak.peakMb },
      concurrency: process.env.SYNC_CONCURRENCY || '4 (default)',
      workers: settings.workers,
      budgetDay: budgetDay?.report(),
      passedThrough,
    };
  } finally {
    await Promise.all(children.map((child) => stopChild(child, 5_000)));
    await fake.close();
  }
}
