import type { TransactionScope } from '../db/transaction-scope';
import type { PersonEvent } from './person-event';

/** A recorded delivery claimed for processing. */
export interface ClaimedDelivery {
  id: string;
  payload: unknown;
}

export interface DeliveryOverview {
  lastReceivedAt: Date | null;
  /** Recorded and not yet processed. */
  waiting: number;
  /** Processing failed on the last try. */
  failed: number;
  /** How long the last processed delivery took from the event in Pipedrive to its processing. */
  lastLagMs: number | null;
}

/** Webhook deliveries (pipedrive_webhook_deliveries): recorded, claimed, processed. */
export class DeliveriesRepository {
  constructor(private readonly db: TransactionScope) {}

  /** Records a delivery; false when its id was recorded before (a duplicate or a retry). */
  async record(event: PersonEvent, payload: unknown): Promise<boolean> {
    const inserted = await this.db.client.$executeRaw`
      INSERT INTO pipedrive_webhook_deliveries (id, action, entity, entity_id, event_at, payload)
      VALUES (${event.deliveryId}, ${event.action}, 'person', ${event.personId}, ${event.at}, ${JSON.stringify(payload)}::jsonb)
      ON CONFLICT (id) DO NOTHING`;
    return inserted > 0;
  }

  /**
   * Claims up to `limit` unprocessed deliveries for `leaseMs`, oldest event first; SKIP LOCKED, so
   * that processes share them. One that keeps failing is tried at most `maxAttempts` times.
   */
  async claim(limit: number, leaseMs: number, maxAttempts: number): Promise<ClaimedDelivery[]> {
    return this.db.client.$queryRaw<ClaimedDelivery[]>`
      UPDATE pipedrive_webhook_deliveries AS d
         SET claimed_until = now() + make_interval(secs => ${leaseMs}::float8 / 1000), attempts = d.attempts + 1
        FROM (SELECT id FROM pipedrive_webhook_deliveries
               WHERE processed_at IS NULL AND attempts < ${maxAttempts} AND (claimed_until IS NULL OR claimed_until <= now())
               ORDER BY event_at, received_at
               LIMIT ${limit}
               FOR UPDATE SKIP LOCKED) AS due
       WHERE d.id = due.id
      RETURNING d.id, d.payload`;
  }

  /** The payload of the latest create or change delivered for a person, if any (processed or not). */
  async latestState(personId: number): Promise<unknown> {
    const [row] = await this.db.client.$queryRaw<{ payload: unknown }[]>`
      SELECT payload FROM pipedrive_webhook_deliveries
       WHERE entity_id = ${personId} AND action IN ('create', 'change')
       ORDER BY event_at DESC LIMIT 1`;
    return row?.payload;
  }

  async processed(id: string, outcome: string): Promise<void> {
    await this.db.client.$executeRaw`
      UPDATE pipedrive_webhook_deliveries SET processed_at = now(), outcome = ${outcome}, claimed_until = NULL WHERE id = ${id}`;
  }

  /** Processing failed: it is tried again after `retryMs` (until its attempts run out). */
  async failed(id: string, message: string, retryMs: number): Promise<void> {
    await this.db.client.$executeRaw`
      UPDATE pipedrive_webhook_deliveries
         SET outcome = ${`failed: ${message}`}, claimed_until = now() + make_interval(secs => ${retryMs}::float8 / 1000)
       WHERE id = ${id}`;
  }

  async overview(): Promise<DeliveryOverview> {
    const [row] = await this.db.client.$queryRaw<{ last_received_at: Date | null; waiting: number; failed: number; last_lag_ms: number | null }[]>`
      SELECT (SELECT max(received_at) FROM pipedrive_webhook_deliveries) AS last_received_at,
             (SELECT count(*) FROM pipedrive_webhook_deliveries WHERE processed_at IS NULL)::int AS waiting,
             (SELECT count(*) FROM pipedrive_webhook_deliveries WHERE processed_at IS NULL AND outcome LIKE 'failed:%')::int AS failed,
             (SELECT (extract(epoch FROM processed_at - event_at) * 1000)::float8 FROM pipedrive_webhook_deliveries
               WHERE processed_at IS NOT NULL ORDER BY processed_at DESC LIMIT 1) AS last_lag_ms`;
    return {
      lastReceivedAt: row?.last_received_at ?? null,
      waiting: row?.waiting ?? 0,
      failed: row?.failed ?? 0,
      lastLagMs: row?.last_lag_ms ?? null,
    };
  }
}
