import { Logger as GraphileLogger, makeWorkerUtils, run, runMigrations, type Job, type Runner, type WorkerUtils } from 'graphile-worker';
import pg from 'pg';
import type { Logger } from '../logger';
import { MIRROR_CONTACT, MIRROR_NOTE, type MirrorContactPayload, type MirrorNotePayload } from './jobs';
import type { JobContext, MirrorTasks } from './mirror-tasks';
import { retryDelayMs, type RetrySettings } from './retry-policy';

export interface SyncWorkerOptions {
  databaseUrl: string;
  tasks: MirrorTasks;
  logger: Logger;
  concurrency: number;
  pollIntervalMs: number;
  retry: RetrySettings;
  /** A job locked longer than this belongs to a worker that died; it is released to run again. */
  staleLockMs: number;
  /** Told of every finished run of a job: synced, retry (failed, will run again) or failed (given up). */
  onJobOutcome?: (task: string, outcome: 'synced' | 'retry' | 'failed') => void;
}

export interface SyncWorker {
  /** Lets running jobs finish, then stops. */
  stop(): Promise<void>;
}

/** Creates or upgrades graphile-worker's own schema; jobs cannot be queued before it exists. */
export async function installJobQueue(databaseUrl: string, logger: Logger): Promise<void> {
  await runMigrations({ connectionString: databaseUrl, logger: graphileLogger(logger) });
}

function graphileLogger(logger: Logger): GraphileLogger {
  const log = logger.child({ component: 'sync-worker' });
  return new GraphileLogger(() => (level, message) => {
    // A failed attempt is reported by our own handler, with the retry time.
    if (level === 'error' && message.startsWith('Failed task')) return;
    const method = level === 'warning' ? 'warn' : level === 'error' ? 'error' : 'debug';
    log[method](message);
  });
}

const jobContext = (job: Job): JobContext => ({ id: job.id, attempt: job.attempts, maxAttempts: job.max_attempts });

/** Thrown instead of running a job while an older job of its contact is still to run. */
class EarlierJobPending extends Error {
  constructor(readonly runAt: Date) {
    super('an earlier job of this contact is still to run');
  }
}

/**
 * A named queue runs one job at a time, but picks the job due first: a failed job pushed
 * back by its retry delay would let the contact's later jobs overtake it. A job therefore
 * waits for every older job of its contact that can still run.
 */
async function assertNoEarlierJob(pool: pg.Pool, job: Job): Promise<void> {
  const { rows } = await pool.query<{ run_at: Date }>(
    `SELECT earlier.run_at FROM graphile_worker.jobs AS earlier
      WHERE earlier.queue_name = (SELECT queue_name FROM graphile_worker.jobs WHERE id = $1)
        AND earlier.id < $1 AND earlier.attempts < earlier.max_attempts
      ORDER BY earlier.run_at DESC LIMIT 1`,
    [job.id],
  );
  if (rows[0]) throw new EarlierJobPending(rows[0].run_at);
}

/**
 * Once a job is done with (synced, or failed for good), the later jobs of its contact that
 * deferred to it run at once. They deferred to its run_at as it was then, which may be
 * graphile-worker's own retry time (e^attempt seconds, set before ours replaces it): left
 * alone, they would wait that long after the job they waited for has succeeded.
 */
async function wakeLaterJobs(pool: pg.Pool, utils: WorkerUtils, job: Job): Promise<void> {
  if (job.job_queue_id === null) return;
  // The job itself is gone once it succeeded, so its queue is found by id: the jobs view lacks it.
  const { rows } = await pool.query<{ id: string }>(
    `SELECT id FROM graphile_worker._private_jobs
      WHERE job_queue_id = $1 AND id > $2 AND run_at > now() AND locked_at IS NULL AND attempts < max_attempts`,
    [job.job_queue_id, job.id],
  );
  if (rows.length > 0) await utils.rescheduleJobs(rows.map((row) => row.id), { runAt: new Date() });
}

/**
 * Runs the mirror jobs with graphile-worker: SKIP LOCKED fetching, so several processes
 * can share one database without running a job twice; per-contact queues for order.
 * graphile-worker's own retry delay is fixed (e^attempt seconds), so each failed job is
 * rescheduled here: at once to "failed" when retrying cannot help, after Pipedrive's
 * Retry-After on 429, else with exponential backoff and jitter.
 */
