import { existsSync } from 'node:fs';
import type { Server } from 'node:http';
import { loadConfig } from './config/config';
import { redactDatabaseUrl } from './config/database-url';
import { ContactRepository } from './contacts/contact.repository';
import { ContactService } from './contacts/contact.service';
import { noopCrm } from './contacts/crm-port';
import { provisionDatabase } from './db/database';
import { createPrismaClient } from './db/prisma';
import { createApp } from './http/app';
import { createLogger, type Logger } from './logger';

/** In-flight requests get this long after SIGTERM before their connections are cut. */
const SHUTDOWN_GRACE_MS = 10_000;

async function main(): Promise<void> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const config = loadConfig();
  const logger = createLogger(config.logLevel);

  const database = await provisionDatabase(config.database, logger);
  const prisma = createPrismaClient({ ...config.database, url: database.url }, logger);
  const contactService = new ContactService(new ContactRepository(prisma), noopCrm(config.pipedrive.apiKey !== undefined));
  const app = createApp({ contactService, logger, corsOrigins: config.corsOrigins });

  const server = app.listen(config.port);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new Error(`Port ${config.port} is already in use; set PORT to a free port`) : error),
    );
  });
  logger.info(
    { port: config.port, database: redactDatabaseUrl(database.url), crmConfigured: config.pipedrive.apiKey !== undefined },
    'contact service listening',
  );

  onShutdownSignal(logger, async () => {
    await closeServer(server);
    await prisma.$disconnect();
    await database.stop();
  });
}

async function closeServer(server: Server): Promise<void> {
  const cutOff = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS).unref();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  clearTimeout(cutOff);
}

function onShutdownSignal(logger: Logger, shutdown: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: finishing in-flight requests');
    shutdown().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: unknown) => {
  console.error(`contact service did not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
