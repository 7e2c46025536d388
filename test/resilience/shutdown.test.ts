import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { freePort, spawnServer, stopServer, waitForStatus, type ServerProcess } from '../support/server-process';
import { waitFor, waitForLockWaiters } from '../support/wait-for';

/**
 * The server process stopped with SIGTERM while clients keep creating contacts: what it accepted
 * it finishes and keeps, what it did not accept fails at the door, and it exits 0.
 */
const LOOPS = 12;

/**
 * The requests below wait on a row lock on purpose: timeouts long enough that they wait for it
 * rather than answer 503 (that the default timeouts give 503 is database-down.test.ts's part).
 */
const PATIENT_DATABASE = { DATABASE_QUERY_TIMEOUT_MS: '30000', DATABASE_CONNECT_TIMEOUT_MS: '30000' };

let server: ServerProcess | undefined;
const clients: pg.Client[] = [];

async function connect(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  clients.push(client);
  return client;
}

afterEach(async () => {
  if (server) await stopServer(server, 'SIGKILL');
  server = undefined;
  await Promise.all(clients.splice(0).map((client) => client.end().catch(() => undefined)));
});

/** Rows of this file carry it in their email. */
const tag = `shutdown-${randomBytes(4).toString('hex')}`;
let serial = 0;
const uniqueEmail = () => `lead${(serial += 1)}@${tag}.example.com`;

interface Outcome {
  email: string;
  startedAt: number;
  endedAt: number;
  status?: number;
  contactId?: number;
  /** Why no response came: the cause's code (ECONNREFUSED, UND_ERR_SOCKET, ...). */
  failure?: string;
}

async function post(baseUrl: string, path: string, body: unknown, method = 'POST'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const failureCode = (error: unknown): string => {
  const cause = (error as { cause?: { code?: string } }).cause;
  return cause?.code ?? (error instanceof Error ? error.message : String(error));
};

/** Loops creating contacts back to back (fetch: keep-alive connections, as real clients) until stopped. */
function startLoad(baseUrl: string) {
  const outcomes: Outcome[] = [];
  let stopping = false;
  const loops = Array.from({ length: LOOPS }, async () => {
    while (!stopping) {
      const outcome: Outcome = { email: uniqueEmail(), startedAt: performance.now(), endedAt: 0 };
      try {
        const res = await post(baseUrl, '/contact', { name: 'Load', email: outcome.email });
        outcome.status = res.status;
        outcome.contactId = res.body.contact_id as number;
      } catch (error) {
        outcome.failure = failureCode(error);
        await sleep(20);
      }
      outcome.endedAt = performance.now();
      outcomes.push(outcome);
    }
  });
  return {
    outcomes,
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
    },
  };
}

/** `promise`'s value, or `otherwise` when it takes longer than `ms`. */
async function within<T>(promise: Promise<T>, ms: number, otherwise: string): Promise<T | string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(otherwise), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with the error code of a fresh TCP connection to `port`, or 'connected'. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

