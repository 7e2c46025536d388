import { existsSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig, type Config } from '../config/config';
import { redactPassword } from '../db/migrate';
import * as commands from './commands';
import * as sync from './sync-commands';
import { OpsError, UsageError } from './errors';
import { COMMAND_USAGE, GENERAL_USAGE, isCommandName, type CommandName } from './help';
import { openTarget, type Target } from './target';

/**
 * The operator CLI: `npm run ops -- <command>` (dist/ops/cli.js), or
 * `node --import tsx src/ops/cli.ts <command>` in development. See GENERAL_USAGE.
 */

type Invocation =
  | { kind: 'help'; command?: CommandName }
  | { kind: 'migrate' | 'status' }
  | { kind: 'new-migration'; name: string }
  | { kind: 'reset'; yes: boolean }
  | { kind: 'resolve'; how: 'applied' | 'rolled-back'; migration: string }
  | { kind: 'psql'; args: string[] }
  | { kind: 'mirror'; action: commands.MirrorAction }
  | { kind: 'webhooks'; action: sync.WebhooksAction }
  | { kind: 'import'; dryRun: boolean; restart: boolean }
  | { kind: 'push'; dryRun: boolean; wait: boolean }
  | { kind: 'import-csv'; file: string; dryRun: boolean; restart: boolean; report?: string };

const MIGRATION_NAME = /^[A-Za-z0-9_]{1,200}$/;
const MINUTES = /^[1-9]\d{0,5}$/;

function options<T extends NonNullable<ParseArgsConfig['options']>>(command: CommandName, args: string[], spec: T, positionals = 0) {
  try {
    const parsed = parseArgs({ args, options: spec, strict: true, allowPositionals: positionals > 0 });
    if (parsed.positionals.length > positionals) throw new UsageError(`unexpected argument "${parsed.positionals[positionals]}"`, command);
    return parsed;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const { code, message } = error as { code?: string; message: string };
    const option = /'([^']+)'/.exec(message)?.[1];
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) throw new UsageError(`unknown option "${option}"`, command);
    throw new UsageError(message.split(/\.\s|\n/)[0] ?? 'bad options', command);
  }
}

