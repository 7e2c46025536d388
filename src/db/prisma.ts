import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '@prisma/client';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from '../logger';
import { classifyDatabaseError } from './errors';

export type { PrismaClient };

export interface DatabaseOptions {
  url: string;
  poolSize: number;
  connectTimeoutMs: number;
  /** How long one statement may go unanswered. */
  queryTimeoutMs: number;
}

/** A Prisma client over the pool, and how to close both. */
export interface DatabaseClient {
  prisma: PrismaClient;
  /** Disconnects Prisma (which ends the pool) and resolves once every connection has closed. */
  close(): Promise<void>;
}

/** How long closing waits for the connections to end. */
const CLOSE_WAIT_MS = 5_000;

/** pg's error for a statement unanswered past query_timeout. */
const QUERY_TIMEOUT_MESSAGE = 'Query read timeout';

/**
 * The one place a PrismaClient is built; everything else receives it.
 * The pool is ours so that a dead database surfaces as a quick error rather than a request
 * waiting forever, and so that errors of idle connections are logged instead of crashing the process:
 * - connectionTimeoutMillis bounds getting a connection (a new one, or a turn in the pool);
 * - query_timeout bounds each statement on the client side: a database that stopped answering
 *   (a network partition) does not close anything, so only this notices it;
 * - statement_timeout, the same on the server side, makes PostgreSQL drop a statement its
 *   client has given up on instead of running it (or waiting for its locks) regardless.
 */
export function createPrismaClient(options: DatabaseOptions, logger: Logger): DatabaseClient {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    query_timeout: options.queryTimeoutMs,
    statement_timeout: options.queryTimeoutMs,
  });
  pool.on('error', (error) => logger.warn({ err: error }, 'idle database connection failed'));
  reclaimBrokenConnections(pool, logger);
  const closed = trackClosing(pool);
  const adapter = new PrismaPg(pool, { disposeExternalPool: true });
  // Every statement's failure is classified here, once (see classifyDatabaseError). The extension
  // adds no method or type, so the client keeps PrismaClient's type.
  // 'minimal': no call site captured per query (an Error and its stack each time: about 15% of
  // Prisma's CPU per statement, measured); our logs carry their own stack and request id.
  const prisma = new PrismaClient({ adapter, errorFormat: 'minimal' }).$extends({
    query: {
      async $allOperations({ args, query }) {
        try {
          return await query(args);
        } catch (error) {
          throw classifyDatabaseError(error);
        }
      },
    },
  }) as unknown as PrismaClient;
  return {
    prisma,
    async close() {
      await prisma.$disconnect();
      await closed();
    },
  };
}

/**
 * pg's `pool.end()` resolves before its connections have closed (brianc/node-postgres#2328): a
 * database stopped right after could still cut one. This waits for each connection's own `end`.
 */
function trackClosing(pool: pg.Pool): () => Promise<void> {
  const open = new Set<Promise<void>>();
  pool.on('connect', (client) => {
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    open.add(ended);
    void ended.then(() => open.delete(ended));
  });
  return async () => {
    // Bounded: a connection still lent out (a stuck statement) must not hold shutdown for ever.
    await Promise.race([Promise.all(open), delay(CLOSE_WAIT_MS, undefined, { ref: false })]);
  };
}

/**
 * Keeps the pool from losing its connections to failures, so that it recovers by itself:
 * - A transaction whose connection breaks (the database restarts, a statement times out) is
 *   never handed back: Prisma releases a transaction's connection only after a successful
 *   COMMIT or ROLLBACK, which a broken connection cannot run. Each such transaction would take
 *   a place in the pool for good, and DATABASE_POOL_SIZE of them would leave none. A connection
 *   that ends while lent out is therefore released here.
 * - pg keeps a connection whose statement timed out waiting for its answer, with what comes next
 *   (that transaction's ROLLBACK) queued behind it. Such a connection is closed instead, which
 *   also ends it as above.
 */
function reclaimBrokenConnections(pool: pg.Pool, logger: Logger): void {
  const lentOut = new Set<pg.PoolClient>();
  pool.on('acquire', (client) => lentOut.add(client));
  pool.on('release', (_error, client) => lentOut.delete(client));
  pool.on('connect', (client) => {
    closeOnQueryTimeout(client);
    client.once('end', () => {
      // Whoever holds it may still release it (as a failed BEGIN does): give them their turn first.
      setImmediate(() => {
        if (!lentOut.has(client)) return;
        logger.warn('database connection lost during a transaction: returned to the pool');
        try {
          client.release(new Error('database connection ended while in use'));
        } catch {
          // released meanwhile
        }
      });
    });
  });
}

type QueryMethod = (...args: unknown[]) => unknown;

/** Wraps the client's query (callback and promise forms) to close the connection on a query timeout. */
function closeOnQueryTimeout(client: pg.PoolClient): void {
  const query = client.query.bind(client) as QueryMethod;
  const closeIfTimedOut = (error: unknown) => {
    if (error instanceof Error && error.message === QUERY_TIMEOUT_MESSAGE) client.end().catch(() => undefined);
  };
  const guardedQuery: QueryMethod = (...args) => {
    const callback = args.at(-1);
    if (typeof callback === 'function') {
      args[args.length - 1] = (error: unknown, result: unknown) => {
        closeIfTimedOut(error);
        callback(error, result);
      };
      return query(...args);
    }
    const result = query(...args);
    if (result instanceof Promise) result.catch(closeIfTimedOut);
    return result;
  };
  Object.assign(client, { query: guardedQuery });
}