export async function startSyncWorker(options: SyncWorkerOptions): Promise<SyncWorker> {
  const { logger, tasks } = options;
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.concurrency + 2 });
  pool.on('error', (error) => logger.warn({ err: error }, 'idle worker connection failed'));
  const utils: WorkerUtils = await makeWorkerUtils({ pgPool: pool, logger: graphileLogger(logger) });
  const runner: Runner = await run({
    pgPool: pool,
    concurrency: options.concurrency,
    pollInterval: options.pollIntervalMs,
    noHandleSignals: true,
    logger: graphileLogger(logger),
    taskList: {
      [MIRROR_CONTACT]: async (payload, helpers) => {
        await assertNoEarlierJob(pool, helpers.job);
        await tasks.mirrorContact(payload as MirrorContactPayload, jobContext(helpers.job));
      },
      [MIRROR_NOTE]: async (payload, helpers) => {
        await assertNoEarlierJob(pool, helpers.job);
        await tasks.mirrorNote(payload as MirrorNotePayload, jobContext(helpers.job));
      },
    },
  });

  const releaseAbandonedJobs = () =>
    releaseStaleLocks(pool, utils, options.staleLockMs).catch((error: unknown) =>
      logger.warn({ err: error }, 'could not release the jobs of dead workers'),
    );
  await releaseAbandonedJobs();
  const sweeper = setInterval(releaseAbandonedJobs, Math.max(1_000, options.staleLockMs / 2));
  sweeper.unref();

  const reschedules = new Set<Promise<void>>();
  const wake = (job: Job) =>
    wakeLaterJobs(pool, utils, job).catch((error: unknown) =>
      logger.warn({ jobId: job.id, err: error }, 'could not wake the jobs waiting for a mirror job'),
    );
  runner.events.on('job:complete', ({ job, error }) => {
    const outcome: Promise<'synced' | 'retry' | 'failed' | undefined> = error
      ? reschedule(utils, job, error, options.retry, logger)
      : Promise.resolve('synced');
    const handled = outcome
      .then(async (result) => {
        if (result === 'synced' || result === 'failed') await wake(job);
        if (result) options.onJobOutcome?.(job.task_identifier, result);
      })
      .finally(() => reschedules.delete(handled));
    reschedules.add(handled);
  });

  return {
    async stop() {
      clearInterval(sweeper);
      await runner.stop();
      await Promise.all(reschedules);
      await utils.release();
      await pool.end();
    },
  };
}

/**
 * graphile-worker leaves the jobs of a killed process locked for four hours. A mirror job
 * takes seconds, so a much older lock means its worker is gone: unlock its jobs and queues.
 * A job that did reach Pipedrive before the kill is safe to run again (see MirrorTasks).
 */
async function releaseStaleLocks(pool: pg.Pool, utils: WorkerUtils, staleLockMs: number): Promise<void> {
  const { rows } = await pool.query<{ locked_by: string }>(
    `SELECT DISTINCT locked_by FROM graphile_worker.jobs
      WHERE locked_by IS NOT NULL AND locked_at < now() - make_interval(secs => $1::float8 / 1000)`,
    [staleLockMs],
  );
  if (rows.length > 0) await utils.forceUnlockWorkers(rows.map((row) => row.locked_by));
}

/** Sets when a failed job runs again; returns what became of it (undefined: a deferral, not a failure). */
async function reschedule(
  utils: WorkerUtils,
  job: Job,
  error: unknown,
  retry: RetrySettings,
  logger: Logger,
): Promise<'retry' | 'failed' | undefined> {
  const message = error instanceof Error ? error.message : String(error);
  const context = { jobId: job.id, task: job.task_identifier, payload: job.payload, attempt: job.attempts, error: message };
  if (error instanceof EarlierJobPending) {
    // Not an attempt: come back just after the older job, which then runs first.
    await utils
      .rescheduleJobs([job.id], { runAt: new Date(error.runAt.getTime() + 1), attempts: job.attempts - 1 })
      .catch((rescheduleError: unknown) => logger.warn({ ...context, err: rescheduleError }, 'could not defer a mirror job'));
    return undefined;
  }
  if (job.attempts >= job.max_attempts) {
    logger.error(context, 'mirror job failed for good; POST /contact/:id/sync queues it again');
    return 'failed';
  }
  const delay = retryDelayMs(error, job.attempts, retry);
  try {
    if (delay === null) {
      await utils.permanentlyFailJobs([job.id], message);
      logger.error(context, 'mirror job failed and retrying cannot help; POST /contact/:id/sync queues it again');
      return 'failed';
    }
    await utils.rescheduleJobs([job.id], { runAt: new Date(Date.now() + delay) });
    logger.warn({ ...context, retryInMs: delay }, 'mirror job failed; will retry');
  } catch (rescheduleError) {
    // graphile-worker's own schedule (e^attempt seconds) stays in force.
    logger.warn({ ...context, err: rescheduleError }, 'could not reschedule a failed mirror job');
  }
  return 'retry';
}