describe('SIGTERM under load', () => {
  it('finishes what it accepted, keeps every row it answered 201 for, refuses new connections, and exits 0', async () => {
    const port = await freePort();
    // No rate limit: the load comes from one address.
    server = spawnServer({ DATABASE_URL: process.env.DATABASE_URL!, PORT: String(port), LOG_LEVEL: 'warn', RATE_LIMIT_MAX: '0', ...PATIENT_DATABASE });
    const { baseUrl } = server;
    await waitForStatus(server, '/contact/health', 200, 60_000);
    const lockedEmail = uniqueEmail();
    const seeded = await post(baseUrl, '/contact', { name: 'Locked', email: lockedEmail });
    expect(seeded.status).toBe(201);
    const lockedId = seeded.body.contact_id as number;

    const load = startLoad(baseUrl);
    await waitFor('the load to get going', () => load.outcomes.filter((o) => o.status === 201).length >= 50, 20_000);

    // A request that cannot finish yet: its UPDATE waits for a row lock this session holds.
    const holder = await connect();
    await holder.query('BEGIN');
    await holder.query('SELECT id FROM contacts WHERE id = $1 FOR UPDATE', [lockedId]);
    const slow = post(baseUrl, '/contact', { contact_id: lockedId, fields: { name: 'Patched during shutdown' } }, 'PATCH').then(
      (res) => ({ ...res, at: performance.now() }),
    );
    const observer = await connect();
    await waitForLockWaiters(observer, 1, 'the PATCH to wait for the row lock');

    const sigtermAt = performance.now();
    server.child.kill('SIGTERM');
    // New connections are refused from now on, while the PATCH is still waiting.
    const refusedAt = await waitFor(
      'new connections to be refused',
      async () => ((await tryConnect(port)) === 'ECONNREFUSED' ? performance.now() : 0),
      2_000,
      5,
    );
    const stillRunningWhenRefusing = server.child.exitCode === null;
    await holder.query('COMMIT');
    const releasedAt = performance.now();
    const patched = await slow;
    const exitCode = await within(server.exited, 15_000, 'still running 15 s after SIGTERM');
    const exitedAt = performance.now();
    await load.stop();

    const { outcomes } = load;
    const answered = outcomes.filter((o) => o.status !== undefined);
    const failed = outcomes.filter((o) => o.failure !== undefined);
    const failures = [...new Set(failed.map((o) => o.failure!))];
    const { rows } = await observer.query<{ id: number; email: string; name: string }>(
      'SELECT id, email, name FROM contacts WHERE email LIKE $1',
      [`%@${tag}.example.com`],
    );
    const byEmail = new Map(rows.map((row) => [row.email, row]));
    if (process.env.RESILIENCE_REPORT) {
      console.info(
        JSON.stringify({
          answered: answered.length,
          failedToConnect: failed.length,
          failures,
          failedButStored: failed.filter((o) => byEmail.has(o.email)).length,
          non201: answered.filter((o) => o.status !== 201).length,
          inFlightAtSigtermAnswered201: answered.filter((o) => o.startedAt < sigtermAt && o.endedAt > sigtermAt && o.status === 201).length,
          startedAfterSigtermAnswered: answered.filter((o) => o.startedAt > sigtermAt).length,
          refusingNewConnectionsAfterMs: Math.round(refusedAt - sigtermAt),
          patchAnsweredAfterLockReleasedMs: Math.round(patched.at - releasedAt),
          exitedAfterSigtermMs: Math.round(exitedAt - sigtermAt),
          exitCode,
        }),
      );
    }

    // It stopped taking connections at once, but waited for the PATCH, then exited 0: drained,
    // well within the grace period after which connections are cut.
    expect(stillRunningWhenRefusing).toBe(true);
    expect(patched.status).toBe(200);
    expect(patched.body.contact).toMatchObject({ id: lockedId, name: 'Patched during shutdown' });
    expect({ exitCode, output: exitCode === 0 ? '' : server.output() }).toEqual({ exitCode: 0, output: '' });
    expect(exitedAt - sigtermAt).toBeLessThan(5_000);
    expect(server.output()).not.toMatch(/"level":(50|60)/);

    // Every response was a success: no 5xx, no request cut half-way by the shutdown.
    expect(answered.filter((o) => o.status !== 201)).toEqual([]);
    // What got no response was not accepted: refused at connect, or its idle keep-alive
    // connection closed before the request was read; none of them left a row.
    expect(failures.filter((code) => !['ECONNREFUSED', 'UND_ERR_SOCKET', 'ECONNRESET'].includes(code))).toEqual([]);
    expect(failed.filter((o) => byEmail.has(o.email))).toEqual([]);
    // Every 201 has its row, and nothing else was written: the load's rows, plus the locked one.
    for (const outcome of answered) expect(byEmail.get(outcome.email)?.id).toBe(outcome.contactId);
    expect(rows).toHaveLength(answered.length + 1);
    expect(byEmail.get(lockedEmail)?.name).toBe('Patched during shutdown');
  }, 90_000);

  it('finishes requests whose clients went away before closing the database, and exits 0', async () => {
    const port = await freePort();
    // A pool smaller than the requests: some of them are waiting for a connection at SIGTERM.
    server = spawnServer({
      DATABASE_URL: process.env.DATABASE_URL!,
      PORT: String(port),
      LOG_LEVEL: 'warn',
      RATE_LIMIT_MAX: '0',
      DATABASE_POOL_SIZE: '2',
      ...PATIENT_DATABASE,
    });
    const { baseUrl } = server;
    await waitForStatus(server, '/contact/health', 200, 60_000);
    const seeded = await post(baseUrl, '/contact', { name: 'Locked', email: uniqueEmail() });
    expect(seeded.status).toBe(201);
    const lockedId = seeded.body.contact_id as number;

    const holder = await connect();
    await holder.query('BEGIN');
    await holder.query('SELECT id FROM contacts WHERE id = $1 FOR UPDATE', [lockedId]);
    const clients = Array.from({ length: 6 }, () => new AbortController());
    const abandoned = clients.map((client, i) =>
      fetch(`${baseUrl}/contact`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ contact_id: lockedId, fields: { name: `Patch ${i}` } }),
        signal: client.signal,
      }).catch((error: unknown) => (error as Error).name),
    );
    const observer = await connect();
    await waitForLockWaiters(observer, 2, 'both pooled connections to wait for the row lock');
    // Every client gives up: their connections close, and nothing the server holds says the
    // requests are still running.
    clients.forEach((client) => client.abort());
    expect(await Promise.all(abandoned)).toEqual(clients.map(() => 'AbortError'));

    const sigtermAt = performance.now();
    server.child.kill('SIGTERM');
    await sleep(500);
    const runningWhileLocked = server.child.exitCode === null;
    await holder.query('COMMIT');
    const exitCode = await within(server.exited, 15_000, 'still running 15 s after SIGTERM');
    const exitedAfterMs = Math.round(performance.now() - sigtermAt);
    if (process.env.RESILIENCE_REPORT) console.info(JSON.stringify({ abandonedRequests: clients.length, exitedAfterMs, exitCode }));

    expect(runningWhileLocked).toBe(true);
    expect({ exitCode, output: exitCode === 0 ? '' : server.output() }).toEqual({ exitCode: 0, output: '' });
    expect(server.output()).not.toMatch(/"level":(50|60)/);
    // Every abandoned PATCH was carried out, with its audit event.
    const { rows } = await observer.query<{ name: string }>(
      `SELECT payload->'changes'->>'name' AS name FROM contact_events WHERE contact_id = $1 AND type = 'updated'`,
      [lockedId],
    );
    expect(rows.map((row) => row.name).sort()).toEqual(clients.map((_, i) => `Patch ${i}`).sort());
  }, 90_000);
});
