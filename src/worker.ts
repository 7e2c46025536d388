import { bootstrap, onShutdownSignal, runMain } from './runtime';

/** The Pipedrive mirror worker on its own, for running it apart from the API (`npm run worker`). */
async function main(): Promise<void> {
  const { logger, database, services } = await bootstrap();
  if (!services.startWorker) throw new Error('PIPEDRIVE_API_KEY is not set: there is nothing to mirror');
  const worker = await services.startWorker();
  logger.info('mirror worker running');

  onShutdownSignal(logger, async () => {
    await worker.stop();
    await services.close();
    await database.stop();
  });
}

runMain('mirror worker', main);
