/**
 * `npm run bench`: the service against a minimal baseline (express + raw pg) on a local PostgreSQL,
 * the Pipedrive mirror draining a backlog under a rate limit, the two-way sync's webhook receiver and
 * the processing of its deliveries, and the service's peak memory.
 * See docs/benchmarks.md for what it measures, the options and the last recorded figures.
 *
 *   npm run bench                          # everything, about 4 minutes (5 with --profile), plus 2½ for the inbound part
 *   npm run bench -- --profile             # also CPU-profile the service and the baseline during POST /contact
 *   npm run bench -- --only profile --profile-op health,patch   # profile other operations (and nothing else)
 *   npm run bench -- --only http           # or --only drain, --only inbound, --only profile
 *   npm run bench -- --duration 20 --connections 100 --tsx --no-build
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Request } from 'autocannon';
import { applyMigrations } from '../src/db/migrate';
import { locateTestServer } from '../testkit/postgres-server';
import { formatSummary, summariseProfile, type ProfileSummary } from './lib/cpu-profile';
import { runDrain, type DrainResult } from './lib/drain';
import { runInbound, type InboundResult, type Spread } from './lib/inbound';
import { measure, type LoadResult, type LoadSettings, type Operation } from './lib/load';
import { PgMessageCounter } from './lib/pg-proxy';
import { createScratchDatabase, dropDatabase } from '../testkit/postgres-server';
import { PostgresCpu, SEARCH_TERM, seedContacts, serverVersion } from './lib/postgres';
import { freePort, killedAfterGrace, MemorySampler, REPO_ROOT, settleThenStop, stopAllChildren, stopChild, waitUntilReady, type Child } from './lib/processes';
import { fixed, ratio, table } from './lib/report';
import { buildService, launchService, REQUEST_HEADERS, serviceSettings, startBaseline, waitForService, type ServiceMode } from './lib/service';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    seed: { type: 'string', default: '10000' },
    'drain-contacts': { type: 'string', default: '1000' },
    'drain-existing': { type: 'string', default: '0' },
    'drain-workers': { type: 'string', default: '1' },
    'drain-budget': { type: 'string' },
    'drain-day': { type: 'string', default: '180' },
    'drain-reserve': { type: 'string', default: '500' },
    'drain-live': { type: 'string', default: '50' },
    'inbound-contacts': { type: 'string', default: '1000' },
    'inbound-edits': { type: 'string', default: '500' },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'profile-op': { type: 'string' },
    tsx: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    strict: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (args.help) {
  console.log(`npm run bench [-- options]
  --duration <s>         measured seconds per operation and target (10)
  --warmup <s>           unrecorded warm-up before each run (3)
  --connections <n>      concurrent connections (50)
  --seed <n>             contacts seeded before the read runs (10000)
  --drain-contacts <n>   backlog of the mirror drain (1000)
  --drain-existing <f>   share of the drain's emails already persons in Pipedrive, 0 to 1 (0)
  --drain-workers <n>    worker processes draining together on one API token (1)
  --drain-budget <f>     a daily token budget covering this share of the backlog, queued as bulk work;
                         with --drain-day <s> (180), --drain-reserve <tokens> (500) and --drain-live <n>
                         (50 contacts written once bulk work is held back)
  --inbound-contacts <n> linked contacts the webhook deliveries and edits are for (1000)
  --inbound-edits <n>    sales-team edits made in the fake Pipedrive and delivered by it (500)
  --only http|drain|inbound|profile  run one part (profile: only the profiled runs)
  --profile              CPU-profile the service and the baseline during an operation (bench/.profiles/)
  --profile-op <ops>     the operations to profile, comma-separated (implies --profile; post by default):
                         health, get, search, patch, post
  --tsx                  run the service from src/ with tsx instead of building dist/
  --no-build             use dist/ as it is
  --strict               exit 1 when a target is missed
Environment: BENCH_DATABASE_URL (or TEST_DATABASE_URL) picks the PostgreSQL server, else 127.0.0.1:5432,
else the embedded one. Service variables the benchmark does not set (DATABASE_POOL_SIZE, SYNC_CONCURRENCY, ...)
pass through from the environment.`);
  process.exit(0);
}

const seconds = (name: keyof typeof args) => {
  const value = Number(args[name]);
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a non-negative number`);
  return value;
};

const settings: LoadSettings = {
  connections: seconds('connections'),
  durationSeconds: seconds('duration'),
  warmupSeconds: seconds('warmup'),
  headers: REQUEST_HEADERS,
};
const SEED = seconds('seed');
const DRAIN_CONTACTS = seconds('drain-contacts');
const DRAIN_EXISTING = Number(args['drain-existing']);
if (!(DRAIN_EXISTING >= 0 && DRAIN_EXISTING <= 1)) throw new Error('--drain-existing takes a share from 0 to 1');
const DRAIN_WORKERS = seconds('drain-workers');
const DRAIN_BUDGET =
  args['drain-budget'] === undefined
    ? undefined
    : { share: Number(args['drain-budget']), dayMs: seconds('drain-day') * 1000, reserve: seconds('drain-reserve'), live: seconds('drain-live') };
if (DRAIN_BUDGET && !(DRAIN_BUDGET.share > 0 && DRAIN_BUDGET.share < 1)) throw new Error('--drain-budget takes a share between 0 and 1');
if (!Number.isInteger(DRAIN_WORKERS) || DRAIN_WORKERS < 1) throw new Error('--drain-workers takes a whole number of processes, at least 1');
const PROFILE_ONLY = args.only === 'profile';
const RUN_HTTP = args.only === undefined || args.only === 'http' || PROFILE_ONLY;
if (args.only !== undefined && !['http', 'drain', 'inbound', 'profile'].includes(args.only)) throw new Error('--only takes http, drain, inbound or profile');
const RUN_DRAIN = args.only === undefined || args.only === 'drain';
const RUN_INBOUND = args.only === undefined || args.only === 'inbound';
const INBOUND_CONTACTS = seconds('inbound-contacts');
const INBOUND_EDITS = seconds('inbound-edits');
if (!Number.isInteger(INBOUND_CONTACTS) || INBOUND_CONTACTS < 1) throw new Error('--inbound-contacts takes a whole number of contacts, at least 1');
if (!Number.isInteger(INBOUND_EDITS) || INBOUND_EDITS > INBOUND_CONTACTS) throw new Error('--inbound-edits takes a whole number of edits, at most --inbound-contacts');
const MODE: ServiceMode = args.tsx ? 'tsx' : 'dist';
/** The service's default pool; the baseline gets the same. */
const POOL_SIZE = Number(process.env.DATABASE_POOL_SIZE || 10);
/** Hard stop for the whole run: nothing may hang a terminal or a CI job. */
const RUN_TIMEOUT_MS = 15 * 60_000;
const RESULTS_DIR = path.join(REPO_ROOT, 'bench', '.results');
const PROFILES_DIR = path.join(REPO_ROOT, 'bench', '.profiles');

