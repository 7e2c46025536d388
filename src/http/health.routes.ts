import { z } from 'zod';
import type { CrmState } from '../contacts/mirror-port';
import { defineRoute, type AnyRoute } from './route';

const TAG = 'Health';

const Liveness = z
  .object({ status: z.literal('ok'), timestamp: z.iso.datetime() })
  .meta({ id: 'Liveness' });

const ServiceHealth = z
  .object({
    status: z.enum(['ok', 'degraded', 'unavailable']).meta({
      description: 'unavailable: the database does not answer (503); degraded: Pipedrive fails, local writes still work',
    }),
    timestamp: z.iso.datetime(),
    crm_configured: z.boolean(),
    crm: z.enum(['ok', 'unauthorized', 'unreachable', 'disabled']).meta({
      description: 'How Pipedrive answered the mirror lately (not asked on each request)',
    }),
    database: z.enum(['up', 'down']),
  })
  .meta({ id: 'ServiceHealth' });

/** What the readiness probe asks; built by the composition root. */
export interface HealthChecks {
  /** 'down' when the database does not answer. */
  database(): Promise<'up' | 'down'>;
  /** How Pipedrive answered the mirror lately, as recorded (never a call to Pipedrive). */
  crm(): Promise<CrmState>;
  crmConfigured: boolean;
}

export function healthRoutes(checks: HealthChecks): AnyRoute[] {
  return [
    defineRoute({
      method: 'get',
      path: '/health',
      summary: 'Liveness: the process answers (the database is not consulted)',
      tag: TAG,
      responses: { 200: { description: 'Alive', schema: Liveness } },
      handle: async () => ({ status: 200, body: { status: 'ok', timestamp: new Date().toISOString() } }),
    }),
    defineRoute({
      method: 'get',
      path: '/contact/health',
      summary: 'Readiness: the database answers; also how the Pipedrive mirror fares',
      tag: TAG,
      responses: {
        200: { description: 'Ready', schema: ServiceHealth },
        503: { description: 'The database does not answer', schema: ServiceHealth },
      },
      handle: async () => {
        const [database, crm] = await Promise.all([checks.database(), checks.crm()]);
        const crmFailing = crm === 'unauthorized' || crm === 'unreachable';
        return {
          status: database === 'up' ? 200 : 503,
          body: {
            status: database === 'down' ? 'unavailable' : crmFailing ? 'degraded' : 'ok',
            timestamp: new Date().toISOString(),
            crm_configured: checks.crmConfigured,
            crm,
            database,
          },
        };
      },
    }),
  ];
}
