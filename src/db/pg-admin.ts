import pg from 'pg';

/**
 * Runs `work` on a connection of its own (to a URL, or with a driver configuration), closed
 * afterwards: for administration, not requests. `connectTimeoutMs` bounds the connecting.
 */
export async function withClient<T>(
  connection: string | pg.ClientConfig,
  work: (client: pg.Client) => Promise<T>,
  options: { connectTimeoutMs?: number } = {},
): Promise<T> {
  const config = typeof connection === 'string' ? { connectionString: connection } : connection;
  const client = new pg.Client({ ...config, connectionTimeoutMillis: options.connectTimeoutMs ?? config.connectionTimeoutMillis });
  try {
    await client.connect();
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The database name in a URL, decoded. */
export function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
}

/** `url` with its database swapped for `database`. */
export function urlForDatabase(url: string, database: string): string {
  const swapped = new URL(url);
  swapped.pathname = `/${database}`;
  return swapped.toString();
}
