import { AsyncLocalStorage } from 'node:async_hooks';
import type { Prisma, PrismaClient } from '@prisma/client';
import { classifyDatabaseError } from './errors';

/** Prisma's interactive transactions; `client` inside one of them. */
export type TransactionClient = Prisma.TransactionClient;

/**
 * The way statements reach the database: through the transaction the current call runs in,
 * when there is one, else through the pool. It lets a caller that owns a transaction (an
 * Idempotency-Key request stores its answer in the transaction of its write) make the
 * repositories it calls write in it, without their signatures knowing.
 */
export class TransactionScope {
  private readonly current = new AsyncLocalStorage<TransactionClient>();

  constructor(
    /** The pool's client, for statements that must run outside any transaction. */
    readonly prisma: PrismaClient,
  ) {}

  /** The open transaction's client, else the pool's. */
  get client(): TransactionClient {
    return this.current.getStore() ?? this.prisma;
  }

  /** Throws when the database does not answer. */
  async ping(): Promise<void> {
    await this.client.$queryRaw`SELECT 1`;
  }

  /** Runs `work` in a transaction: the current one if there is one, else a new one. */
  transaction<T>(work: (tx: TransactionClient) => Promise<T>): Promise<T> {
    const open = this.current.getStore();
    if (open) return work(open);
    // Statements' failures are classified by the client; BEGIN's and COMMIT's are not statements of it.
    return this.prisma.$transaction((tx) => this.current.run(tx, () => work(tx))).catch((error: unknown) => {
      throw classifyDatabaseError(error);
    });
  }
}
