export const COMMAND_NAMES = ['migrate', 'status', 'new-migration', 'reset', 'resolve', 'psql', 'mirror', 'pipedrive', 'import-csv'] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

export const isCommandName = (name: string): name is CommandName => (COMMAND_NAMES as readonly string[]).includes(name);

const DATABASE = `The database is the service's: DATABASE_URL, else POSTGRES_HOST with the other POSTGRES_*
variables (from the environment, or .env in the current folder when present). With neither,
the embedded PostgreSQL that npm start uses (EMBEDDED_POSTGRES_DIR, EMBEDDED_POSTGRES_PORT,
database "contacts") is started for the command and stopped after it.`;

export const GENERAL_USAGE = `Usage: npm run ops -- <command> [options]      (builds dist first, as npm start does)
       node dist/ops/cli.js <command> [options]     (already built; no devDependencies needed)
       node --import tsx src/ops/cli.ts <command> [options]   (development, no build)

Operator commands for contact-sync's database.

Commands:
  migrate                 apply pending migrations (prisma migrate deploy)
  status                  list applied, pending and failed migrations;
                          exit code 1 while any is pending or failed
  new-migration <name>    create prisma/migrations/<timestamp>_<name>/migration.sql from the
                          changes to prisma/schema.prisma (prisma migrate dev --create-only)
  reset [--yes]           drop every table and row, re-apply the migrations
                          (prisma migrate reset); refused when NODE_ENV=production
  resolve --rolled-back <migration> | --applied <migration>
                          settle a failed migration so that migrate can go on
  psql [psql options]     open psql on the database (connection passed in PG* variables)
  mirror pause --for <minutes> [--reason <text>] | mirror resume | mirror requeue-failed
                          pause the Pipedrive mirror, end the pause, or queue every failed
                          contact and note again as bulk work
  pipedrive webhooks install --url <public URL> | webhooks list | webhooks remove
                          Pipedrive's webhook subscriptions for the two-way sync
  pipedrive import        every Pipedrive person becomes a contact, or is linked to one
  pipedrive push          queue every contact never mirrored (bulk work)
  import-csv <file>       contacts from a CSV file (name, email, phone columns)
  help [<command>]        this text, or a command's

${DATABASE}

Run \`npm run ops -- <command> --help\` for a command's details.
Exit codes: 0 done; 1 failed, refused, or (status) migrations pending or failed; 2 bad usage;
3 stopped before the end (interrupted, or the daily token reserve): run it again to go on.
`;

