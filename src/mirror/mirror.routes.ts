import { z } from 'zod';
import { commonErrors } from '../http/error-response';
import { defineRoute, type AnyRoute } from '../http/route';
import type { MirrorRepository } from './mirror.repository';
import { budgetDayStart, type BudgetSettings } from './token-budget';

const Counts = z.object({
  disabled: z.number().int(),
  pending: z.number().int(),
  synced: z.number().int(),
  failed: z.number().int(),
});

const SyncStatus = z
  .object({
    contacts: Counts,
    notes: Counts,
    queue: z
      .object({
        live: z.number().int().meta({ description: 'Contacts whose changes or notes wait for the mirror (due now or retrying), live priority' }),
        bulk: z.number().int().meta({ description: 'The same for bulk work, which runs after every due live change' }),
      })
      .meta({ description: 'Contacts waiting for the mirror; a contact and its notes are one unit of work' }),
    oldest_pending_age_seconds: z.number().nullable().meta({ description: 'How long the longest-waiting contact has waited; null when none waits' }),
    paused_until: z.iso.datetime().nullable().meta({ description: 'No mirror work starts before this time (after a 429 from Pipedrive, or an operator’s pause); null when not paused' }),
    pause_reason: z.string().nullable(),
    pipedrive_tokens: z
      .object({
        spent_today: z.number().int().meta({ description: 'Tokens the mirror spent since the daily budget last came back' }),
        left: z.number().int().nullable().meta({ description: 'Tokens left in the day for the whole company, as Pipedrive last reported them and counted down since; null until reported' }),
        limit: z.number().int().nullable().meta({ description: 'The daily budget as Pipedrive reported it; null until reported' }),
        reserve: z.number().int().meta({ description: 'PIPEDRIVE_DAILY_TOKEN_RESERVE: below it, only live changes run' }),
        resets_at: z.iso.datetime().meta({ description: 'When the budget next comes back (PIPEDRIVE_BUDGET_RESET_HOUR_UTC)' }),
      })
      .meta({ description: 'Pipedrive\'s daily token budget, shared by every app and user of the company' }),
  })
  .meta({ id: 'SyncStatus' });

export function mirrorRoutes(store: MirrorRepository, budget: BudgetSettings): AnyRoute[] {
  return [
    defineRoute({
      method: 'get',
      path: '/sync/status',
      summary: 'Mirror progress: rows by sync status, the queue, and any pause',
      tag: 'Pipedrive mirror',
      responses: { 200: { description: 'Counts', schema: SyncStatus }, ...commonErrors },
      handle: async () => {
        const now = new Date();
        const dayStart = budgetDayStart(now, budget.resetHourUtc);
        const overview = await store.overview(dayStart);
        const oldest = overview.oldestQueuedAt;
        return {
          status: 200,
          body: {
            contacts: overview.contacts,
            notes: overview.notes,
            queue: overview.queued,
            oldest_pending_age_seconds: oldest ? Math.max(0, (Date.now() - oldest.getTime()) / 1000) : null,
            paused_until: overview.pause?.until.toISOString() ?? null,
            pause_reason: overview.pause?.reason ?? null,
            pipedrive_tokens: {
              spent_today: overview.tokens.spent,
              left: overview.tokens.left,
              limit: overview.tokens.limit,
              reserve: budget.reserve,
              resets_at: new Date(dayStart.getTime() + 86_400_000).toISOString(),
            },
          },
        };
      },
    }),
  ];
}