/** Throughput targets are per operation (`minRatio`); p99 is compared with the baseline's in the same run. */
/** drainFraction: contacts per second against the requests per second allowed (one request per new contact). */
const TARGETS = { p99RatioToBaseline: 2, drainFraction: 0.9, tokensPerNewContact: 5.5, tokensPerContactHalfExisting: 6, rssMb: 160 };

const log = (line: string) => console.log(line);

function postRequests(runTag: string, path: string): Request[] {
  let sequence = 0;
  return [
    {
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json' },
      setupRequest: (request) => {
        sequence += 1;
        return {
          ...request,
          body: JSON.stringify({ name: `Bench Contact ${sequence}`, email: `${runTag}-${sequence}@bench.example.com`, phone: '+44 20 7946 0000' }),
        };
      },
    },
  ];
}

const POST_LABEL = 'POST /contact';

const randomSeededId = () => 1 + Math.floor(Math.random() * SEED);

/**
 * A new phone number for a random seeded contact. Only the phone: a name change would move
 * contacts in and out of the search's matches for the profiled runs that follow, an email change
 * could collide with another contact's.
 */
function patchRequests(): Request[] {
  return [
    {
      method: 'PATCH',
      path: '/contact',
      headers: { 'content-type': 'application/json' },
      setupRequest: (request) => ({
        ...request,
        body: JSON.stringify({ contact_id: randomSeededId(), fields: { phone: `+44 20 7946 ${String(Math.floor(Math.random() * 10_000)).padStart(4, '0')}` } }),
      }),
    },
  ];
}

interface BenchOperation extends Operation {
  /** Names the operation in --profile-op. */
  key: string;
  /** Target: service throughput at least this fraction of the baseline's. */
  minRatio?: number;
}

const operations: BenchOperation[] = [
  // The middleware stack alone: the same JSON from a bare express route on the baseline.
  { key: 'health', label: 'GET /health', okStatus: 200, minRatio: 0.7, requests: () => [{ method: 'GET', path: '/health' }] },
  {
    key: 'get',
    label: 'GET /contact/:id',
    okStatus: 200,
    minRatio: 0.7,
    requests: () => [{ method: 'GET', path: '/contact/1', setupRequest: (request) => ({ ...request, path: `/contact/${randomSeededId()}` }) }],
  },
  {
    key: 'search',
    label: `GET /contacts?search=${SEARCH_TERM}`,
    okStatus: 200,
    minRatio: 0.6,
    requests: () => [{ method: 'GET', path: `/contacts?search=${SEARCH_TERM}` }],
  },
  { key: 'post', label: POST_LABEL, okStatus: 201, minRatio: 0.7, requests: (runTag) => postRequests(runTag, '/contact') },
  // Not in the issue's list: the baseline doing the service's former SQL (contact + audit event in
  // one transaction) by hand, to tell the cost of that transaction from the cost of the stack.
  { key: 'post-tx', label: 'POST /contact, baseline in a transaction', okStatus: 201, requests: (runTag) => postRequests(runTag, '/contact-tx'), serviceFrom: POST_LABEL },
  // Last, so that the runs before it measure what they measured before it was added.
  { key: 'patch', label: 'PATCH /contact', okStatus: 200, minRatio: 0.6, requests: patchRequests },
];

/** Baseline-only variants (serviceFrom) have no service side to profile. */
const PROFILABLE = operations.filter((operation) => !operation.serviceFrom);
const PROFILED = (args['profile-op'] ?? 'post').split(',').map((key) => {
  const operation = PROFILABLE.find((candidate) => candidate.key === key.trim());
  if (!operation) throw new Error(`--profile-op takes ${PROFILABLE.map((candidate) => candidate.key).join(', ')}`);
  return operation;
});
const PROFILE = args.profile || args['profile-op'] !== undefined;

