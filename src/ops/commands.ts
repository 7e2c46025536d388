import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Config } from '../config/config';
import { applyMigrations, localMigrations, migrationsDirectory, redactPassword, runPrismaCli } from '../db/migrate';
import { OpsError } from './errors';
import { cleanPrismaOutput, commentReminders, formatStatus, readMigrationState, type MigrationState } from './migrations';
import { psqlInvocation, runPsql } from './psql';
import { databaseName, withClient } from '../db/pg-admin';
import { createPrismaClient } from '../db/prisma';
import { TransactionScope } from '../db/transaction-scope';
import { MirrorRepository } from '../mirror/mirror.repository';
import { budgetDayStart } from '../mirror/token-budget';
import { stderrLogger } from './log';
import { assertConnects, type Target } from './target';

export interface Context {
  config: Config;
  target: Target;
  out(text: string): void;
  err(text: string): void;
}

/** A path as the operator would type it from the current folder. */
function shown(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}

function prismaFailure(what: string, result: { exitCode: number | null; output: string }, url: string): OpsError {
  return new OpsError(`${what} failed (exit code ${result.exitCode ?? 'none'})`, redactPassword(cleanPrismaOutput(result.output), url));
}

/** The connection check every command but psql starts with: a clear line instead of a hang. */
export async function connect(ctx: Context): Promise<void> {
  await assertConnects(ctx.target, Math.max(ctx.config.database.connectTimeoutMs, 5_000));
}

function assertNoFailedMigration(state: MigrationState): void {
  const [failed] = state.failed;
  if (!failed) return;
  throw new OpsError(
    `migration ${failed.name} failed (${failed.reason}) and blocks the others: fix it, then ` +
      `\`npm run ops -- resolve --rolled-back ${failed.name}\` (or --applied); see \`npm run ops -- status\``,
  );
}

export async function migrate(ctx: Context): Promise<number> {
  await connect(ctx);
  const state = await readMigrationState(ctx.target.url);
  assertNoFailedMigration(state);
  if (state.pending.length === 0) {
    ctx.out(`Nothing to apply: ${ctx.target.label} is up to date (${state.local.length} migrations).\n`);
    return 0;
  }
  ctx.out(`Applying ${state.pending.length} migration(s) to ${ctx.target.label}:\n${state.pending.map((name) => `  ${name}\n`).join('')}`);
  try {
    await applyMigrations(ctx.target.url);
  } catch (error) {
    // applyMigrations' message: a first line, then the CLI's output (password already masked).
    const [headline = 'prisma migrate deploy failed', ...rest] = (error as Error).message.split('\n');
    throw new OpsError(headline.replace(/:$/, ''), cleanPrismaOutput(rest.join('\n')));
  }
  ctx.out('Applied.\n');
  return 0;
}

export async function status(ctx: Context): Promise<number> {
  await connect(ctx);
  const state = await readMigrationState(ctx.target.url);
  ctx.out(formatStatus(state, ctx.target.label));
  return state.pending.length > 0 ? 1 : 0;
}

function refuseInProduction(ctx: Context, command: string, why: string): void {
  if (ctx.config.nodeEnv === 'production') {
    throw new OpsError(`refusing to run ${command}: NODE_ENV is production, and ${why}`);
  }
}

/** Whether the database user may create databases, which Prisma's shadow database needs. */
async function canCreateDatabases(url: string): Promise<{ user: string; allowed: boolean }> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ user: string; allowed: boolean }>(
      'SELECT current_user AS user, (rolcreatedb OR rolsuper) AS allowed FROM pg_roles WHERE rolname = current_user',
    );
    return rows[0] ?? { user: '?', allowed: false };
  });
}

export async function newMigration(ctx: Context, name: string): Promise<number> {
  refuseInProduction(ctx, 'new-migration', 'creating migrations is done on a development database');
  await connect(ctx);
  const { user, allowed } = await canCreateDatabases(ctx.target.url);
  if (!allowed) {
    throw new OpsError(
      `database user "${user}" may not create databases, and Prisma checks a new migration against a temporary ` +
        `"shadow" database: as a superuser, run ALTER ROLE "${user}" CREATEDB; (or use a development database where it may)`,
    );
  }
  const state = await readMigrationState(ctx.target.url);
  assertNoFailedMigration(state);
  if (state.pending.length > 0) {
    // prisma migrate dev applies them itself, but then fails in this setup (JavaScript schema
    // engine: "PostgreSQL shadow DB must be provided through an external factory").
    ctx.err(`Applying the ${state.pending.length} pending migration(s) first: ${state.pending.join(', ')}\n`);
    await migrate(ctx);
  }

  const before = new Set(await localMigrations());
  ctx.err('Running prisma migrate dev --create-only (about 10 s)...\n');
  const result = await runPrismaCli(['migrate', 'dev', '--create-only', '--name', name], ctx.target.url);
  const created = (await localMigrations()).filter((folder) => !before.has(folder));
  // Prisma 6.19's JavaScript schema engine writes the migration, then fails while shutting
  // down ("null pointer passed to rust"): the new folder, not the exit code, tells success.
  const [folder] = created;
  if (!folder) {
    if (/Drift detected/.test(result.output)) {
      throw new OpsError(
        'the database differs from what the migrations build (drift, below): on a development database, ' +
          '`npm run db:reset` and try again (no migration was written)',
        redactPassword(cleanPrismaOutput(result.output), ctx.target.url),
      );
    }
    throw prismaFailure('prisma migrate dev --create-only', result, ctx.target.url);
  }

  const file = path.join(migrationsDirectory, folder, 'migration.sql');
  await access(file);
  const sql = await readFile(file, 'utf8');
  const lines = [`Created ${shown(file)} (not applied).`, ''];
  if (!/^\s*(CREATE|ALTER|DROP|COMMENT|INSERT|UPDATE|DELETE)\b/im.test(sql)) {
    lines.push(
      'It is empty: prisma/schema.prisma has no change that the migrations lack. Write the SQL yourself',
      `(a data migration, say), or delete ${shown(path.dirname(file))}.`,
      '',
    );
  }
  const reminders = commentReminders(sql);
  lines.push('Next:', '  1. Review the SQL.');
  if (reminders.length > 0) {
    lines.push(
      '  2. Add a comment for each new table and column at the end of the file (psql shows them with \\d+;',
      '     test/db/migrations.test.ts fails without them):',
      ...reminders.map((reminder) => `       ${reminder}`),
    );
  } else {
    lines.push('  2. Add COMMENT ON TABLE / COMMENT ON COLUMN for anything new (test/db/migrations.test.ts checks them).');
  }
  lines.push('  3. Apply it: npm run db:migrate. Commit it together with prisma/schema.prisma.');
  ctx.out(`${lines.join('\n')}\n`);
  return 0;
}

