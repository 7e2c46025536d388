import { listen } from '../db/notifications';
import type { Logger } from '../logger';
import type { MirrorOutcome, MirrorRuns } from './mirror-runs';
import { MIRROR_CHANNEL, type MirrorClaim, type MirrorRepository } from './mirror.repository';
import { budgetDayStart, type BudgetSettings } from './token-budget';

export interface MirrorWorkerOptions {
  /** For LISTEN: the statements themselves go through `store`. */
  databaseUrl: string;
  store: MirrorRepository;
  runs: MirrorRuns;
  logger: Logger;
  /** Contacts mirrored at once by this process. */
  concurrency: number;
  /** How often due work is looked for without a notification (retries fall due this way). */
  pollIntervalMs: number;
  /** How long a claim lasts: a run still going after it may be taken over by another worker. */
  leaseMs: number;
  /** The daily token budget's reserve, below which bulk work waits. */
  budget: BudgetSettings;
  /** Told of every finished run. */
  onOutcome?: (outcome: MirrorOutcome) => void;
  /** Work done at start and every `intervalMs` beside the runs (the person index's refresh). */
  upkeep?: { intervalMs: number; run: () => Promise<unknown> };
}

export interface MirrorWorker {
  /** Claims nothing more, lets running runs finish, then stops. */
  stop(): Promise<void>;
}

/**
 * Runs the mirror: claims due contacts (MirrorRepository.claim: SKIP LOCKED, so processes share
 * the work without running one contact twice) up to its concurrency, whenever a write notifies
 * (NOTIFY contact_mirror), a run ends, or the poll interval passes.
 */
export async function startMirrorWorker(options: MirrorWorkerOptions): Promise<MirrorWorker> {
  const { store, runs, logger, concurrency } = options;
  const running = new Set<Promise<void>>();
  let stopping = false;
  let pass: Promise<void> | null = null;
  let again = false;

  const start = (claim: MirrorClaim) => {
    const run: Promise<void> = runs
      .run(claim)
      .then(
        (outcome) => options.onOutcome?.(outcome),
        (error: unknown) =>
          // The database failed mid-run: the claim expires and the work is taken up again then.
          logger.error({ err: error, contactId: claim.contactId }, 'mirror run broke off; it runs again when its claim expires'),
      )
      .finally(() => {
        running.delete(run);
        void claimDue();
      });
    running.add(run);
  };

  const claimWhileFree = async () => {
    do {
      again = false;
      const free = concurrency - running.size;
      if (stopping || free <= 0) return;
      let claims: MirrorClaim[];
      try {
        claims = await store.claim(free, options.leaseMs, {
          dayStart: budgetDayStart(new Date(), options.budget.resetHourUtc),
          reserve: options.budget.reserve,
        });
      } catch (error) {
        logger.warn({ err: error }, 'could not look for mirror work; trying again at the next poll');
        return;
      }
      for (const claim of claims) start(claim);
      // A full batch: more may be due.
      if (claims.length === free) again = true;
    } while (again);
  };

  /** One claiming pass at a time; a call during a pass makes it look once more. */
  const claimDue = (): Promise<void> => {
    if (pass) {
      again = true;
      return pass;
    }
    pass = claimWhileFree().finally(() => {
      pass = null;
    });
    return pass;
  };

  let upkeeping: Promise<void> | null = null;
  /** One upkeep at a time; a failure waits for the next interval. */
  const upkeep = () => {
    if (!options.upkeep || upkeeping || stopping) return;
    upkeeping = options.upkeep
      .run()
      .then(
        () => undefined,
        (error: unknown) => logger.warn({ err: error }, 'mirror upkeep failed; trying again at the next interval'),
      )
      .finally(() => {
        upkeeping = null;
      });
  };

  const listener = await listen(options.databaseUrl, MIRROR_CHANNEL, () => void claimDue(), logger);
  const poll = setInterval(() => void claimDue(), options.pollIntervalMs);
  poll.unref();
  const upkeepTimer = options.upkeep ? setInterval(upkeep, options.upkeep.intervalMs) : undefined;
  upkeepTimer?.unref();
  upkeep();
  await claimDue();

  return {
    async stop() {
      stopping = true;
      clearInterval(poll);
      clearInterval(upkeepTimer);
      await listener.close();
      await pass;
      await upkeeping;
      while (running.size > 0) await Promise.all(running);
    },
  };
}
