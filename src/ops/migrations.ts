import { listPendingMigrations, localMigrations } from '../db/migrate';
import { withClient } from '../db/pg-admin';

const UNDEFINED_TABLE = '42P01';

export interface FailedMigration {
  name: string;
  startedAt: Date;
  /** The first lines of what Prisma recorded about the failure. */
  reason: string;
}

/** Where the database stands against prisma/migrations. */
export interface MigrationState {
  /** Migration folders in prisma/migrations, oldest first. */
  local: string[];
  /** Applied successfully (and not rolled back), with when. */
  applied: Map<string, Date>;
  /** Local migrations not applied: what the service and `migrate` would apply (failed ones included). */
  pending: string[];
  /** Pending migrations whose last attempt failed: `prisma migrate deploy` refuses to go on (P3009). */
  failed: FailedMigration[];
  /** Applied to the database but absent from prisma/migrations (another branch?). */
  unknown: string[];
}

interface HistoryRow {
  migration_name: string;
  started_at: Date;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  logs: string | null;
}

async function history(url: string): Promise<HistoryRow[]> {
  return withClient(url, async (client) => {
    try {
      const { rows } = await client.query<HistoryRow>(
        `SELECT migration_name, started_at, finished_at, rolled_back_at, logs
           FROM _prisma_migrations ORDER BY started_at`,
      );
      return rows;
    } catch (error) {
      // Prisma creates the table with the first migration it applies.
      if ((error as { code?: unknown }).code === UNDEFINED_TABLE) return [];
      throw error;
    }
  });
}

function failureReason(logs: string | null): string {
  const lines = (logs ?? '').split('\n').map((line) => line.trim()).filter(Boolean);
  const reason = lines.slice(0, 2).join(': ');
  return reason.length > 200 ? `${reason.slice(0, 199)}…` : reason || 'no log recorded';
}

export async function readMigrationState(url: string): Promise<MigrationState> {
  // Pending is decided exactly as at the service's start-up (src/db/database.ts).
  const [local, pending, rows] = await Promise.all([localMigrations(), listPendingMigrations(url), history(url)]);
  const applied = new Map<string, Date>();
  for (const row of rows) {
    if (row.finished_at && !row.rolled_back_at) applied.set(row.migration_name, row.finished_at);
  }
  const failedRows = new Map<string, HistoryRow>();
  for (const row of rows) {
    if (!row.finished_at && !row.rolled_back_at && !applied.has(row.migration_name)) failedRows.set(row.migration_name, row);
  }
  const failed = pending.flatMap((name) => {
    const row = failedRows.get(name);
    return row ? [{ name, startedAt: row.started_at, reason: failureReason(row.logs) }] : [];
  });
  const unknown = [...applied.keys()].filter((name) => !local.includes(name));
  return { local, applied, pending, failed, unknown };
}

const timestamp = (date: Date) => `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;

/** The `status` report, one migration a line. */
export function formatStatus(state: MigrationState, label: string): string {
  const width = Math.max(0, ...state.local.map((name) => name.length), ...state.unknown.map((name) => name.length));
  const failedByName = new Map(state.failed.map((failure) => [failure.name, failure]));
  const lines = [`Database: ${label}`, ''];
  for (const name of state.local) {
    const applied = state.applied.get(name);
    const failure = failedByName.get(name);
    if (applied) lines.push(`  applied    ${name.padEnd(width)}  ${timestamp(applied)}`);
    else if (failure) lines.push(`  FAILED     ${name.padEnd(width)}  started ${timestamp(failure.startedAt)}: ${failure.reason}`);
    else lines.push(`  pending    ${name}`);
  }
  for (const name of state.unknown) {
    lines.push(`  not local  ${name.padEnd(width)}  applied to the database, missing from prisma/migrations`);
  }
  lines.push('');
  const waiting = state.pending.length - state.failed.length;
  lines.push(
    `${state.local.length} migration(s): ${state.applied.size - state.unknown.length} applied, ${waiting} pending, ${state.failed.length} failed.`,
  );
  if (state.failed.length > 0) {
    lines.push(
      'A failed migration blocks every later one. Fix its cause, then mark it: ' +
        '`npm run ops -- resolve --rolled-back <migration>` (it left nothing behind) or ' +
        '`--applied <migration>` (you completed it by hand); see docs/operators.md.',
    );
  } else if (waiting > 0) {
    lines.push('Apply them with `npm run db:migrate` (npm start also does, unless AUTO_MIGRATE=false).');
  } else {
    lines.push('The database is up to date.');
  }
  return `${lines.join('\n')}\n`;
}

/** Lines of the Prisma CLI's output that say nothing to an operator of this project. */
const PRISMA_NOISE = [
  /^Loaded Prisma config from /,
  /^Prisma config detected, skipping environment variable loading/,
  /^Prisma schema loaded from /,
  /^Datasource "db": /,
  /^WARNING: Your schema specifies the following datasource properties but you are using a Driver Adapter/,
  /^- url$/,
  /^The values from your schema will NOT be used!$/,
  /^We recommend you to remove those properties from your schema/,
  /^\d+ migrations? found in prisma\/migrations$/,
];

/** The Prisma CLI's output without colours, boilerplate and runs of blank lines. */
export function cleanPrismaOutput(output: string): string {
  // eslint-disable-next-line no-control-regex
  const lines = output.replace(/\x1b\[[0-9;]*m/g, '').split('\n').map((line) => line.trimEnd());
  const kept = lines.filter((line) => !PRISMA_NOISE.some((pattern) => pattern.test(line.trim())));
  return kept.join('\n').replace(/\n{3,}/g, '\n\n').trim();
}

/**
 * `COMMENT ON` statements to write for the tables and columns a generated migration adds
 * (every table and column carries one; test/db/migrations.test.ts checks it).
 */
export function commentReminders(sql: string): string[] {
  const withoutComments = sql.replace(/--.*$/gm, '');
  const reminders: string[] = [];
  for (const statement of withoutComments.split(';')) {
    const text = statement.trim();
    const created = /^CREATE TABLE\s+"([^"]+)"\s*\(([\s\S]*)\)$/i.exec(text);
    if (created) {
      const [, table, body = ''] = created;
      reminders.push(`COMMENT ON TABLE "${table}" IS '…';`);
      for (const column of body.matchAll(/^\s*"([^"]+)"\s+\S/gm)) reminders.push(`COMMENT ON COLUMN "${table}"."${column[1]}" IS '…';`);
      continue;
    }
    const altered = /^ALTER TABLE\s+"([^"]+)"\s+([\s\S]*)$/i.exec(text);
    if (altered) {
      const [, table, changes = ''] = altered;
      for (const column of changes.matchAll(/ADD COLUMN\s+"([^"]+)"/gi)) reminders.push(`COMMENT ON COLUMN "${table}"."${column[1]}" IS '…';`);
    }
  }
  return reminders;
}