/** Reads the command line; throws UsageError when it makes no sense. */
export function parseCommandLine(argv: string[]): Invocation {
  const [first, ...rest] = argv;
  if (first === undefined) throw new UsageError('no command given');
  if (first === '--help' || first === '-h' || first === 'help') {
    const [topic] = rest;
    if (topic === undefined) return { kind: 'help' };
    if (!isCommandName(topic)) throw new UsageError(`unknown command "${topic}"`);
    return { kind: 'help', command: topic };
  }
  if (!isCommandName(first)) throw new UsageError(first.startsWith('-') ? `unknown option "${first}"` : `unknown command "${first}"`);
  const command = first;

  if (command === 'psql') {
    // Everything goes to psql (whose -h is --host), except our own --help; `--` passes psql's.
    if (rest.length === 1 && rest[0] === '--help') return { kind: 'help', command };
    return { kind: 'psql', args: rest[0] === '--' ? rest.slice(1) : rest };
  }
  const help = { help: { type: 'boolean', short: 'h' } } as const;
  if (rest.includes('--help') || rest.includes('-h')) return { kind: 'help', command };

  switch (command) {
    case 'migrate':
    case 'status':
      options(command, rest, help);
      return { kind: command };
    case 'reset': {
      const { values } = options(command, rest, { ...help, yes: { type: 'boolean', short: 'y' } });
      return { kind: 'reset', yes: values.yes === true };
    }
    case 'new-migration': {
      const { values, positionals } = options(command, rest, { ...help, name: { type: 'string' } }, 1);
      const names = [values.name, positionals[0]].filter((value): value is string => typeof value === 'string');
      if (names.length === 0) throw new UsageError('a name is needed, e.g. new-migration add_company', command);
      if (names.length > 1) throw new UsageError('give the name once: new-migration <name> or new-migration --name <name>', command);
      const [name = ''] = names;
      if (!MIGRATION_NAME.test(name)) throw new UsageError(`"${name}" is not a migration name: use letters, digits and underscores`, command);
      return { kind: 'new-migration', name };
    }
    case 'resolve': {
      const { values } = options(command, rest, { ...help, applied: { type: 'string' }, 'rolled-back': { type: 'string' } });
      const applied = values.applied;
      const rolledBack = values['rolled-back'];
      if (typeof applied === 'string' && typeof rolledBack === 'string') throw new UsageError('either --applied or --rolled-back, not both', command);
      if (typeof applied === 'string') return { kind: 'resolve', how: 'applied', migration: applied };
      if (typeof rolledBack === 'string') return { kind: 'resolve', how: 'rolled-back', migration: rolledBack };
      throw new UsageError('say how: --rolled-back <migration> or --applied <migration>', command);
    }
    case 'mirror': {
      const { values, positionals } = options(command, rest, { ...help, for: { type: 'string' }, reason: { type: 'string' } }, 1);
      const [action] = positionals;
      if (action !== 'pause' && (values.for !== undefined || values.reason !== undefined)) {
        throw new UsageError('--for and --reason go with pause only', command);
      }
      if (action === 'resume' || action === 'requeue-failed') return { kind: 'mirror', action: { kind: action } };
      if (action !== 'pause') throw new UsageError(action ? `unknown mirror action "${action}"` : 'say what: pause, resume or requeue-failed', command);
      if (values.for === undefined || !MINUTES.test(values.for)) throw new UsageError('pause needs --for <minutes>, a whole number from 1', command);
      return { kind: 'mirror', action: { kind: 'pause', minutes: Number(values.for), reason: values.reason ?? 'paused by an operator' } };
    }
    case 'pipedrive':
      return parsePipedrive(rest);
    case 'import-csv': {
      const spec = { ...help, 'dry-run': { type: 'boolean' }, restart: { type: 'boolean' }, report: { type: 'string' } } as const;
      const { values, positionals } = options(command, rest, spec, 1);
      const [file] = positionals;
      if (!file) throw new UsageError('give the CSV file: import-csv <file>', command);
      return { kind: 'import-csv', file, dryRun: values['dry-run'] === true, restart: values.restart === true, report: values.report };
    }
  }
}

function parsePipedrive(args: string[]): Invocation {
  const command = 'pipedrive';
  const [what, ...rest] = args;
  if (what === 'webhooks') {
    const { values, positionals } = options(command, rest, { 'dry-run': { type: 'boolean' }, url: { type: 'string' } }, 1);
    const [action] = positionals;
    const dryRun = values['dry-run'] === true;
    if (action !== 'install' && values.url !== undefined) throw new UsageError('--url goes with webhooks install only', command);
    if (action === 'list') return { kind: 'webhooks', action: { kind: 'list' } };
    if (action === 'remove') return { kind: 'webhooks', action: { kind: 'remove', dryRun } };
    if (action !== 'install') throw new UsageError(action ? `unknown webhooks action "${action}"` : 'say what: webhooks install, list or remove', command);
    if (values.url === undefined || !/^https?:\/\/[^/]+/.test(values.url) || !URL.canParse(values.url)) {
      throw new UsageError('webhooks install needs --url <public URL>, the service\'s address as Pipedrive reaches it (https://…)', command);
    }
    return { kind: 'webhooks', action: { kind: 'install', url: values.url, dryRun } };
  }
  if (what === 'import') {
    const { values } = options(command, rest, { 'dry-run': { type: 'boolean' }, restart: { type: 'boolean' } });
    return { kind: 'import', dryRun: values['dry-run'] === true, restart: values.restart === true };
  }
  if (what === 'push') {
    const { values } = options(command, rest, { 'dry-run': { type: 'boolean' }, wait: { type: 'boolean' } });
    return { kind: 'push', dryRun: values['dry-run'] === true, wait: values.wait === true };
  }
  throw new UsageError(what ? `unknown pipedrive action "${what}"` : 'say what: webhooks, import or push', command);
}