// ---------------------------------------------------------------------------------------------
// Clean-up: children stopped and scratch databases dropped however the run ends.

const cleanups: (() => Promise<void>)[] = [];
let cleaningUp: Promise<void> | undefined;
function cleanUp(): Promise<void> {
  cleaningUp ??= (async () => {
    await stopAllChildren().catch(() => undefined);
    for (const step of cleanups.reverse()) await step().catch((error: unknown) => console.error(`clean-up: ${String(error)}`));
  })();
  return cleaningUp;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping and cleaning up`);
    void cleanUp().finally(() => process.exit(130));
  });
}
const watchdog = setTimeout(() => {
  console.error(`the benchmark did not finish within ${RUN_TIMEOUT_MS / 60_000} minutes; stopping`);
  void cleanUp().finally(() => process.exit(1));
}, RUN_TIMEOUT_MS);
watchdog.unref();

// ---------------------------------------------------------------------------------------------

interface MachineInfo {
  date: string;
  cpu: string;
  memory: string;
  os: string;
  node: string;
  commit: string;
  loadAverageAtStart: string;
}

function machine(): MachineInfo {
  const cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSafe('/proc/cpuinfo'))?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const git = (...gitArgs: string[]) => {
    try {
      return execFileSync('git', gitArgs, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  };
  const dirty = git('status', '--porcelain', '--', 'src', 'prisma', 'package.json') !== '';
  return {
    date: new Date().toISOString(),
    cpu: `${cpuModel}, ${os.cpus().length} cores`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    commit: `${git('rev-parse', '--short', 'HEAD') || 'unknown'}${dirty ? ' + uncommitted changes in src/' : ''}`,
    loadAverageAtStart: os.loadavg().map((load) => load.toFixed(2)).join(' '),
  };
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

async function migratedDatabase(adminUrl: string, prefix: string): Promise<string> {
  const url = await createScratchDatabase(adminUrl, prefix);
  cleanups.push(() => dropDatabase(adminUrl, url));
  await applyMigrations(url);
  return url;
}

interface OperationProfile {
  label: string;
  service: ProfileSummary;
  baseline: ProfileSummary;
  files: string[];
  requests: { service: number; baseline: number };
}

interface HttpResults {
  rows: { label: string; service: LoadResult; baseline: LoadResult }[];
  serviceRss?: { peakMb: number; maxSampledMb: number; marks: { label: string; rssMb: number; peakMb: number }[] };
  baselineRss?: { peakMb: number; maxSampledMb: number; marks: { label: string; rssMb: number; peakMb: number }[] };
  roundTrips?: { label: string; service: { roundTrips: number; statements: number }; baseline: { roundTrips: number; statements: number } }[];
  profiles?: OperationProfile[];
  passedThrough: Record<string, string>;
}

async function startPair(serviceDb: string, baselineDb: string, nodeArgs: string[] = []): Promise<{ service: Child; baseline: Child; passedThrough: Record<string, string> }> {
  const { child: service, passedThrough } = launchService({
    name: 'service',
    mode: MODE,
    role: 'server',
    port: await freePort(),
    settings: serviceSettings(serviceDb),
    nodeArgs,
  });
  const baseline = startBaseline(await freePort(), baselineDb, POOL_SIZE, nodeArgs);
  await Promise.all([waitForService(service), waitForBaseline(baseline)]);
  return { service, baseline, passedThrough };
}

/** The baseline has no /contact/health; /health is enough. */
const waitForBaseline = (baseline: Child) => waitUntilReady(baseline, '/health', 30_000);

async function runHttp(adminUrl: string): Promise<HttpResults> {
  log('\n== HTTP: service vs baseline ==');
  const [serviceDb, baselineDb] = await Promise.all([migratedDatabase(adminUrl, 'bench_service'), migratedDatabase(adminUrl, 'bench_baseline')]);
  await Promise.all([seedContacts(serviceDb, SEED), seedContacts(baselineDb, SEED)]);
  log(`  databases migrated and seeded with ${SEED} contacts each`);

  if (PROFILE_ONLY) return { rows: [], passedThrough: {}, profiles: await profileAll(serviceDb, baselineDb) };

  const { service, baseline, passedThrough } = await startPair(serviceDb, baselineDb);
  if (Object.keys(passedThrough).length > 0) log(`  service settings passed through from the environment: ${JSON.stringify(passedThrough)}`);
  const serviceMemory = new MemorySampler(service.pid);
  const baselineMemory = new MemorySampler(baseline.pid);
  serviceMemory.mark('ready');
  baselineMemory.mark('ready');
  const serviceCpu = await PostgresCpu.forDatabase(adminUrl, serviceDb);
  const baselineCpu = await PostgresCpu.forDatabase(adminUrl, baselineDb);

  const rows: HttpResults['rows'] = [];
  for (const operation of operations) {
    const tag = `r${Date.now().toString(36)}`;
    const measured = rows.find((row) => row.label === operation.serviceFrom)?.service;
    const serviceResult =
      measured ?? (await measure(service.baseUrl, operation, settings, `svc-${tag}`, { targetPid: service.pid, postgresCpu: serviceCpu && (() => serviceCpu.totalSeconds()) }));
    if (!measured) log(`  ${operation.label.padEnd(32)} service  ${fixed(serviceResult.requestsPerSecond).padStart(6)} req/s  p99 ${serviceResult.p99Ms} ms${failureNote(serviceResult)}`);
    const baselineResult = await measure(baseline.baseUrl, operation, settings, `base-${tag}`, { targetPid: baseline.pid, postgresCpu: baselineCpu && (() => baselineCpu.totalSeconds()) });
    log(`  ${operation.label.padEnd(32)} baseline ${fixed(baselineResult.requestsPerSecond).padStart(6)} req/s  p99 ${baselineResult.p99Ms} ms${failureNote(baselineResult)}`);
    rows.push({ label: operation.label, service: serviceResult, baseline: baselineResult });
    serviceMemory.mark(`after ${operation.label}`);
    baselineMemory.mark(`after ${operation.label}`);
  }
  const serviceRss = serviceMemory.stop();
  const baselineRss = baselineMemory.stop();
  await Promise.all([settleThenStop(service), settleThenStop(baseline)]);

  const results: HttpResults = { rows, serviceRss, baselineRss, passedThrough };
  results.roundTrips = await countRoundTrips(adminUrl, serviceDb, baselineDb);
  if (PROFILE) results.profiles = await profileAll(serviceDb, baselineDb);
  return results;
}

function failureNote(result: LoadResult): string {
  const { non2xx, errors, timeouts, statusCodes } = result.failures;
  return non2xx + errors + timeouts > 0 ? `  (!) non-2xx ${non2xx}, errors ${errors}, timeouts ${timeouts}: ${JSON.stringify(statusCodes)}` : '';
}

/**
 * Database round trips per request: a fresh service and baseline talk to PostgreSQL through a
 * counting proxy while each operation is sent 200 times, one at a time.
 */
async function countRoundTrips(adminUrl: string, serviceDb: string, baselineDb: string): Promise<HttpResults['roundTrips']> {
  const upstream = new URL(adminUrl);
  if (upstream.searchParams.has('host')) return undefined; // a Unix socket: nothing to proxy
  const proxy = await PgMessageCounter.start({ host: upstream.hostname, port: Number(upstream.port || 5432) });
  const viaProxy = (url: string) => {
    const proxied = new URL(url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    return proxied.toString();
  };
  try {
    const { service, baseline } = await startPair(viaProxy(serviceDb), viaProxy(baselineDb));
    const results: NonNullable<HttpResults['roundTrips']> = [];
    const COUNT = 200;
    const send = async (child: Child, operation: Operation, times: number, tag: string) => {
      const [request] = operation.requests(tag) as [Request];
      for (let i = 0; i < times; i += 1) {
        const built = request.setupRequest ? request.setupRequest({ ...request } as never, {}) : request;
        const response = await fetch(`${child.baseUrl}${built.path ?? '/'}`, {
          method: built.method ?? 'GET',
          headers: { ...settings.headers, ...(built.headers ?? {}) },
          body: typeof built.body === 'string' ? built.body : undefined,
        });
        await response.arrayBuffer();
        if (response.status !== operation.okStatus) throw new Error(`${child.name} ${operation.label} answered ${response.status}`);
      }
    };
    for (const operation of operations) {
      const counts = { service: { roundTrips: 0, statements: 0 }, baseline: { roundTrips: 0, statements: 0 } };
      const measured = results.find((row) => row.label === operation.serviceFrom);
      if (measured) counts.service = measured.service;
      for (const [key, child] of [['service', service], ['baseline', baseline]] as const) {
        if (measured && key === 'service') continue;
        const tag = `rt-${key}-${Date.now().toString(36)}`;
        await send(child, operation, 20, `${tag}w`);
        proxy.reset();
        await send(child, operation, COUNT, tag);
        counts[key] = { roundTrips: proxy.roundTrips() / COUNT, statements: proxy.statements() / COUNT };
      }
      results.push({ label: operation.label, ...counts });
    }
    await Promise.all([stopChild(service), stopChild(baseline)]);
    log('  database round trips per request counted through a proxy');
    return results;
  } finally {
    await proxy.close();
  }
}

async function profileAll(serviceDb: string, baselineDb: string): Promise<OperationProfile[]> {
  const runDir = path.join(PROFILES_DIR, new Date().toISOString().replace(/[:.]/g, '-'));
  const profiles: OperationProfile[] = [];
  for (const operation of PROFILED) profiles.push(await profileOperation(operation, serviceDb, baselineDb, path.join(runDir, operation.key)));
  return profiles;
}

/** A service and a baseline under --cpu-prof during a run of `operation`; the profiles are written when they exit. */
async function profileOperation(operation: Operation, serviceDb: string, baselineDb: string, runDir: string): Promise<OperationProfile> {
  const dirs = { service: path.join(runDir, 'service'), baseline: path.join(runDir, 'baseline') };
  mkdirSync(dirs.service, { recursive: true });
  mkdirSync(dirs.baseline, { recursive: true });
  const summaries: Partial<Record<'service' | 'baseline', ProfileSummary>> = {};
  const requests = { service: 0, baseline: 0 };
  const files: string[] = [];
  for (const key of ['service', 'baseline'] as const) {
    const nodeArgs = ['--cpu-prof', '--cpu-prof-dir', dirs[key]];
    const child =
      key === 'service'
        ? launchService({ name: 'service (profiled)', mode: MODE, role: 'server', port: await freePort(), settings: serviceSettings(serviceDb), nodeArgs }).child
        : startBaseline(await freePort(), baselineDb, POOL_SIZE, nodeArgs);
    await (key === 'service' ? waitForService(child) : waitForBaseline(child));
    const result = await measure(child.baseUrl, operation, settings, `prof-${key}-${Date.now().toString(36)}`, { targetPid: child.pid });
    log(`  profiled ${key}: ${operation.label} ${fixed(result.requestsPerSecond)} req/s under the profiler${failureNote(result)}`);
    await settleThenStop(child);
    const file = readdirSync(dirs[key]).find((name) => name.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no CPU profile was written by the ${key} (in ${dirs[key]})`);
    files.push(path.relative(REPO_ROOT, path.join(dirs[key], file)));
    // Only the measured run: start-up, warm-up and shutdown are left out.
    summaries[key] = summariseProfile(path.join(dirs[key], file), 25, result.windowUs);
    requests[key] = result.ok;
  }
  return { label: operation.label, service: summaries.service as ProfileSummary, baseline: summaries.baseline as ProfileSummary, files, requests };
}

