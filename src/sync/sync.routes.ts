import { z } from 'zod';
import { commonErrors } from '../http/error-response';
import { defineRoute, type AnyRoute } from '../http/route';
import type { SyncRepository } from './sync.repository';

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
    jobs: z.object({
      queued: z.number().int().meta({ description: 'Jobs waiting to run or to be retried' }),
      failed: z.number().int().meta({ description: 'Jobs that gave up; POST /contact/{id}/sync queues them again' }),
    }),
    oldest_pending_age_seconds: z.number().nullable().meta({ description: 'Age of the oldest queued job; null when none' }),
  })
  .meta({ id: 'SyncStatus' });

export function syncRoutes(store: SyncRepository): AnyRoute[] {
  return [
    defineRoute({
      method: 'get',
      path: '/sync/status',
      summary: 'Mirror progress: rows by sync status, and the job queue',
      tag: 'Pipedrive mirror',
      responses: { 200: { description: 'Counts', schema: SyncStatus }, ...commonErrors },
      handle: async () => {
        const overview = await store.overview();
        const oldest = overview.jobs.oldestQueuedAt;
        return {
          status: 200,
          body: {
            contacts: overview.contacts,
            notes: overview.notes,
            jobs: { queued: overview.jobs.queued, failed: overview.jobs.failed },
            oldest_pending_age_seconds: oldest ? Math.max(0, (Date.now() - oldest.getTime()) / 1000) : null,
          },
        };
      },
    }),
  ];
}
