import { databaseName, withClient } from '../../src/db/pg-admin';
import { commandName, cpuSeconds } from './processes';

const FIRST_NAMES = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Ken', 'Margaret'];
const LAST_NAMES = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Thompson', 'Hamilton',
  'Ritchie', 'Kernighan', 'Backus', 'Allen', 'Wirth', 'Hoare', 'Lamport', 'Perlis'];

/** The substring GET /contacts?search= looks for: one last name in 16, so 1/16 of the seeded rows match. */
export const SEARCH_TERM = 'lovelace';

/**
 * Seeds `count` contacts (ids 1..count on a fresh database) straight through SQL, identically in
 * every database, so the read runs of the service and of the baseline see the same table.
 */
export async function seedContacts(databaseUrl: string, count: number): Promise<void> {
  await withClient(databaseUrl, async (client) => {
    await client.query(
      `INSERT INTO contacts (name, email, phone)
       SELECT ($1::text[])[1 + i % 8] || ' ' || ($2::text[])[1 + (i / 8) % 16] || ' ' || i,
              'seed-' || i || '@example.com',
              '+44 20 7946 ' || lpad((i % 10000)::text, 4, '0')
         FROM generate_series(1, $3::int) AS i`,
      [FIRST_NAMES, LAST_NAMES, count],
    );
    await client.query('VACUUM ANALYZE contacts');
  });
}

/**
 * CPU time of the PostgreSQL backends serving one database, read from /proc (so only when the
 * server runs on this machine). A backend that ends keeps its last reading.
 */
export class PostgresCpu {
  private readonly lastSeen = new Map<number, number>();

  private constructor(
    private readonly adminUrl: string,
    private readonly database: string,
  ) {}

  /** Undefined when the server's processes are not visible here (another host, a container). */
  static async forDatabase(adminUrl: string, databaseUrl: string): Promise<PostgresCpu | undefined> {
    // Asked while the connection is open: its backend must be a process visible here.
    const visible = await withClient(adminUrl, async (client) => {
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
      return pid !== undefined && commandName(pid) === 'postgres' && cpuSeconds(pid) !== undefined;
    });
    if (!visible) return undefined;
    return new PostgresCpu(adminUrl, databaseName(databaseUrl));
  }

  async totalSeconds(): Promise<number> {
    const { rows } = await withClient(this.adminUrl, (client) =>
      client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [this.database]),
    );
    for (const { pid } of rows) {
      const seconds = cpuSeconds(pid);
      if (seconds !== undefined) this.lastSeen.set(pid, seconds);
    }
    let total = 0;
    for (const seconds of this.lastSeen.values()) total += seconds;
    return total;
  }
}

export async function serverVersion(adminUrl: string): Promise<string> {
  return withClient(adminUrl, async (client) => (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? 'unknown');
}
