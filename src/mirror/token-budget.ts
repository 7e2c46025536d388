import type { Logger } from '../logger';
import type { MirrorRepository } from './mirror.repository';

/** How the mirror spends Pipedrive's daily token budget, which every app and user of the company shares. */
export interface BudgetSettings {
  /** Below this many tokens left in the day, only live changes run (PIPEDRIVE_DAILY_TOKEN_RESERVE). */
  reserve: number;
  /** The hour (UTC) at which the budget comes back (PIPEDRIVE_BUDGET_RESET_HOUR_UTC). */
  resetHourUtc: number;
}

const DAY_MS = 86_400_000;

/** When the budget's current day began: the last reset at or before `now`. */
export function budgetDayStart(now: Date, resetHourUtc: number): Date {
  const reset = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), resetHourUtc));
  return reset.getTime() <= now.getTime() ? reset : new Date(reset.getTime() - DAY_MS);
}

/** When the budget next comes back. */
export const nextBudgetReset = (now: Date, resetHourUtc: number): Date => new Date(budgetDayStart(now, resetHourUtc).getTime() + DAY_MS);

/**
 * Records what each Pipedrive call cost, and what Pipedrive reported left, in the row every process
 * shares (pipedrive_budget). Writes run in the background, one after another, so a call never waits
 * for its bookkeeping; one that fails is logged and the next call's corrects the count.
 */
export class TokenBudget {
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: MirrorRepository,
    private readonly settings: BudgetSettings,
    private readonly logger: Logger,
  ) {}

  record(tokenCost: number, reported: { limit?: number; left?: number }): void {
    if (tokenCost === 0 && reported.left === undefined && reported.limit === undefined) return;
    const dayStart = budgetDayStart(new Date(), this.settings.resetHourUtc);
    this.writes = this.writes.then(() =>
      this.store.spendTokens(dayStart, tokenCost, reported).catch((error: unknown) => {
        this.logger.warn({ err: error }, 'could not record the Pipedrive tokens a call spent');
      }),
    );
  }

  /** Resolves once every recorded call is written (for shutdown and tests). */
  flushed(): Promise<void> {
    return this.writes;
  }
}
