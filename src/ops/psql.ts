import { spawn } from 'node:child_process';
import { OpsError } from './errors';

/** URL query parameters that libpq also reads from the environment. */
const PARAMETER_VARIABLES: Record<string, string> = {
  sslmode: 'PGSSLMODE',
  sslrootcert: 'PGSSLROOTCERT',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  application_name: 'PGAPPNAME',
  options: 'PGOPTIONS',
  connect_timeout: 'PGCONNECT_TIMEOUT',
};

/**
 * libpq's connection variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, and the SSL
 * ones) for a postgresql:// URL. The password travels here, never on a command line, where
 * `ps` would show it to every user of the machine.
 */
export function connectionEnvironment(databaseUrl: string): Record<string, string> {
  const url = new URL(databaseUrl);
  const env: Record<string, string> = {};
  const host = url.searchParams.get('host') ?? url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host) env.PGHOST = host;
  env.PGPORT = url.port || url.searchParams.get('port') || '5432';
  if (url.username) env.PGUSER = decodeURIComponent(url.username);
  if (url.password) env.PGPASSWORD = decodeURIComponent(url.password);
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (database) env.PGDATABASE = database;
  for (const [parameter, variable] of Object.entries(PARAMETER_VARIABLES)) {
    const value = url.searchParams.get(parameter);
    if (value) env[variable] = value;
  }
  return env;
}

export interface PsqlInvocation {
  command: string;
  /** Exactly the operator's arguments: the connection is in `env`. */
  args: string[];
  env: NodeJS.ProcessEnv;
}

/**
 * How `psql` is started. Inherited PG* variables are dropped first, so that nothing in the
 * operator's shell (PGSERVICE, PGHOST, ...) points psql at another database than the service's.
 */
export function psqlInvocation(databaseUrl: string, args: string[], baseEnv: NodeJS.ProcessEnv): PsqlInvocation {
  const inherited = Object.fromEntries(Object.entries(baseEnv).filter(([name]) => !/^PG/.test(name)));
  return { command: 'psql', args: [...args], env: { ...inherited, ...connectionEnvironment(databaseUrl) } };
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGTERM: 15 };

/** Signals whose handlers are set aside while psql runs. */
const SIGNALS = ['SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Runs psql on the terminal and resolves with its exit code. While it runs, Ctrl-C and Ctrl-\
 * belong to psql (Ctrl-C cancels the query): this process's own handlers are set aside so that
 * neither this process nor the embedded PostgreSQL it started goes away under psql. SIGTERM and
 * SIGHUP are passed on to psql.
 */
export async function runPsql(invocation: PsqlInvocation): Promise<number> {
  const setAside = SIGNALS.map((signal) => {
    const listeners = process.listeners(signal);
    process.removeAllListeners(signal);
    return { signal, listeners };
  });
  try {
    return await new Promise<number>((resolve, reject) => {
      const child = spawn(invocation.command, invocation.args, { stdio: 'inherit', env: invocation.env });
      process.on('SIGINT', () => undefined);
      process.on('SIGQUIT', () => undefined);
      process.on('SIGTERM', () => child.kill('SIGTERM'));
      process.on('SIGHUP', () => child.kill('SIGHUP'));
      child.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'ENOENT'
            ? new OpsError('psql is not installed or not on PATH: install the PostgreSQL client (Debian/Ubuntu: apt-get install postgresql-client)')
            : error,
        ),
      );
      child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? (SIGNAL_NUMBERS[signal] ?? 1) : 1)));
    });
  } finally {
    for (const { signal, listeners } of setAside) {
      process.removeAllListeners(signal);
      for (const listener of listeners) process.on(signal, listener as NodeJS.SignalsListener);
    }
  }
}