async function runMirrorDrain(adminUrl: string): Promise<DrainResult> {
  log('\n== Mirror drain ==');
  const databaseUrl = await migratedDatabase(adminUrl, 'bench_drain');
  return runDrain(databaseUrl, { contacts: DRAIN_CONTACTS, limit: 40, windowMs: 2_000, timeoutMs: Math.max(300_000, (DRAIN_BUDGET?.dayMs ?? 0) + (DRAIN_CONTACTS / 15) * 1000 + 60_000), mode: MODE, headers: settings.headers, existing: DRAIN_EXISTING, workers: DRAIN_WORKERS, budgetDay: DRAIN_BUDGET }, log);
}

async function runInboundPart(adminUrl: string): Promise<InboundResult> {
  log('\n== Inbound: webhook receiver and processing ==');
  const databaseUrl = await migratedDatabase(adminUrl, 'bench_inbound');
  return runInbound(databaseUrl, adminUrl, { contacts: INBOUND_CONTACTS, edits: INBOUND_EDITS, load: settings, mode: MODE, timeoutMs: 300_000 }, log);
}

// ---------------------------------------------------------------------------------------------

/** The rest of the machine during a run: the load generator, PostgreSQL's background work, anything else running. */
const otherCpu = (result: LoadResult) => {
  const { machine, target, postgres } = result.cpuPercent;
  return machine === undefined || target === undefined ? undefined : machine - target - (postgres ?? 0);
};

