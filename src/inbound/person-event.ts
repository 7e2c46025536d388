import { z } from 'zod';
import { parsePerson } from '../crm/pipedrive-client';
import type { CrmPerson } from '../mirror/crm-gateway';

/**
 * Pipedrive's webhook v2 delivery for persons (../shared notes, "Webhooks v2"): `{ meta, data,
 * previous }`. Ids arrive as strings or numbers, and the timestamp as RFC 3339 or Unix time,
 * depending on the account's generation: both are read. Unknown fields are kept and ignored.
 */
const Id = z.union([z.string().regex(/^\d{1,10}$/), z.number().int().positive()]);

export const PipedriveWebhookDelivery = z
  .looseObject({
    meta: z.looseObject({
      id: z.union([z.string().min(1).max(200), z.number().int()]).meta({ description: 'The delivery id: the same on every retry of one event' }),
      action: z.enum(['create', 'change', 'delete']),
      entity: z.literal('person').meta({ description: 'Only persons are subscribed to' }),
      entity_id: Id,
      timestamp: z.union([z.string().min(1), z.number().nonnegative()]).meta({ description: 'When the event happened' }),
      version: z.string().optional(),
      change_source: z.string().optional(),
      attempt: z.number().int().optional(),
      merged_to_id: Id.nullable().optional().meta({ description: 'On the delete of a merged person: the survivor' }),
    }),
    data: z.looseObject({ id: Id, name: z.string() }).nullable().optional().meta({ description: 'The person (for a delete, as it was)' }),
    previous: z.record(z.string(), z.unknown()).nullable().optional().meta({ description: 'Only the fields that changed, as they were' }),
  })
  .meta({ id: 'PipedriveWebhookDelivery' });
export type PipedriveWebhookDelivery = z.infer<typeof PipedriveWebhookDelivery>;

/** What a delivery says happened to a person. */
export interface PersonEvent {
  deliveryId: string;
  action: 'create' | 'change' | 'delete';
  personId: number;
  /** When it happened in Pipedrive. */
  at: Date;
  /** The person's state with the event; null for a delete that carries none. */
  person: CrmPerson | null;
  /** The survivor, when the delete is the removed side of a merge. */
  mergedInto: number | null;
}

/** Unix seconds (or milliseconds, for large values) or an RFC 3339 string; null when unreadable. */
function eventTime(value: string | number): Date | null {
  const date = typeof value === 'number' ? new Date(value < 1e12 ? value * 1000 : value) : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** The event of a delivery that passed the schema; a string saying what is wrong when it cannot be read. */
export function toPersonEvent(delivery: PipedriveWebhookDelivery): PersonEvent | string {
  const { meta, data } = delivery;
  const at = eventTime(meta.timestamp);
  if (!at) return 'meta.timestamp is not a time';
  const personId = Number(meta.entity_id);
  const person = data ? parsePerson({ ...data, id: Number(data.id) }) : null;
  if (meta.action !== 'delete' && person === null) return 'data is not a person';
  if (person && person.id !== personId) return 'data.id differs from meta.entity_id';
  const mergedInto = meta.action === 'delete' && meta.merged_to_id != null ? Number(meta.merged_to_id) : null;
  return { deliveryId: String(meta.id), action: meta.action, personId, at, person, mergedInto };
}
