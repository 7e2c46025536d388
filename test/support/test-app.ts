import type { Express } from 'express';
import { ContactRepository } from '../../src/contacts/contact.repository';
import { ContactService } from '../../src/contacts/contact.service';
import { noopCrm, type CrmPort } from '../../src/contacts/crm-port';
import { createPrismaClient, type PrismaClient } from '../../src/db/prisma';
import { createApp, type AppDependencies } from '../../src/http/app';
import { createLogger } from '../../src/logger';

export interface TestApp {
  app: Express;
  prisma: PrismaClient;
  /** Empties every table and restarts the id sequences. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

export interface TestAppOptions extends Partial<Omit<AppDependencies, 'contactService' | 'logger'>> {
  databaseUrl?: string;
  crm?: CrmPort;
}

/** The real app over the suite's real, migrated database. */
export function createTestApp(options: TestAppOptions = {}): TestApp {
  const logger = createLogger('silent');
  const databaseUrl = options.databaseUrl ?? process.env.DATABASE_URL;
  if (!databaseUrl) throw new Error('DATABASE_URL is not set: run the tests through jest (see test/support/global-setup.ts)');
  const prisma = createPrismaClient({ url: databaseUrl, poolSize: 20, connectTimeoutMs: 1_000 }, logger);
  const contactService = new ContactService(new ContactRepository(prisma), options.crm ?? noopCrm(false));
  const app = createApp({ contactService, logger, corsOrigins: options.corsOrigins ?? [], bodyLimit: options.bodyLimit });
  return {
    app,
    prisma,
    reset: async () => {
      await prisma.$executeRawUnsafe('TRUNCATE contacts, notes RESTART IDENTITY CASCADE');
    },
    close: () => prisma.$disconnect(),
  };
}