const ms = (spread: Spread, digits = 0) => `p50 ${fixed(spread.p50, digits)} ms, p99 ${fixed(spread.p99, digits)} ms, max ${fixed(spread.max, digits)} ms`;

function inboundLines(inbound: InboundResult): string[] {
  const { receiver, baseline, processing: p, endToEnd: e } = inbound;
  const row = (label: string, result: LoadResult) => [
    label,
    fixed(result.requestsPerSecond),
    String(result.p50Ms),
    String(result.p99Ms),
    fixed(result.cpuMsPerRequest.target, 2),
    fixed(result.cpuMsPerRequest.postgres, 2),
    fixed(result.cpuPercent.target),
    fixed(result.cpuPercent.postgres),
    fixed(otherCpu(result)),
  ];
  const lines = [
    '',
    `Inbound (two-way sync): ${inbound.contacts} linked contacts, one service process with webhook credentials and PIPEDRIVE_API_KEY (the fake);`,
    `${settings.connections} connections, ${settings.durationSeconds} s per run after ${settings.warmupSeconds} s warm-up; the person index filled from the fake ${fixed(inbound.indexFilledSeconds, 1)} s after start:`,
    '',
    table(
      ['operation', 'req/s', 'p50 ms', 'p99 ms', 'node CPU ms', 'PG CPU ms', 'node %core', 'PG %core', 'other %core'],
      [row('GET /contact/:id (before)', baseline.before), row('POST /webhooks/pipedrive', receiver), row('GET /contact/:id (after)', baseline.after)],
    ),
    '',
    `  receiver / GET /contact/:id before and after: throughput ${fixed(ratio(receiver.requestsPerSecond, baseline.before.requestsPerSecond), 2)} and ${fixed(ratio(receiver.requestsPerSecond, baseline.after.requestsPerSecond), 2)}, p99 ${fixed(ratio(receiver.p99Ms, baseline.before.p99Ms), 2)} and ${fixed(ratio(receiver.p99Ms, baseline.after.p99Ms), 2)}`,
  ];
  const failures = [['GET before', baseline.before], ['webhooks', receiver], ['GET after', baseline.after]] as const;
  for (const [label, result] of failures) {
    if (result.failures.non2xx + result.failures.errors + result.failures.timeouts > 0) lines.push(`  (!) ${label}: ${JSON.stringify(result.failures)}`);
  }
  lines.push(
    `  processing: ${p.recorded} deliveries recorded (${p.sent} sent, warm-up included); ${p.drainedAfterLoadSeconds === undefined ? `${p.waitingLeft} STILL WAITING at the time-out` : `none waiting ${fixed(p.drainedAfterLoadSeconds, 1)} s after the load ended`}`,
    `    processed per second: ${fixed(p.perSecond.duringLoad)} while the receiver was loaded (${p.processedDuringLoad}), ${fixed(p.perSecond.afterLoad)} after it (${p.processedAfterLoad}), ${fixed(p.perSecond.overall)} over ${fixed(p.spanSeconds, 1)} s from the first received to the last processed`,
    `    after the load: node ${fixed(p.afterLoadCpu.nodeMsPerDelivery, 2)} CPU ms per delivery (${fixed(p.afterLoadCpu.nodePercent)} % of a core), PostgreSQL ${fixed(p.afterLoadCpu.postgresMsPerDelivery, 2)} (${fixed(p.afterLoadCpu.postgresPercent)} %)`,
    `    processed_at - received_at: ${ms(p.lagMs)}; outcomes ${JSON.stringify(p.outcomes)}; processed more than once ${p.retried}`,
    `  end to end: ${e.edits} names changed with fake.editPerson at once, delivered by the fake (a connection each):`,
    `    ${e.allShownSeconds === undefined ? `only ${e.shown} contacts renamed at the time-out` : `every contact showed its new name ${fixed(e.allShownSeconds, 2)} s after the first edit`}; per contact (edit to its event): ${ms(e.perContactMs)}; edit to delivery recorded: ${ms(e.receivedMs)}`,
    `    the fake's attempts ${JSON.stringify(e.attempts)}, retries ${e.retries}${e.settled ? '' : ', NOT SETTLED'}; deliveries recorded ${e.recorded}, outcomes ${JSON.stringify(e.outcomes)}`,
    `    'updated' events with source pipedrive: ${e.events}; contacts with more than one ${e.appliedTwice}, edited contacts with none ${e.lost}, other contacts ${e.unexpected}; service calls to Pipedrive meanwhile ${e.pipedriveCalls}; contacts queued for the mirror ${e.queuedForMirror}`,
    `  peak RSS of the service: ${fixed(inbound.peakRssMb, 1)} MB`,
  );
  return lines;
}

