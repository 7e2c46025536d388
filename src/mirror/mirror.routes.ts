import { z } from 'zod';
import { commonErrors } from '../http/error-response';
import { defineRoute, type AnyRoute } from '../http/route';
import type { InboundStatus } from '../inbound/inbound-sync';
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
    inbound: z
      .object({
        mode: z.enum(['apply', 'index-only', 'off']).meta({ description: 'PIPEDRIVE_INBOUND' }),
        last_delivery_at: z.iso.datetime().nullable().meta({ description: 'When the last webhook delivery was received; null before any' }),
        deliveries_waiting: z.number().int().meta({ description: 'Deliveries recorded and not yet processed' }),
        deliveries_failed: z.number().int().meta({ description: 'Of those, the ones whose last processing failed (tried again shortly)' }),
        delivery_lag_seconds: z.number().nullable().meta({ description: 'From the change in Pipedrive to its processing here, for the last delivery processed' }),
        last_refresh_at: z.iso.datetime().nullable().meta({ description: 'When the last refresh of the person index (which also finds changes whose webhook was lost) began' }),
        refresh_age_seconds: z.number().nullable().meta({ description: 'How long ago that was: a change whose webhook was lost arrives within the refresh interval' }),
      })
      .nullable()
      .meta({ description: 'Changes made in Pipedrive, taken in (two-way sync); null when PIPEDRIVE_INBOUND=off' }),
  })
  .meta({ id: 'SyncStatus' });

export function mirrorRoutes(store: MirrorRepository, budget: BudgetSettings, inbound?: { status(): Promise<InboundStatus> }): AnyRoute[] {
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
        const [overview, incoming] = await Promise.all([store.overview(dayStart), inbound?.status() ?? null]);
        const oldest = overview.oldestQueuedAt;
        const seconds = (ms: number | null) => (ms === null ? null : Math.max(0, ms / 1000));
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
            inbound: incoming && {
              mode: incoming.mode,
              last_delivery_at: incoming.lastDeliveryAt?.toISOString() ?? null,
              deliveries_waiting: incoming.deliveriesWaiting,
              deliveries_failed: incoming.deliveriesFailed,
              delivery_lag_seconds: seconds(incoming.lastDeliveryLagMs),
              last_refresh_at: incoming.lastRefreshAt?.toISOString() ?? null,
              refresh_age_seconds: seconds(incoming.lastRefreshAt && now.getTime() - incoming.lastRefreshAt.getTime()),
            },
          },
        };
      },
    }),
  ];
}
