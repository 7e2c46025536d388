import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { withClient } from '../db/pg-admin';
import type { Config } from '../config/config';
import { redactDatabaseUrl } from '../config/database-url';
import { embeddedDataFolder, type EmbeddedPostgresOptions } from '../db/embedded-postgres';
import { redactPassword } from '../db/migrate';
import { OpsError } from './errors';

/** The database a command acts on. */
export interface Target {
  url: string;
  /** The URL with its password masked: safe to print. */
  label: string;
  embedded: boolean;
  /** Stops the embedded PostgreSQL when this command started it; nothing otherwise. */
  stop(): Promise<void>;
}

/** The service's database for the embedded PostgreSQL (as in provisionDatabase). */
export const EMBEDDED_DATABASE = 'contacts';

/**
 * The database the service would use: DATABASE_URL, else POSTGRES_* (both through loadConfig),
 * else the embedded PostgreSQL in EMBEDDED_POSTGRES_DIR on EMBEDDED_POSTGRES_PORT, started for
 * this command (or reused when the service already runs it) and stopped afterwards.
 */
export async function openTarget(config: Config['database'], say: (line: string) => void): Promise<Target> {
  if (config.url) {
    return { url: config.url, label: redactDatabaseUrl(config.url), embedded: false, stop: async () => undefined };
  }
  const { dataDir, port } = config.embedded;
  say(
    `No database configured (DATABASE_URL or POSTGRES_HOST): using the embedded PostgreSQL ` +
      `(data ${embeddedDataFolder(dataDir)}, port ${port}, database "${EMBEDDED_DATABASE}"), as npm start does.`,
  );
  const running = await startEmbeddedInBackground({ dataDir, port, database: EMBEDDED_DATABASE });
  // Its password is a fixed local one (src/db/embedded-postgres.ts); masked all the same.
  return { url: running.url, label: redactDatabaseUrl(running.url), embedded: true, stop: () => running.stop() };
}

const EMBEDDED_STOP_TIMEOUT_MS = 30_000;

/**
 * Starts the embedded PostgreSQL (startEmbeddedPostgres, as npm start does) in a detached
 * child process, src/ops/embedded-server.ts: in this process's terminal group, Ctrl-C
 * would shut the server down under psql.
 */
async function startEmbeddedInBackground(options: EmbeddedPostgresOptions): Promise<{ url: string; stop(): Promise<void> }> {
  // The same runner as this file's: tsx's loader in development (execArgv), node for dist/.
  const script = path.join(__dirname, `embedded-server${path.extname(__filename)}`);
  const child = spawn(process.execPath, [...process.execArgv, script, JSON.stringify(options)], {
    detached: true,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (message: { url?: string; error?: string }) =>
      message.url ? resolve(message.url) : reject(new OpsError(message.error ?? 'the embedded PostgreSQL did not start')),
    );
    child.once('error', reject);
    void exited.then((code) => reject(new OpsError(`the embedded PostgreSQL did not start (exit code ${code ?? 'none'})`)));
  });
  return { url, stop: () => stopChild(child, exited) };
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  if (child.connected) child.send('stop');
  const timer = setTimeout(() => child.kill('SIGTERM'), EMBEDDED_STOP_TIMEOUT_MS);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Fails with one clear line when the database does not accept a connection within `timeoutMs`. */
export async function assertConnects(target: Target, timeoutMs: number): Promise<void> {
  try {
    await withClient(target.url, async () => undefined, { connectTimeoutMs: timeoutMs });
  } catch (error) {
    const reason = error instanceof Error && error.message ? error.message : String(error);
    throw new OpsError(`cannot connect to ${target.label}: ${redactPassword(reason, target.url)}`);
  }
}