function report(info: MachineInfo & Record<string, string>, http: HttpResults | undefined, drain: DrainResult | undefined, inbound?: InboundResult): { text: string; missed: string[] } {
  const lines: string[] = [];
  const missed: string[] = [];
  const check = (ok: boolean, text: string) => {
    lines.push(`  ${ok ? 'MET   ' : 'MISSED'}  ${text}`);
    if (!ok) missed.push(text);
  };
  lines.push('', '== Results ==');
  for (const [key, value] of Object.entries(info)) lines.push(`${key.padEnd(20)} ${value}`);

  if (http && http.rows.length > 0) {
    lines.push('', `HTTP, ${settings.connections} connections, ${settings.durationSeconds} s per run after ${settings.warmupSeconds} s warm-up (${SEED} seeded contacts):`, '');
    lines.push(
      table(
        ['operation', 'service req/s', 'baseline req/s', 'ratio', 'service p99 ms', 'baseline p99 ms', 'ratio'],
        http.rows.map(({ label, service, baseline }) => [
          label,
          fixed(service.requestsPerSecond),
          fixed(baseline.requestsPerSecond),
          fixed(ratio(service.requestsPerSecond, baseline.requestsPerSecond), 2),
          String(service.p99Ms),
          String(baseline.p99Ms),
          fixed(ratio(service.p99Ms, baseline.p99Ms), 2),
        ]),
      ),
    );
    lines.push(
      '',
      'Where the time goes, service / baseline. CPU ms per request: of the Node process, of the PostgreSQL backends serving it.',
      '%core: share of one core during the run (the machine has ' + os.cpus().length + '); "other" is the rest of the machine (load generator,',
      'PostgreSQL background work, anything else running). Round trips and statements to PostgreSQL per request, counted through a proxy.',
      '',
    );
    const pair = (a: number | undefined, b: number | undefined, digits = 0) => `${fixed(a, digits)} / ${fixed(b, digits)}`;
    const other = (result: LoadResult) => {
      const { machine, target, postgres } = result.cpuPercent;
      return machine === undefined || target === undefined ? undefined : machine - target - (postgres ?? 0);
    };
    lines.push(
      table(
        ['operation', 'node CPU ms', 'PG CPU ms', 'node %core', 'PG %core', 'other %core', 'round trips', 'statements', 'p50 ms'],
        http.rows.map(({ label, service, baseline }) => {
          const trips = http.roundTrips?.find((row) => row.label === label);
          return [
            label,
            pair(service.cpuMsPerRequest.target, baseline.cpuMsPerRequest.target, 2),
            pair(service.cpuMsPerRequest.postgres, baseline.cpuMsPerRequest.postgres, 2),
            pair(service.cpuPercent.target, baseline.cpuPercent.target),
            pair(service.cpuPercent.postgres, baseline.cpuPercent.postgres),
            pair(other(service), other(baseline)),
            trips ? pair(trips.service.roundTrips, trips.baseline.roundTrips, 1) : 'n/a',
            trips ? pair(trips.service.statements, trips.baseline.statements, 1) : 'n/a',
            pair(service.p50Ms, baseline.p50Ms),
          ];
        }),
      ),
    );
    const failures = http.rows.flatMap(({ label, service, baseline }) =>
      [['service', service] as const, ['baseline', baseline] as const]
        .filter(([, result]) => result.failures.non2xx + result.failures.errors + result.failures.timeouts > 0)
        .map(([who, result]) => `${label} ${who}: ${JSON.stringify(result.failures)}`),
    );
    if (failures.length > 0) lines.push('', 'Requests that did not succeed (the figures above count successes only):', ...failures.map((f) => `  ${f}`));
    lines.push('', `Peak RSS (VmHWM): service ${fixed(http.serviceRss?.peakMb, 1)} MB, baseline ${fixed(http.baselineRss?.peakMb, 1)} MB`);
    for (const [who, rss] of [['service', http.serviceRss], ['baseline', http.baselineRss]] as const) {
      if (rss) lines.push(`  ${who.padEnd(8)} RSS now/peak: ${rss.marks.map((mark) => `${mark.label} ${fixed(mark.rssMb)}/${fixed(mark.peakMb)}`).join(', ')} MB`);
    }
  }
  for (const { label, service, baseline, files, requests } of http?.profiles ?? []) {
    lines.push('', `CPU profiles of the measured part of one ${label} run each (${files.join(', ')}):`, '');
    lines.push(formatSummary(service, 'service', 15, requests.service), '', formatSummary(baseline, 'baseline', 10, requests.baseline));
  }

  if (drain) {
    lines.push(
      '',
      `Mirror drain: ${drain.contacts} pending contacts, fake Pipedrive at 40 requests / 2 s, ${drain.workers} worker process(es), SYNC_CONCURRENCY ${drain.concurrency} each:`,
      `  backlog recorded through the API: ${fixed(drain.insert.requestsPerSecond)} req/s (10 connections, Pipedrive key set), p99 ${drain.insert.p99Ms} ms; Pipedrive calls meanwhile: ${drain.insert.pipedriveCallsDuringInsert}`,
      `  worker start to first Pipedrive request: ${fixed(drain.workerStartSeconds, 1)} s`,
      `  drained in ${fixed(drain.elapsedSeconds, 1)} s${drain.finished ? '' : ' (TIMED OUT)'}: ${drain.requests.total} requests, ${drain.requests.accepted} accepted, ${drain.requests.rejected429} answered 429; ${JSON.stringify(drain.requests.byRoute)}`,
      `  fixed windows: ${drain.windows.spanned} spanned, allowing ${40 * drain.windows.spanned}: ${drain.requests.accepted} accepted = ${fixed(drain.fractionOfLimit, 3)} of the limit; full windows used ${fixed(drain.windows.meanAcceptedInFullWindows, 1)} of 40 on average (min ${drain.windows.minAcceptedInFullWindows}); windows with a 429: ${drain.windows.withRejections} (${drain.windows.rejectedIn.join(', ') || 'none'}; the first is 0), at most ${drain.windows.mostRejectionsInOne} in one`,
      `  by elapsed time: ${fixed(drain.acceptedPerSecond, 2)} accepted req/s against ${fixed(drain.allowedPerSecond, 0)} allowed = ${fixed(drain.fractionOfRate, 3)}; ${fixed(drain.contactsPerSecond, 2)} contacts/s`,
      `  persons already in Pipedrive ${drain.existingPersons}; persons after the drain ${drain.persons}, duplicated ${drain.duplicates}, lost contacts ${drain.lost}, persons linked to no contact ${drain.orphanPersons}; statuses ${JSON.stringify(drain.statuses)}; contacts still queued ${drain.queuedLeft}`,
      `  Pipedrive tokens spent ${drain.tokens.spent} (${drain.tokens.perContact.toFixed(1)} per contact); search limited to 10 requests / 2 s`,
      `  peak RSS: API ${fixed(drain.peakRssMb.api, 1)} MB, worker ${fixed(drain.peakRssMb.worker, 1)} MB`,
    );
    const day = drain.budgetDay;
    if (day) {
      lines.push(
        `  budget day: ${day.dailyTokens} tokens a day of ${day.dayMs / 1000} s, reserve ${day.reserve}; the backlog queued as bulk work`,
        `    bulk work held back after ${fixed(day.heldAtSeconds ?? undefined, 1)} s with ${day.bulkSyncedWhenHeld} contacts synced and ${day.tokensLeftWhenHeld} tokens left`,
        `    ${day.live.written} live contacts written meanwhile: all synced within ${fixed(day.live.syncedWithinSeconds ?? undefined, 1)} s, while ${day.live.bulkSyncedMeanwhile} bulk contacts went`,
        `    days ended at ${day.dayEnds.map((end) => `${fixed(end.atSeconds, 0)} s (${end.bulkSynced} bulk synced)`).join(', ')}; the rest followed (statuses above)`,
      );
    }
  }

  if (inbound) lines.push(...inboundLines(inbound));

  if (killedAfterGrace.length > 0) lines.push('', `(!) killed after not stopping within the grace period of SIGTERM: ${killedAfterGrace.join(', ')}`);

  lines.push('', 'Targets:');
  if (http && http.rows.length > 0) {
    for (const operation of operations) {
      const row = http.rows.find((candidate) => candidate.label === operation.label);
      if (!row || operation.minRatio === undefined) continue;
      const throughput = ratio(row.service.requestsPerSecond, row.baseline.requestsPerSecond);
      check((throughput ?? 0) >= operation.minRatio, `${row.label} throughput >= ${operation.minRatio} of the baseline: ${fixed(throughput, 3)}`);
    }
    for (const operation of operations.filter((candidate) => !candidate.serviceFrom)) {
      const row = http.rows.find((candidate) => candidate.label === operation.label);
      if (!row) continue;
      const p99 = ratio(row.service.p99Ms, row.baseline.p99Ms);
      check(
        (p99 ?? Infinity) <= TARGETS.p99RatioToBaseline,
        `${row.label} p99 <= ${TARGETS.p99RatioToBaseline}x the baseline's at ${settings.connections} connections: ${row.service.p99Ms} / ${row.baseline.p99Ms} ms = ${fixed(p99, 2)}`,
      );
    }
    const peak = http.serviceRss?.peakMb ?? Infinity;
    check(peak < TARGETS.rssMb, `service peak RSS < ${TARGETS.rssMb} MB during the HTTP runs: ${fixed(peak, 1)} MB`);
  }
  if (drain) {
    const day = drain.budgetDay;
    if (day) {
      check(day.heldAtSeconds !== null && day.tokensLeftWhenHeld <= day.reserve, `bulk work stops at the reserve: ${day.tokensLeftWhenHeld} tokens left, reserve ${day.reserve}`);
      check(day.live.syncedWithinSeconds !== null && day.live.bulkSyncedMeanwhile === 0, `live changes go while bulk work waits: ${day.live.written} in ${fixed(day.live.syncedWithinSeconds ?? undefined, 1)} s, bulk meanwhile ${day.live.bulkSyncedMeanwhile}`);
      check(drain.finished && (drain.statuses.failed ?? 0) === 0, `nothing failed, the rest went after the reset: ${JSON.stringify(drain.statuses)}`);
    }
    // Rates and 429s mean little across a budget day's wait.
    if (!day) {
      const contactsTarget = TARGETS.drainFraction * drain.allowedPerSecond;
      // A link takes a read and an update: the rate target is for new contacts, one call each.
      if (drain.existingPersons === 0) check(drain.finished && drain.contactsPerSecond >= contactsTarget, `drain >= ${fixed(contactsTarget, 0)} contacts/s (${TARGETS.drainFraction} of ${fixed(drain.allowedPerSecond, 0)} requests/s): ${fixed(drain.contactsPerSecond, 2)}`);
      const workersTarget = drain.workers > 1 ? 1 : 0;
      check(
        drain.windows.mostRejectionsInOne <= workersTarget,
        `${drain.workers > 1 ? 'at most 1 answered 429 in any window' : 'no answer 429'} (${drain.workers} worker process(es)): ${drain.requests.rejected429} in all, at most ${drain.windows.mostRejectionsInOne} in one window`,
      );
      const tokensTarget = drain.existingPersons > 0 ? TARGETS.tokensPerContactHalfExisting : TARGETS.tokensPerNewContact;
      check(drain.tokens.perContact <= tokensTarget, `Pipedrive tokens per contact <= ${tokensTarget}: ${drain.tokens.perContact.toFixed(2)}`);
    }
    check(drain.duplicates === 0 && drain.lost === 0, `no lost or duplicated person: lost ${drain.lost}, duplicated ${drain.duplicates}`);
    check(Math.max(drain.peakRssMb.api, drain.peakRssMb.worker) < TARGETS.rssMb, `drain processes' peak RSS < ${TARGETS.rssMb} MB: API ${fixed(drain.peakRssMb.api, 1)} MB, worker ${fixed(drain.peakRssMb.worker, 1)} MB`);
  }
  if (inbound) {
    // No throughput or latency targets were set for the inbound side: only what must hold.
    const { processing: p, endToEnd: e } = inbound;
    check(p.drainedAfterLoadSeconds !== undefined && !Object.keys(p.outcomes).some((outcome) => outcome.startsWith('failed')), `inbound: every recorded delivery processed, none failed: ${p.waitingLeft} waiting, outcomes ${JSON.stringify(p.outcomes)}`);
    check(e.allShownSeconds !== undefined && e.lost === 0 && e.appliedTwice === 0 && e.unexpected === 0 && e.events === e.edits, `inbound: each of ${e.edits} edits in Pipedrive applied exactly once: ${e.events} events, lost ${e.lost}, twice ${e.appliedTwice}`);
    check(e.pipedriveCalls === 0 && e.queuedForMirror === 0, `inbound: nothing echoed back to Pipedrive: ${e.pipedriveCalls} calls, ${e.queuedForMirror} contacts queued`);
  }
  return { text: lines.join('\n'), missed };
}

