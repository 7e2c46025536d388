import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT_HOME } from '../../src/db/embedded-postgres';
import { FakePipedrive } from '../../testkit/fake-pipedrive';
import { freePort, waitForStatus, type ServerProcess } from '../support/server-process';
import { waitFor } from '../support/wait-for';
import { fastMirrorEnv } from '../mirror/mirror-support';

const ROOT = path.resolve(__dirname, '../..');
const STOP_TIMEOUT_MS = 30_000;

interface Service extends ServerProcess {
  /** Ctrl-C on the terminal running `npm start`: SIGINT to its whole process group. Resolves with the exit code. */
  interrupt(): Promise<number | null>;
}

const running: Service[] = [];
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const service of running.splice(0)) {
    if (service.child.exitCode === null && service.child.signalCode === null) process.kill(-service.child.pid!, 'SIGKILL');
  }
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * `src/server.ts` run from `cwd` as `npm start` runs it, with nothing configured but `env`
 * and the debug log, where the embedded server's own messages go.
 */
function startService(cwd: string, env: Record<string, string>): Service {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LANG: process.env.LANG, NODE_ENV: 'test', LOG_LEVEL: 'debug', ...env },
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const service: Service = {
    child,
    baseUrl: `http://127.0.0.1:${env.PORT}`,
    output: () => output,
    exited,
    async interrupt() {
      process.kill(-child.pid!, 'SIGINT');
      const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), STOP_TIMEOUT_MS);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  running.push(service);
  return service;
}

/** The data folder the service's log says its embedded server runs on. */
function embeddedDataDir(service: Service): string {
  const line = service.output().split('\n').find((text) => text.includes('"embedded PostgreSQL is running"'));
  if (!line) throw new Error(`no "embedded PostgreSQL is running" line:\n${service.output()}`);
  return (JSON.parse(line) as { dataDir: string }).dataDir;
}

/** Stops a server left running in `dataDir` by a failed test (it runs in a session of its own). */
async function stopPostgresIn(dataDir: string): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  try {
    process.kill(Number(readFileSync(pidFile, 'utf8').split('\n')[0]), 'SIGINT');
  } catch {
    return; // killed with the service: a stale pid file
  }
  await waitFor('the embedded PostgreSQL to stop', () => !existsSync(pidFile), STOP_TIMEOUT_MS, 200);
}

async function createContact(service: Service, email: string): Promise<number> {
  const res = await fetch(`${service.baseUrl}/contact`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Embedded Ada', email }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { contact_id: number }).contact_id;
}

/** A clean stop: exit code 0, the server's fast shutdown in the log, and no session it had to cut. */
async function expectCleanStop(service: Service): Promise<void> {
  expect(await service.interrupt()).toBe(0);
  expect(service.output()).toMatch(/received fast shutdown request/);
  expect(service.output()).not.toMatch(/terminating connection due to administrator command/);
}

describe('the embedded PostgreSQL', () => {
  it('stops last on Ctrl-C: every pool (API, mirror worker) is closed first, so no connection is cut', async () => {
    const fake = await FakePipedrive.start();
    cleanups.push(() => fake.close());
    const dataParent = mkdtempSync(path.join(os.tmpdir(), 'contact-sync-embedded-'));
    // As root the embedded server runs as the postgres user, which must be able to enter this folder.
    chmodSync(dataParent, 0o755);
    const dataDir = path.join(dataParent, 'pg');
    cleanups.push(() => rmSync(dataParent, { recursive: true, force: true }), () => stopPostgresIn(dataDir));

    const service = startService(ROOT, {
      ...fastMirrorEnv(fake),
      PORT: String(await freePort()),
      EMBEDDED_POSTGRES_DIR: dataDir,
      EMBEDDED_POSTGRES_PORT: String(await freePort()),
    });
    await waitForStatus(service, '/contact/health', 200, 120_000);
    await createContact(service, 'ada@example.com');
    await waitFor('the contact to be mirrored by the worker', () => fake.persons.size === 1, 10_000);

    await expectCleanStop(service);
  }, 180_000);

  const asRoot = process.getuid?.() === 0;
  // Only root has PostgreSQL run as another user, which may not enter the folders root works in.
  (asRoot ? it : it.skip)('as root, runs from a clone in a folder only root may enter, and keeps its data across restarts', async () => {
    // Under the project, so that node_modules can be hard-linked rather than copied.
    mkdirSync(path.join(ROOT, '.data'), { recursive: true });
    const rootOnly = mkdtempSync(path.join(ROOT, '.data', 'root-only-'));
    expect(statSync(rootOnly).mode & 0o777).toBe(0o700);
    const project = path.join(rootOnly, path.basename(rootOnly));
    const dataFolders = () => (existsSync(ROOT_HOME) ? readdirSync(ROOT_HOME).filter((name) => name.startsWith(`${path.basename(project)}-`)) : []);
    cleanups.push(
      () => rmSync(rootOnly, { recursive: true, force: true }),
      () => dataFolders().forEach((name) => rmSync(path.join(ROOT_HOME, name), { recursive: true, force: true })),
    );
    mkdirSync(project);
    for (const entry of ['package.json', 'tsconfig.json', 'prisma.config.ts', 'prisma', 'src']) {
      cpSync(path.join(ROOT, entry), path.join(project, entry), { recursive: true });
    }
    execFileSync('cp', ['-al', path.join(ROOT, 'node_modules'), path.join(project, 'node_modules')]);
    // Build caches are written in place: hard links would write them into the original's files.
    rmSync(path.join(project, 'node_modules', '.cache'), { recursive: true, force: true });

    const env = { PORT: String(await freePort()), EMBEDDED_POSTGRES_PORT: String(await freePort()) };
    const first = startService(project, env);
    await waitForStatus(first, '/contact/health', 200, 120_000);
    const dataDir = embeddedDataDir(first);
    cleanups.push(() => stopPostgresIn(dataDir));
    expect(dataDir.startsWith(`${ROOT_HOME}/${path.basename(project)}-`)).toBe(true);
    expect(first.output()).toContain(`"binaries":"${ROOT_HOME}/`);
    const id = await createContact(first, 'kept@example.com');
    await expectCleanStop(first);

    const second = startService(project, env);
    await waitForStatus(second, '/contact/health', 200, 120_000);
    expect(embeddedDataDir(second)).toBe(dataDir);
    const kept = await fetch(`${second.baseUrl}/contact/${id}`);
    expect(kept.status).toBe(200);
    expect(await kept.json()).toMatchObject({ email: 'kept@example.com' });
    await expectCleanStop(second);
  }, 300_000);
});
