import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { withClient } from './pg-admin';

// Two levels up from both src/db (ts-jest, tsx) and dist/db (compiled).
export const repoRoot = path.resolve(__dirname, '..', '..');
export const migrationsDirectory = path.join(repoRoot, 'prisma', 'migrations');

const UNDEFINED_TABLE = '42P01';

/** Applies pending migrations exactly as `prisma migrate deploy` does, by running the installed CLI. */
export async function applyMigrations(databaseUrl: string): Promise<void> {
  const { exitCode, output } = await runPrismaCli(['migrate', 'deploy'], databaseUrl);
  if (exitCode !== 0) {
    throw new Error(
      `prisma migrate deploy failed (exit code ${exitCode ?? 'none'}):\n${redactPassword(output, databaseUrl)}`,
    );
  }
}

/** Migration folders in prisma/migrations, oldest first. */
export async function localMigrations(): Promise<string[]> {
  const entries = await readdir(migrationsDirectory, { withFileTypes: true });
  return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
}

/** Migration folders not yet successfully applied to the database, oldest first. */
export async function listPendingMigrations(databaseUrl: string): Promise<string[]> {
  const [local, applied] = await Promise.all([localMigrations(), appliedMigrations(databaseUrl)]);
  return local.filter((name) => !applied.has(name));
}

async function appliedMigrations(databaseUrl: string): Promise<Set<string>> {
  return withClient(databaseUrl, async (client) => {
    try {
      const { rows } = await client.query<{ migration_name: string }>(
        `SELECT migration_name FROM _prisma_migrations
          WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
      );
      return new Set(rows.map((row) => row.migration_name));
    } catch (error) {
      // Prisma creates the table with the first migration it applies.
      if ((error as { code?: unknown }).code === UNDEFINED_TABLE) return new Set<string>();
      throw error;
    }
  });
}

/** Runs the installed Prisma CLI on `databaseUrl` (passed in the environment) and collects its output. */
export function runPrismaCli(
  args: string[],
  databaseUrl: string,
): Promise<{ exitCode: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [require.resolve('prisma/build/index.js'), ...args], {
      cwd: repoRoot,
      // The URL goes in the environment, never argv, where `ps` would show its password.
      // CHECKPOINT_DISABLE: no update check / telemetry call from a server or test run.
      env: { ...process.env, DATABASE_URL: databaseUrl, CHECKPOINT_DISABLE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.on('error', reject);
    child.on('close', (exitCode) => resolve({ exitCode, output: Buffer.concat(chunks).toString('utf8') }));
  });
}

/** `text` with the password of `databaseUrl` (as written and decoded) replaced by ***. */
export function redactPassword(text: string, databaseUrl: string): string {
  const secrets = new Set<string>();
  try {
    const { password } = new URL(databaseUrl);
    secrets.add(password);
    secrets.add(decodeURIComponent(password));
  } catch {
    // Unparsable URL or encoding: redact whatever form was obtained.
  }
  secrets.delete('');
  let redacted = text;
  for (const secret of secrets) redacted = redacted.split(secret).join('***');
  return redacted;
}