async function main(): Promise<void> {
  const started = Date.now();
  const server = process.env.BENCH_DATABASE_URL ? { url: process.env.BENCH_DATABASE_URL, stop: async () => undefined } : await locateTestServer();
  cleanups.push(() => server.stop());
  const info = { ...machine(), postgres: `${await serverVersion(server.url)} at ${new URL(server.url).host}`, service: MODE === 'dist' ? 'node dist/server.js (built by the benchmark)' : 'node --import tsx src/server.ts' };
  log(`contact-sync benchmark: ${info.cpu}, ${info.memory}, Node ${info.node}, PostgreSQL ${info.postgres}`);

  if (MODE === 'dist' && !args['no-build']) {
    log('building dist/ (npm run build)');
    buildService();
  }

  const http = RUN_HTTP ? await runHttp(server.url) : undefined;
  const drain = RUN_DRAIN ? await runMirrorDrain(server.url) : undefined;
  const inbound = RUN_INBOUND ? await runInboundPart(server.url) : undefined;
  const { text, missed } = report({ ...info, 'total run time': `${Math.round((Date.now() - started) / 1000)} s` }, http, drain, inbound);
  log(text);

  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${info.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ info, settings, seed: SEED, http, drain, inbound, missed }, null, 2));
  log(`\nraw results: ${path.relative(REPO_ROOT, file)}`);
  if (args.strict && missed.length > 0) process.exitCode = 1;
}

main()
  .catch((error: unknown) => {
    console.error(`benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanUp();
    clearTimeout(watchdog);
  });
