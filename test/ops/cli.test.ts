import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { parseCommandLine } from '../../src/ops/cli';
import { cleanPrismaOutput, commentReminders } from '../../src/ops/migrations';
import { connectionEnvironment, psqlInvocation } from '../../src/ops/psql';
import { createScratchDatabase, dropDatabase } from '../../testkit/postgres-server';
import { ROOT, runCli, type Result } from '../support/run-cli';

// The Prisma CLI's migrate deploy and reset take about 12 s each here.
jest.setTimeout(60_000);

const MIGRATIONS = path.join(ROOT, 'prisma', 'migrations');
const adminUrl = process.env.TEST_ADMIN_DATABASE_URL!;
const COMMANDS = ['migrate', 'status', 'new-migration', 'reset', 'resolve', 'psql', 'mirror', 'pipedrive', 'import-csv'];

async function localMigrationNames(): Promise<string[]> {
  return (await readdir(MIGRATIONS, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}

/** The URL with a password; the test server trusts local connections, so it is ignored there. */
function withPassword(url: string, password: string): string {
  const parsed = new URL(url);
  parsed.password = password;
  return parsed.toString();
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

const secret = () => `ops_secret_${randomBytes(6).toString('hex')}`;

describe('usage', () => {
  test('--help lists every command, and exits 0', async () => {
    const { code, stdout } = await runCli(['--help'], {});
    expect(code).toBe(0);
    for (const command of COMMANDS) expect(stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  });

  test('<command> --help explains the command', async () => {
    const { code, stdout } = await runCli(['reset', '--help'], {});
    expect(code).toBe(0);
    expect(stdout).toContain('--yes');
    expect(stdout).toContain('NODE_ENV=production');
  });

  test('an unknown command exits 2 with the usage on stderr', async () => {
    const { code, stdout, stderr } = await runCli(['frobnicate'], {});
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^error: unknown command "frobnicate"\n/);
    for (const command of COMMANDS) expect(stderr).toContain(command);
  });

  test('no command, an unknown option or a bad migration name exit 2', async () => {
    expect((await runCli([], {})).code).toBe(2);
    const unknownOption = await runCli(['reset', '--force'], {});
    expect(unknownOption.code).toBe(2);
    expect(unknownOption.stderr).toMatch(/^error: unknown option "--force"/);
    expect((await runCli(['new-migration'], {})).code).toBe(2);
    expect((await runCli(['new-migration', 'add company'], {})).code).toBe(2);
  });

  test('psql passes its options through as they are, -h included', () => {
    expect(parseCommandLine(['psql', '-h', 'elsewhere', '-c', 'select 1'])).toEqual({ kind: 'psql', args: ['-h', 'elsewhere', '-c', 'select 1'] });
    expect(parseCommandLine(['psql', '--help'])).toEqual({ kind: 'help', command: 'psql' });
    expect(parseCommandLine(['psql', '--', '--help'])).toEqual({ kind: 'psql', args: ['--help'] });
    expect(parseCommandLine(['new-migration', '--name', 'add_company'])).toEqual({ kind: 'new-migration', name: 'add_company' });
  });

  test('mirror: pause needs whole minutes; its options go with pause only; an unknown action exits 2', async () => {
    expect(parseCommandLine(['mirror', 'pause', '--for', '30'])).toEqual({
      kind: 'mirror',
      action: { kind: 'pause', minutes: 30, reason: 'paused by an operator' },
    });
    expect(parseCommandLine(['mirror', 'requeue-failed'])).toEqual({ kind: 'mirror', action: { kind: 'requeue-failed' } });
    for (const args of [['mirror'], ['mirror', 'pause'], ['mirror', 'pause', '--for', '0'], ['mirror', 'pause', '--for', '1.5'], ['mirror', 'resume', '--for', '5']]) {
      expect(() => parseCommandLine(args)).toThrow(/pause|--for/);
    }
    const unknown = await runCli(['mirror', 'stop'], {});
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^error: unknown mirror action "stop"/);
  });
});

describe('the psql invocation', () => {
  const url = 'postgresql://app%20user:p%40ss%2Fw%23rd@db.internal:6543/contacts?sslmode=require&application_name=ops';

  test('carries the connection in PG* variables, the password decoded', () => {
    expect(connectionEnvironment(url)).toEqual({
      PGHOST: 'db.internal',
      PGPORT: '6543',
      PGUSER: 'app user',
      PGPASSWORD: 'p@ss/w#rd',
      PGDATABASE: 'contacts',
      PGSSLMODE: 'require',
      PGAPPNAME: 'ops',
    });
    expect(connectionEnvironment('postgresql://postgres@127.0.0.1/db?host=/var/run/postgresql')).toMatchObject({
      PGHOST: '/var/run/postgresql',
      PGPORT: '5432',
      PGDATABASE: 'db',
    });
  });

  test('puts only the operator’s arguments on the command line, and drops the shell’s PG* variables', () => {
    const invocation = psqlInvocation(url, ['-c', 'select 42'], { PATH: '/usr/bin', PGSERVICE: 'prod', PGPASSWORD: 'other' });
    expect(invocation.command).toBe('psql');
    expect(invocation.args).toEqual(['-c', 'select 42']);
    for (const arg of invocation.args) {
      expect(arg).not.toContain('p@ss');
      expect(arg).not.toContain('p%40ss');
    }
    expect(invocation.env.PGSERVICE).toBeUndefined();
    expect(invocation.env.PGPASSWORD).toBe('p@ss/w#rd');
    expect(invocation.env.PATH).toBe('/usr/bin');
  });
});

describe('helpers', () => {
  test('commentReminders names the new tables and columns of a generated migration', () => {
    const sql = `-- AlterTable
ALTER TABLE "contacts" ADD COLUMN     "company" TEXT,
ADD COLUMN     "title" VARCHAR(100);

-- CreateTable
CREATE TABLE "tags" (
    "id" SERIAL NOT NULL,
    "label" TEXT NOT NULL,

    CONSTRAINT "tags_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "tags_label_idx" ON "tags"("label");
`;
    expect(commentReminders(sql)).toEqual([
      `COMMENT ON COLUMN "contacts"."company" IS '…';`,
      `COMMENT ON COLUMN "contacts"."title" IS '…';`,
      `COMMENT ON TABLE "tags" IS '…';`,
      `COMMENT ON COLUMN "tags"."id" IS '…';`,
      `COMMENT ON COLUMN "tags"."label" IS '…';`,
    ]);
  });

  test('cleanPrismaOutput keeps the error and drops the boilerplate', () => {
    const output = `Loaded Prisma config from prisma.config.ts.\n\nPrisma schema loaded from prisma/schema.prisma\nDatasource "db": PostgreSQL database "x"\n\nWARNING: Your schema specifies the following datasource properties but you are using a Driver Adapter via prisma.config.ts:\n- url\n\nThe values from your schema will NOT be used!\n\n3 migrations found in prisma/migrations\nError: P3009\n\nmigrate found failed migrations`;
    expect(cleanPrismaOutput(output)).toBe('Error: P3009\n\nmigrate found failed migrations');
  });
});

// One database through the whole life cycle, in order.
describe('on a scratch database', () => {
  const password = secret();
  let databaseUrl: string;
  let cliUrl: string;
  let local: string[];

  /** Runs the CLI on the scratch database; nothing it prints may contain the password. */
  async function ops(args: string[], env: Record<string, string> = {}): Promise<Result> {
    const result = await runCli(args, { DATABASE_URL: cliUrl, ...env });
    expect(`${result.stdout}${result.stderr}`).not.toContain(password);
    return result;
  }

  beforeAll(async () => {
    databaseUrl = await createScratchDatabase(adminUrl, 'contact_sync_ops');
    cliUrl = withPassword(databaseUrl, password);
    local = await localMigrationNames();
  });

  afterAll(async () => {
    await dropDatabase(adminUrl, databaseUrl);
  });

  test('status on an empty database exits 1 and names every pending migration', async () => {
    const { code, stdout } = await ops(['status']);
    expect(code).toBe(1);
    expect(local.length).toBeGreaterThan(0);
    for (const name of local) expect(stdout).toMatch(new RegExp(`^  pending +${name}$`, 'm'));
    expect(stdout).toContain('***');
  });

  test('migrate applies them; status then exits 0', async () => {
    const migrated = await ops(['migrate']);
    expect(migrated.stderr).toBe('');
    expect(migrated.code).toBe(0);
    for (const name of local) expect(migrated.stdout).toContain(name);

    const { code, stdout } = await ops(['status']);
    expect(code).toBe(0);
    for (const name of local) expect(stdout).toMatch(new RegExp(`^  applied +${name} `, 'm'));
    const applied = await query<{ migration_name: string }>(databaseUrl, 'SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL');
    expect(applied.map((row) => row.migration_name).sort()).toEqual(local);
  });

  test('reset refuses when NODE_ENV=production, even with --yes, and leaves the data', async () => {
    await query(databaseUrl, "INSERT INTO contacts (name, email) VALUES ('Ada Lovelace', 'ada@example.com')");

    const refused = await ops(['reset', '--yes'], { NODE_ENV: 'production', API_KEYS: 'production-key' });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/^error: refusing to reset: NODE_ENV is production/);

    const unconfirmed = await ops(['reset']); // no terminal to confirm on, no --yes
    expect(unconfirmed.code).toBe(1);
    expect(unconfirmed.stderr).toContain('--yes');

    expect(await query(databaseUrl, 'SELECT name FROM contacts')).toEqual([{ name: 'Ada Lovelace' }]);
  });

  test('reset --yes in development empties the tables, the mirror queue and pause, and re-applies the migrations', async () => {
    await query(databaseUrl, `INSERT INTO mirror_pause (paused_until, reason) VALUES (now() + interval '1 hour', 'test')`);
    expect(await query(databaseUrl, 'SELECT count(*)::int AS n FROM contacts')).toEqual([{ n: 1 }]);

    const { code, stdout } = await ops(['reset', '--yes']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Reset postgresql:\/\/.*\*\*\*.*: every table and row dropped/);

    expect(await query(databaseUrl, 'SELECT count(*)::int AS n FROM contacts')).toEqual([{ n: 0 }]);
    expect(await query(databaseUrl, 'SELECT count(*)::int AS n FROM mirror_pause')).toEqual([{ n: 0 }]);
    expect((await ops(['status'])).code).toBe(0);
  });

  test('mirror pause, resume and requeue-failed act on the state of the mirror', async () => {
    await query(databaseUrl, "INSERT INTO contacts (name, sync_status) VALUES ('Failed', 'failed'), ('Synced', 'synced')");
    await query(databaseUrl, "INSERT INTO notes (contact_id, content, sync_status) SELECT id, 'failed note', 'failed' FROM contacts WHERE name = 'Synced'");

    const paused = await ops(['mirror', 'pause', '--for', '30', '--reason', 'CRM maintenance']);
    expect(paused.code).toBe(0);
    expect(paused.stdout).toMatch(/^Mirror paused until \S+ \(CRM maintenance\)/);
    const [pause] = await query<{ minutes: number; reason: string }>(
      databaseUrl, 'SELECT round(extract(epoch FROM paused_until - now()) / 60)::int AS minutes, reason FROM mirror_pause');
    expect(pause).toEqual({ minutes: 30, reason: 'CRM maintenance' });

    expect((await ops(['mirror', 'resume'])).stdout).toBe('Mirror resumed.\n');
    expect((await ops(['mirror', 'resume'])).stdout).toBe('The mirror was not paused.\n');

    const requeued = await ops(['mirror', 'requeue-failed']);
    expect(requeued.stdout).toBe('Queued again as bulk work: 1 contact(s) and 1 note(s).\n');
    const rows = await query(databaseUrl, 'SELECT name, sync_status::text, mirror_priority, mirror_due_at IS NOT NULL AS due FROM contacts ORDER BY id');
    expect(rows).toEqual([
      { name: 'Failed', sync_status: 'pending', mirror_priority: 1, due: true },
      { name: 'Synced', sync_status: 'synced', mirror_priority: 1, due: true },
    ]);
    expect(await query(databaseUrl, 'SELECT sync_status::text FROM notes')).toEqual([{ sync_status: 'pending' }]);
    await query(databaseUrl, 'TRUNCATE contacts CASCADE');
  });

  test('psql -c runs a query on the database', async () => {
    const { code, stdout } = await ops(['psql', '-X', '-At', '-c', 'select 42', '-c', 'select current_database()']);
    expect(code).toBe(0);
    expect(stdout).toBe(`42\n${new URL(databaseUrl).pathname.slice(1)}\n`);
  });

  test('a failed migration: status shows it, migrate refuses, resolve settles it', async () => {
    const last = local.at(-1)!;
    await query(databaseUrl, "UPDATE _prisma_migrations SET finished_at = NULL, logs = 'boom: relation \"nope\" does not exist' WHERE migration_name = $1", [last]);

    const failed = await ops(['status']);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(new RegExp(`^  FAILED +${last} +started .*: boom: relation "nope" does not exist$`, 'm'));

    const refused = await ops(['migrate']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`resolve --rolled-back ${last}`);

    const rolledBack = await ops(['resolve', '--rolled-back', last]);
    expect(rolledBack.code).toBe(0);
    const pending = await ops(['status']);
    expect(pending.code).toBe(1);
    expect(pending.stdout).toMatch(new RegExp(`^  pending +${last}$`, 'm'));

    // Its objects are there (it had run): record it as applied rather than running it again.
    const applied = await ops(['resolve', '--applied', last]);
    expect(applied.code).toBe(0);
    expect((await ops(['status'])).code).toBe(0);
  });
});

describe('errors never show the password', () => {
  test('a database that does not exist: one line, password masked', async () => {
    // The database is named like the password, so the server's own message contains it.
    const password = secret();
    const url = new URL(adminUrl);
    url.password = password;
    url.pathname = `/${password}`;

    for (const command of ['status', 'migrate', 'reset --yes']) {
      const { code, stdout, stderr } = await runCli(command.split(' '), { DATABASE_URL: url.toString() });
      expect(code).toBe(1);
      expect(stderr).toMatch(/^error: cannot connect to postgresql:\/\/.*\*\*\*.*does not exist\n$/);
      expect(`${stdout}${stderr}`).not.toContain(password);
    }
  });

  test('an invalid DATABASE_URL is named, its password is not', async () => {
    const password = secret();
    const { code, stderr } = await runCli(['status'], { DATABASE_URL: `mysql://app:${password}@db.internal/contacts` });
    expect(code).toBe(1);
    expect(stderr).toBe('error: Invalid configuration: DATABASE_URL unsupported scheme "mysql://"; expected postgres:// or postgresql://\n');
  });
});

describe('new-migration', () => {
  test('is refused when NODE_ENV=production', async () => {
    const { code, stderr } = await runCli(['new-migration', 'add_company'], { NODE_ENV: 'production', API_KEYS: 'production-key', DATABASE_URL: adminUrl });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^error: refusing to run new-migration: NODE_ENV is production/);
  });

  test('names the missing CREATEDB right, and how to grant it', async () => {
    const role = `contact_sync_ops_${randomBytes(4).toString('hex')}`;
    await query(adminUrl, `CREATE ROLE ${role} LOGIN NOCREATEDB`);
    const databaseUrl = await createScratchDatabase(adminUrl, 'contact_sync_ops_nocreatedb');
    try {
      const url = new URL(databaseUrl);
      url.username = role;
      url.password = secret();
      const { code, stderr } = await runCli(['new-migration', 'add_company'], { DATABASE_URL: url.toString() });
      expect(code).toBe(1);
      expect(stderr).toContain(`database user "${role}" may not create databases`);
      expect(stderr).toContain(`ALTER ROLE "${role}" CREATEDB`);
      expect(stderr).not.toContain(url.password);
    } finally {
      await dropDatabase(adminUrl, databaseUrl);
      await query(adminUrl, `DROP ROLE IF EXISTS ${role}`);
    }
  });

  // In a copy of the project, so that prisma/ here (edited by others) is never touched.
  test('writes the migration of a schema change, applying pending ones first', async () => {
    const copy = await mkdtemp(path.join(os.tmpdir(), 'contact-sync-ops-'));
    const databaseUrl = await createScratchDatabase(adminUrl, 'contact_sync_ops_new');
    const before = await localMigrationNames();
    try {
      for (const entry of ['src', 'prisma', 'prisma.config.ts', 'package.json', 'tsconfig.json']) {
        await cp(path.join(ROOT, entry), path.join(copy, entry), { recursive: true });
      }
      await symlink(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'), 'dir');
      const schemaPath = path.join(copy, 'prisma', 'schema.prisma');
      const schema = await readFile(schemaPath, 'utf8');
      const changed = schema.replace(/^(\s*)phone(\s+)String\?.*$/m, '$&\n$1company$2String?');
      expect(changed).not.toEqual(schema);
      await writeFile(schemaPath, changed);

      const { code, stdout, stderr } = await runCli(['new-migration', 'add_company'], { DATABASE_URL: databaseUrl }, { cwd: copy });

      expect(stderr).toContain('pending migration(s) first');
      expect(code).toBe(0);
      const created = /^Created (prisma\/migrations\/\d{14}_add_company\/migration\.sql) \(not applied\)\.$/m.exec(stdout);
      expect(created).not.toBeNull();
      expect(await readFile(path.join(copy, created![1]!), 'utf8')).toMatch(/ALTER TABLE "contacts" ADD COLUMN\s+"company" TEXT/);
      expect(stdout).toContain(`COMMENT ON COLUMN "contacts"."company" IS '…';`);
      // Pending migrations were applied first; the new one was not.
      const applied = await query<{ migration_name: string }>(databaseUrl, 'SELECT migration_name FROM _prisma_migrations');
      expect(applied.map((row) => row.migration_name).sort()).toEqual(before);
    } finally {
      await dropDatabase(adminUrl, databaseUrl);
      await rm(copy, { recursive: true, force: true });
    }
    expect(await localMigrationNames()).toEqual(before);
  });
});
