/**
 * Teams arrive from Python services with SQLAlchemy URLs such as
 * `postgresql+psycopg://`; the driver suffix means nothing to node-postgres.
 */
const POSTGRES_SCHEME = /^(postgres|postgresql)(\+[a-z0-9_]+)?:\/\//i;

/** Returns a `postgresql://` URL, or throws an Error saying what is wrong with it. */
export function normaliseDatabaseUrl(raw: string): string {
  const trimmed = raw.trim();
  if (!POSTGRES_SCHEME.test(trimmed)) {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(trimmed)?.[1];
    throw new Error(
      scheme
        ? `unsupported scheme "${scheme}://"; expected postgres:// or postgresql://`
        : 'not a URL; expected postgresql://user:password@host:port/database',
    );
  }
  const url = trimmed.replace(POSTGRES_SCHEME, 'postgresql://');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('not a valid URL; expected postgresql://user:password@host:port/database');
  }
  if (!parsed.hostname && !parsed.searchParams.get('host')) {
    throw new Error('has no host');
  }
  return url;
}

export interface DatabaseUrlParts {
  user: string;
  password?: string;
  host: string;
  port: number;
  database: string;
}

export function buildDatabaseUrl(parts: DatabaseUrlParts): string {
  const credentials =
    parts.password === undefined
      ? encodeURIComponent(parts.user)
      : `${encodeURIComponent(parts.user)}:${encodeURIComponent(parts.password)}`;
  const host = parts.host.includes(':') ? `[${parts.host}]` : parts.host;
  return `postgresql://${credentials}@${host}:${parts.port}/${encodeURIComponent(parts.database)}`;
}

/** The URL with its password masked, for logs and error messages. */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable database URL>';
  }
}