async function confirmDatabaseName(ctx: Context, database: string): Promise<boolean> {
  ctx.err(
    `reset drops every table and row of database "${database}" (${ctx.target.label}) and re-applies the migrations.\n`,
  );
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(`Type the database name to confirm: `);
    return answer.trim() === database;
  } finally {
    prompt.close();
  }
}

/** Checked before anything else, whatever the options. */
export function assertResetAllowed(config: Config): void {
  if (config.nodeEnv === 'production') {
    throw new OpsError('refusing to reset: NODE_ENV is production; reset destroys every row and is for development databases only');
  }
}

export async function reset(ctx: Context, yes: boolean): Promise<number> {
  assertResetAllowed(ctx.config);
  if (!yes && !process.stdin.isTTY) {
    throw new OpsError('reset asks to type the database name on a terminal; in a script, pass --yes');
  }
  await connect(ctx);
  const database = databaseName(ctx.target.url);
  if (!yes && !(await confirmDatabaseName(ctx, database))) {
    throw new OpsError('not confirmed: nothing was changed');
  }
  ctx.err(`Resetting ${ctx.target.label} (about 15 s)...\n`);
  const result = await runPrismaCli(['migrate', 'reset', '--force', '--skip-generate', '--skip-seed'], ctx.target.url);
  if (result.exitCode !== 0) throw prismaFailure('prisma migrate reset', result, ctx.target.url);
  const state = await readMigrationState(ctx.target.url);
  ctx.out(
    `Reset ${ctx.target.label}: every table and row dropped; ${state.applied.size} migration(s) applied.\n`,
  );
  return 0;
}

export async function resolve(ctx: Context, how: 'applied' | 'rolled-back', name: string): Promise<number> {
  await connect(ctx);
  const local = await localMigrations();
  if (!local.includes(name)) {
    throw new OpsError(`no migration ${name} in prisma/migrations (the folder name, e.g. ${local.at(-1) ?? '20261122024836_init'})`);
  }
  if (how === 'rolled-back') {
    // What `prisma migrate resolve --rolled-back` does; with Prisma 6.19 that command insists
    // on the native schema engine, which cannot be downloaded here.
    const { rowCount } = await withClient(ctx.target.url, (client) =>
      client.query(
        `UPDATE _prisma_migrations SET rolled_back_at = now()
          WHERE migration_name = $1 AND finished_at IS NULL AND rolled_back_at IS NULL`,
        [name],
      ),
    ).catch((error: unknown) => {
      if ((error as { code?: unknown }).code === '42P01') return { rowCount: 0 };
      throw error;
    });
    if (!rowCount) throw new OpsError(`migration ${name} is not marked failed: nothing to roll back (see npm run ops -- status)`);
    ctx.out(`Marked ${name} rolled back: migrate will apply it again.\n`);
    return 0;
  }
  const result = await runPrismaCli(['migrate', 'resolve', '--applied', name], ctx.target.url);
  if (result.exitCode !== 0) throw prismaFailure('prisma migrate resolve --applied', result, ctx.target.url);
  ctx.out(`Marked ${name} applied.\n`);
  return 0;
}

export async function psql(ctx: Context, args: string[]): Promise<number> {
  return runPsql(psqlInvocation(ctx.target.url, args, process.env));
}

export type MirrorAction = { kind: 'pause'; minutes: number; reason: string } | { kind: 'resume' } | { kind: 'requeue-failed' };

/** The mirror's controls, through the service's own repository. */
export async function mirror(ctx: Context, action: MirrorAction): Promise<number> {
  await connect(ctx);
  const database = createPrismaClient({ ...ctx.config.database, url: ctx.target.url }, stderrLogger());
  const prisma = database.prisma;
  try {
    const store = new MirrorRepository(new TransactionScope(prisma));
    switch (action.kind) {
      case 'pause': {
        await store.pause(new Date(Date.now() + action.minutes * 60_000), action.reason);
        const { pause } = await store.overview(budgetDayStart(new Date(), ctx.config.pipedrive.budgetResetHourUtc));
        ctx.out(`Mirror paused until ${pause?.until.toISOString()} (${pause?.reason}). Nothing is lost: changes wait. End it with: mirror resume\n`);
        return 0;
      }
      case 'resume':
        ctx.out((await store.resume()) ? 'Mirror resumed.\n' : 'The mirror was not paused.\n');
        return 0;
      case 'requeue-failed': {
        const queued = await store.requeueFailed();
        ctx.out(`Queued again as bulk work: ${queued.contacts} contact(s) and ${queued.notes} note(s).\n`);
        return 0;
      }
    }
  } finally {
    await database.close();
  }
}
