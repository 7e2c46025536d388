import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '@prisma/client';
import pg from 'pg';
import type { Logger } from '../logger';

export type { PrismaClient };

export interface DatabaseOptions {
  url: string;
  poolSize: number;
  connectTimeoutMs: number;
}

/**
 * The one place a PrismaClient is built; everything else receives it.
 * The pool is ours so that a dead database surfaces as a quick connection error
 * (connectionTimeoutMillis) rather than a request waiting forever, and so that
 * errors of idle connections are logged instead of crashing the process.
 */
export function createPrismaClient(options: DatabaseOptions, logger: Logger): PrismaClient {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
  });
  pool.on('error', (error) => logger.warn({ err: error }, 'idle database connection failed'));
  const adapter = new PrismaPg(pool, { disposeExternalPool: true });
  return new PrismaClient({ adapter });
}