/** Stoppers of what this process started (the embedded PostgreSQL), run once on exit or on a signal. */
const cleanups = new Set<() => Promise<void>>();

async function runCleanups(): Promise<void> {
  for (const cleanup of [...cleanups]) {
    cleanups.delete(cleanup);
    await cleanup().catch(() => undefined);
  }
}

async function execute(invocation: Exclude<Invocation, { kind: 'help' }>, config: Config): Promise<number> {
  // reset's refusal comes before anything is started or connected.
  if (invocation.kind === 'reset') commands.assertResetAllowed(config);
  const out = (text: string) => process.stdout.write(text);
  const err = (text: string) => process.stderr.write(text);
  const target: Target = await openTarget(config.database, (line) => err(`${line}\n`));
  cleanups.add(target.stop);
  try {
    const ctx: commands.Context = { config, target, out, err };
    switch (invocation.kind) {
      case 'migrate':
        return await commands.migrate(ctx);
      case 'status':
        return await commands.status(ctx);
      case 'new-migration':
        return await commands.newMigration(ctx, invocation.name);
      case 'reset':
        return await commands.reset(ctx, invocation.yes);
      case 'resolve':
        return await commands.resolve(ctx, invocation.how, invocation.migration);
      case 'psql':
        return await commands.psql(ctx, invocation.args);
      case 'mirror':
        return await commands.mirror(ctx, invocation.action);
      case 'webhooks':
        return await sync.webhooks(ctx, invocation.action);
      case 'import':
        return await sync.importPersons(ctx, invocation);
      case 'push':
        return await sync.push(ctx, invocation);
      case 'import-csv':
        return await sync.importCsv(ctx, invocation.file, invocation);
    }
  } finally {
    cleanups.delete(target.stop);
    await target.stop();
  }
}

/** Runs one command line; resolves with the exit code. Messages go to stdout and stderr. */
export async function main(argv: string[]): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = parseCommandLine(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    const usage = error.command ? COMMAND_USAGE[error.command as CommandName] : GENERAL_USAGE;
    process.stderr.write(`error: ${error.message}\n\n${usage}`);
    return 2;
  }
  if (invocation.kind === 'help') {
    process.stdout.write(invocation.command ? COMMAND_USAGE[invocation.command] : GENERAL_USAGE);
    return 0;
  }

  // Passwords never reach the output: the configured URL's, and the raw DATABASE_URL's even when it is invalid.
  const secretUrls: string[] = [];
  const redact = (text: string) => secretUrls.reduce((redacted, url) => redactPassword(redacted, url), text);
  try {
    if (existsSync('.env')) process.loadEnvFile('.env');
    if (process.env.DATABASE_URL) secretUrls.push(process.env.DATABASE_URL.trim());
    const config = loadConfig();
    if (config.database.url) secretUrls.push(config.database.url);
    return await execute(invocation, config);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // One line; a Prisma failure's explanation follows it.
    const [headline = 'failed', ...more] = redact(message).split('\n');
    const detail = error instanceof OpsError ? error.detail : more.join('\n').trim();
    process.stderr.write(`error: ${headline}\n${detail ? `\n${redact(detail)}\n` : ''}`);
    return 1;
  }
}

const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

/** Resolves once everything written so far has been handed to the OS. */
function flushed(): Promise<void> {
  const flush = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => stream.write('', () => resolve()));
  return Promise.all([flush(process.stdout), flush(process.stderr)]).then(() => undefined);
}

if (require.main === module) {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      // A resumable command listens too: it saves where it got to and ends itself (a second signal ends it at once).
      if (process.listenerCount(signal) > 1) return;
      void runCleanups().finally(() => process.exit(SIGNAL_EXIT[signal] ?? 1));
    });
  }
  // An explicit exit: a library's idle timer must not hold the shell prompt.
  main(process.argv.slice(2)).then(
    async (code) => {
      await flushed();
      process.exit(code);
    },
    async (error: unknown) => {
      process.stderr.write(`error: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}\n`);
      await flushed();
      process.exit(1);
    },
  );
}