export const COMMAND_USAGE: Record<CommandName, string> = {
  migrate: `Usage: npm run ops -- migrate      (also: npm run db:migrate)

Applies the migrations of prisma/migrations that the database lacks, with prisma migrate deploy,
as npm start does before it listens (unless AUTO_MIGRATE=false). Does nothing, quickly, when
none is pending. Refuses while a migration is marked failed: see \`resolve --help\`.
`,
  status: `Usage: npm run ops -- status       (also: npm run db:status)

Lists every migration of prisma/migrations as applied (with when), pending or FAILED (with
Prisma's error), and migrations applied to the database that prisma/migrations lacks.
Exit code 0 when the database is up to date, 1 while any migration is pending or failed
(or the database cannot be reached), so scripts can test it:
  npm run -s db:status >/dev/null || echo "migrations to apply"
`,
  'new-migration': `Usage: npm run ops -- new-migration <name>       (also: npm run db:new-migration -- --name <name>)

Creates prisma/migrations/<timestamp>_<name>/migration.sql from the difference between the
migrations and prisma/schema.prisma (prisma migrate dev --create-only). Nothing is applied
to the database except migrations that were already pending, which are applied first.
<name> is letters, digits and underscores, e.g. add_company.

Then review the SQL, add a COMMENT ON for every new table and column (the command prints
templates), apply it with npm run db:migrate, and commit it with the schema change.

Needs a database user allowed to create databases (CREATEDB): Prisma checks the migration
against a temporary "shadow" database. A development command: refused when
NODE_ENV=production.
`,
  reset: `Usage: npm run ops -- reset [--yes]       (also: npm run db:reset)

Drops everything in the database (tables and rows, the mirror's queue with them), then
re-applies every migration (prisma migrate reset): a database like a fresh npm start. Stop
the service first.

On a terminal it asks you to type the database name; --yes (or -y) skips the question, for
scripts. Without a terminal and without --yes it refuses. Always refused when
NODE_ENV=production, whatever the options.
`,
  resolve: `Usage: npm run ops -- resolve --rolled-back <migration>
       npm run ops -- resolve --applied <migration>

A migration that failed stays recorded as failed in _prisma_migrations, and migrate (like
npm start) refuses to apply anything until it is settled (Prisma error P3009):
  --rolled-back <migration>  nothing of it remains in the database (migrations run in one
                             transaction here, so a failed one normally leaves nothing);
                             fix the SQL, then run migrate to apply it again
  --applied <migration>      you completed its changes by hand; it is recorded as applied
<migration> is the folder name, e.g. 20261122031452_mirror_sync_state (see status).
`,
  psql: `Usage: npm run -s ops -- psql [psql options]

Opens psql on the database. The connection goes in PGHOST, PGPORT, PGUSER, PGPASSWORD and
PGDATABASE (and PGSSLMODE... from the URL's parameters), never on the command line; PG*
variables of your shell are not passed on. Everything after "psql" goes to psql as it is:
  npm run -s ops -- psql -c 'select count(*) from contacts'
  npm run -s ops -- psql -f report.sql
(-s keeps npm's own lines out of the output.) psql's own help: npm run ops -- psql -- --help
The exit code is psql's.
`,
  mirror: `Usage: npm run ops -- mirror pause --for <minutes> [--reason <text>]
       npm run ops -- mirror resume
       npm run ops -- mirror requeue-failed

pause: no worker starts mirror work for <minutes> (running work finishes); what is written
meanwhile waits, nothing is lost. A longer pause already in force (Pipedrive's rate limit, or
another operator's) stays. GET /sync/status shows the pause and its reason.
resume: ends the pause now, whoever set it.
requeue-failed: every contact and note whose mirror failed is queued again with fresh attempts,
as bulk work: it runs after every live change. Fix the cause first (a wrong PIPEDRIVE_API_KEY,
a rejected field); for one contact, POST /contact/{id}/sync does the same at live priority.
`,
  pipedrive: `Usage: npm run ops -- pipedrive webhooks install --url <public URL> [--dry-run]
       npm run ops -- pipedrive webhooks list
       npm run ops -- pipedrive webhooks remove [--dry-run]
       npm run ops -- pipedrive import [--dry-run] [--restart]
       npm run ops -- pipedrive push [--dry-run] [--wait]

The two-way sync with Pipedrive (README, "Two-way sync"); needs PIPEDRIVE_API_KEY.
webhooks install: subscribes <public URL>/webhooks/pipedrive to every person change (webhooks
  v2, Basic credentials PIPEDRIVE_WEBHOOK_USER / PIPEDRIVE_WEBHOOK_PASSWORD), replacing an
  older subscription to the same URL: 10 tokens (and 6 per replaced one).
webhooks list: the person subscriptions of the token's user (10 tokens).
webhooks remove: removes the subscriptions to /webhooks/pipedrive (6 tokens each).
import: reads every person (10 tokens per 500) and links it to the contact with its email, else
  its E.164 phone, or makes it a contact (synced: Pipedrive has it). Changes of persons already
  linked are taken in as webhooks are. --dry-run: what it would do, from the person index, free.
push: queues every contact never mirrored (written while no key was configured) as bulk work,
  which the mirror sends after every live change and stops at PIPEDRIVE_DAILY_TOKEN_RESERVE:
  about 5.1 tokens a contact. --wait: follows the mirror until they have left the queue.
  --dry-run: how many, and the tokens.
Progress shows on stderr (a bar on a terminal, plain lines otherwise), with the rate and an ETA
from the token budget. Ctrl-C stops it: run the same command again to go on where it stopped
(--restart: from the beginning). import stops at the daily token reserve (exit code 3).
`,
  'import-csv': `Usage: npm run ops -- import-csv <file> [--dry-run] [--restart] [--report <rejected.csv>]

Adds contacts from a CSV file (a spreadsheet export) as POST /contact does: the same validation
and dedupe (an email that a contact has already is a duplicate, not a change). The header names
the columns: name (or "full name"), email (or "e-mail"), phone (or "telephone", "mobile"), in
any case and order; other columns are ignored. The new contacts are mirrored as bulk work.
Rejected rows are listed with their line and why; --report also writes them to a CSV file.
--dry-run: what would be created and rejected, and the tokens their mirror would cost.
Ctrl-C stops it: run the same command again to go on at the row it stopped (the file is
recognised by its content; --restart: from the first row).
`,
};
