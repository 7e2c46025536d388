import { withClient } from '../../src/db/pg-admin';
import type { FakePipedrive } from '../../testkit/fake-pipedrive';

/**
 * The drain against a daily token budget that covers only part of the backlog, with a short "day":
 * the backlog is queued as bulk work (as an import is), the worker runs with a reserve, and live
 * changes are written while bulk work is held back. When the fake's day ends, the benchmark does
 * what the clock does at PIPEDRIVE_BUDGET_RESET_HOUR_UTC: the recorded budget day becomes
 * yesterday's (and a pause in force is ended, as `mirror resume` would), and the rest must go.
 */
export interface BudgetDaySettings {
  /** The share of the backlog the day's budget covers. */
  share: number;
  dayMs: number;
  /** PIPEDRIVE_DAILY_TOKEN_RESERVE for the worker. */
  reserve: number;
  /** Live contacts written while bulk work is held back. */
  live: number;
}

export interface BudgetDayResult {
  dailyTokens: number;
  reserve: number;
  dayMs: number;
  /** When bulk work stopped (no Pipedrive call for HELD_AFTER_MS), from the worker's start; null if it never did. */
  heldAtSeconds: number | null;
  bulkSyncedWhenHeld: number;
  /** Tokens Pipedrive had left for the day when bulk work stopped. */
  tokensLeftWhenHeld: number;
  live: { written: number; syncedWithinSeconds: number | null; bulkSyncedMeanwhile: number };
  /** When each day ended, and the bulk contacts synced by then. */
  dayEnds: { atSeconds: number; bulkSynced: number }[];
}

/** A quiet spell this long, with bulk work left before the day's end, means bulk work is held back. */
const HELD_AFTER_MS = 3_000;
/** A new contact costs 5 tokens; the index page 10. */
const TOKENS_PER_CONTACT = 5;

export const budgetDayTokens = (settings: BudgetDaySettings, contacts: number) =>
  Math.round(settings.share * contacts * TOKENS_PER_CONTACT) + settings.reserve + 10;

async function counts(databaseUrl: string): Promise<{ bulk: number; live: number }> {
  return withClient(databaseUrl, async (client) => {
    const { rows } = await client.query<{ bulk: number; live: number }>(
      `SELECT count(*) FILTER (WHERE email LIKE 'drain-%')::int AS bulk, count(*) FILTER (WHERE email LIKE 'live-%')::int AS live
         FROM contacts WHERE sync_status = 'synced'`,
    );
    return rows[0] ?? { bulk: 0, live: 0 };
  });
}

export class BudgetDay {
  private readonly result: BudgetDayResult;
  private liveWrittenAt: number | undefined;

  constructor(
    private readonly settings: BudgetDaySettings,
    private readonly contacts: number,
    private readonly databaseUrl: string,
    private readonly fake: FakePipedrive,
    /** When the fake's day began (its reset()), which is when the workers started. */
    private readonly dayStartedAt: number,
  ) {
    this.result = {
      dailyTokens: budgetDayTokens(settings, contacts),
      reserve: settings.reserve,
      dayMs: settings.dayMs,
      heldAtSeconds: null,
      bulkSyncedWhenHeld: 0,
      tokensLeftWhenHeld: 0,
      live: { written: 0, syncedWithinSeconds: null, bulkSyncedMeanwhile: 0 },
      dayEnds: [],
    };
  }

  get workerSettings(): Record<string, string> {
    return { PIPEDRIVE_DAILY_TOKEN_RESERVE: String(this.settings.reserve) };
  }

  /** Every contact the run must end with synced: the backlog and the live ones. */
  get total(): number {
    return this.contacts + this.settings.live;
  }

  /** The backlog becomes bulk work, as an import queues it. */
  async queueBacklogAsBulk(): Promise<void> {
    await withClient(this.databaseUrl, (client) => client.query('UPDATE contacts SET mirror_priority = 1 WHERE mirror_due_at IS NOT NULL'));
  }

  /** Called on every turn of the drain's loop. */
  async step(log: (line: string) => void): Promise<void> {
    const now = Date.now();
    const seconds = (at: number) => (at - this.dayStartedAt) / 1000;
    if (this.result.heldAtSeconds === null && this.result.dayEnds.length === 0) {
      const lastCall = this.fake.requests.at(-1)?.at ?? this.dayStartedAt;
      if (now - lastCall >= HELD_AFTER_MS && now < this.dayStartedAt + this.settings.dayMs) {
        const synced = await counts(this.databaseUrl);
        if (synced.bulk < this.contacts) {
          this.result.heldAtSeconds = seconds(lastCall);
          this.result.bulkSyncedWhenHeld = synced.bulk;
          this.result.tokensLeftWhenHeld = this.result.dailyTokens - this.fake.tokensSpent;
          log(`  budget: bulk work held after ${synced.bulk} contacts, ${this.result.tokensLeftWhenHeld} tokens left (reserve ${this.settings.reserve}); writing ${this.settings.live} live contacts`);
          await this.writeLiveContacts();
        }
      }
    }
    if (this.liveWrittenAt !== undefined && this.result.live.syncedWithinSeconds === null) {
      const synced = await counts(this.databaseUrl);
      if (synced.live >= this.settings.live) {
        this.result.live.syncedWithinSeconds = (now - this.liveWrittenAt) / 1000;
        this.result.live.bulkSyncedMeanwhile = synced.bulk - this.result.bulkSyncedWhenHeld;
      }
    }
    if (now >= this.dayStartedAt + (this.result.dayEnds.length + 1) * this.settings.dayMs) {
      const { bulk } = await counts(this.databaseUrl);
      this.result.dayEnds.push({ atSeconds: seconds(now), bulkSynced: bulk });
      log(`  budget: day ${this.result.dayEnds.length} is over after ${Math.round(seconds(now))} s (${bulk} bulk contacts synced): the budget day rolls over`);
      await withClient(this.databaseUrl, async (client) => {
        await client.query("UPDATE pipedrive_budget SET day_start = day_start - interval '1 day'");
        await client.query('DELETE FROM mirror_pause');
      });
    }
  }

  report(): BudgetDayResult {
    return this.result;
  }

  /** Live contacts, as psql or the API writes them: the trigger queues them as live work. */
  private async writeLiveContacts(): Promise<void> {
    await withClient(this.databaseUrl, (client) =>
      client.query(
        `INSERT INTO contacts (name, email, sync_status)
         SELECT 'Live contact ' || i, 'live-' || i || '@example.com', 'pending' FROM generate_series(1, $1::int) AS i`,
        [this.settings.live],
      ),
    );
    this.liveWrittenAt = Date.now();
    this.result.live.written = this.settings.live;
  }
}
