import type { Contact, Note, SyncStatus } from '../contacts/contact';
import { contactForMirror, pendingNotesOf } from '../contacts/contact.repository';
import type { CrmState } from '../contacts/mirror-port';
import type { TransactionScope } from '../db/transaction-scope';
import type { NewPerson } from './crm-gateway';

/** A contact's mirror work, claimed by one worker until its claim expires. */
export interface MirrorClaim {
  contactId: number;
  /** The contact's change_version when claimed: what a successful run has mirrored. */
  version: number;
  /** This attempt's number, from 1. */
  attempt: number;
}

/** What a claimed run has to bring to Pipedrive: the contact as it is now, and its pending notes, oldest first. */
export interface MirrorWork extends MirrorClaim {
  contact: Contact;
  /** What was last sent to the person; null: nothing known, send every field. */
  pushed: NewPerson | null;
  notes: Note[];
}

export type MirrorPriority = 'live' | 'bulk';
const PRIORITY: Record<MirrorPriority, number> = { live: 0, bulk: 1 };

export type SyncCounts = Record<SyncStatus, number>;

export interface MirrorOverview {
  contacts: SyncCounts;
  notes: SyncCounts;
  /** Contacts with mirror work waiting (due now or retrying later), by priority. */
  queued: Record<MirrorPriority, number>;
  oldestQueuedAt: Date | null;
  pause: MirrorPause | null;
  tokens: TokenUse;
}

export interface MirrorPause {
  until: Date;
  reason: string;
}

/** Pipedrive's daily token budget this day, as the mirror knows it. */
export interface TokenUse {
  spent: number;
  /** As Pipedrive last reported it, counted down since; null until reported this day. */
  left: number | null;
  limit: number | null;
}

/** Bulk work runs only while more than `reserve` tokens are left this day (the day that began at `dayStart`). */
export interface ClaimBudget {
  dayStart: Date;
  reserve: number;
}

const emptyCounts = (): SyncCounts => ({ disabled: 0, pending: 0, synced: 0, failed: 0 });

/** The channel trigger contacts_queue_mirror notifies when mirror work becomes due. */
export const MIRROR_CHANNEL = 'contact_mirror';

/**
 * The mirror's state and its transitions, in plain SQL, one statement each. Queuing is done by
 * the triggers of migration contact_mirror_outbox (any writer of a contact or note queues it);
 * everything after that (claim, synced, failed, retry, requeue, pause) is here.
 */
export class MirrorRepository {
  constructor(private readonly db: TransactionScope) {}

  /**
   * Claims up to `limit` contacts whose mirror work is due, live before bulk, oldest due first,
   * unless the mirror is paused. SKIP LOCKED: workers in several processes never take the same
   * contact; the claim lasts `leaseMs`, after which a killed worker's contact is due again.
   */
  async claim(limit: number, leaseMs: number, budget: ClaimBudget): Promise<MirrorClaim[]> {
    const rows = await this.db.client.$queryRaw<{ id: number; change_version: number; mirror_attempts: number }[]>`
      UPDATE contacts AS c
         SET mirror_claimed_until = now() + make_interval(secs => ${leaseMs}::float8 / 1000),
             mirror_attempts = c.mirror_attempts + 1
        FROM (SELECT id FROM contacts
               WHERE mirror_due_at <= now() AND (mirror_claimed_until IS NULL OR mirror_claimed_until <= now()) AND NOT crm_deleted
                 AND NOT EXISTS (SELECT 1 FROM mirror_pause WHERE paused_until > now())
                 AND (mirror_priority = ${PRIORITY.live} OR NOT EXISTS (
                   SELECT 1 FROM pipedrive_budget WHERE day_start >= ${budget.dayStart} AND tokens_left <= ${budget.reserve}))
               ORDER BY mirror_priority, mirror_due_at, id
               LIMIT ${limit}
               FOR UPDATE SKIP LOCKED) AS due
       WHERE c.id = due.id
      RETURNING c.id, c.change_version, c.mirror_attempts`;
    return rows.map((row) => ({ contactId: row.id, version: row.change_version, attempt: row.mirror_attempts }));
  }

  /** The claimed contact and its pending notes; null when the contact was deleted since. */
  async work(claim: MirrorClaim): Promise<MirrorWork | null> {
    const [found, notes] = await Promise.all([contactForMirror(this.db.client, claim.contactId), pendingNotesOf(this.db.client, claim.contactId)]);
    if (!found) return null;
    return { ...claim, contact: found.contact, pushed: (found.pushed as NewPerson | null) ?? null, notes };
  }

  /** Whether a Pipedrive person is already the mirror of some contact. */
  async isPersonLinked(crmId: number): Promise<boolean> {
    const rows = await this.db.client.$queryRaw<unknown[]>`SELECT 1 FROM contacts WHERE crm_id = ${crmId} LIMIT 1`;
    return rows.length > 0;
  }

  /** Whether a Pipedrive note is already the mirror of some note. */
  async isNoteLinked(crmId: number): Promise<boolean> {
    const rows = await this.db.client.$queryRaw<unknown[]>`SELECT 1 FROM notes WHERE crm_id = ${crmId} LIMIT 1`;
    return rows.length > 0;
  }

  /** Links the contact to its person at once: a later failure must not lose which person it created. */
  async linkPerson(contactId: number, crmId: number): Promise<void> {
    await this.db.client.$executeRaw`UPDATE contacts SET crm_id = ${crmId} WHERE id = ${contactId} AND crm_id IS NULL AND NOT crm_deleted`;
  }

  /**
   * The linked person is gone from Pipedrive: the contact forgets it, with an audit event saying why.
   * Returns false when the contact has left the mirror meanwhile (the sales team deleted the person:
   * src/inbound), so that no other person is found or created for it.
   */
  async unlinkPerson(contactId: number, crmId: number, reason: string): Promise<boolean> {
    const [row] = await this.db.client.$queryRaw<{ mirrored: boolean }[]>`
      WITH unlinked AS (
        UPDATE contacts SET crm_id = NULL, crm_pushed = NULL WHERE id = ${contactId} AND crm_id = ${crmId} RETURNING id
      ), event AS (
        INSERT INTO contact_events (contact_id, type, source, payload)
        SELECT id, 'crm_unlinked'::contact_event_type, 'mirror'::contact_event_source, jsonb_build_object('crm_id', ${crmId}::int, 'reason', ${reason}::text) FROM unlinked
      )
      SELECT NOT crm_deleted AS mirrored FROM contacts WHERE id = ${contactId}`;
    return row?.mirrored ?? false;
  }

  /**
   * The contact's state at `version` is in Pipedrive (`pushed`): synced, unless it changed again
   * meanwhile. `action` says what reached Pipedrive, for the audit trail; `crmUpdatedAt`, the
   * person's update time in the answer, makes an older state delivered later stale.
   */
  async contactMirrored(work: MirrorClaim, crmId: number, pushed: NewPerson, action: 'created' | 'linked' | 'updated', crmUpdatedAt: Date | null): Promise<void> {
    await this.db.client.$executeRaw`
      WITH mirrored AS (
        UPDATE contacts
           SET mirrored_version = GREATEST(mirrored_version, ${work.version}), crm_pushed = ${JSON.stringify(pushed)}::jsonb,
               crm_updated_at = GREATEST(crm_updated_at, ${crmUpdatedAt}::timestamptz),
               crm_synced_at = now(), crm_last_error = NULL,
               sync_status = CASE WHEN change_version > ${work.version} THEN 'pending'::sync_status ELSE 'synced'::sync_status END
         -- Not when the sales team deleted the person meanwhile (src/inbound): the contact stays out.
         WHERE id = ${work.contactId} AND NOT crm_deleted
        RETURNING id
      )
      INSERT INTO contact_events (contact_id, type, source, payload)
      SELECT id, 'crm_synced'::contact_event_type, 'mirror'::contact_event_source, jsonb_build_object('crm_id', ${crmId}::int, 'action', ${action}::text) FROM mirrored`;
  }

  async noteMirrored(note: Note, crmNoteId: number): Promise<void> {
    await this.db.client.$executeRaw`
      WITH mirrored AS (
        UPDATE notes SET crm_id = ${crmNoteId}, sync_status = 'synced', crm_synced_at = now(), crm_last_error = NULL
         WHERE id = ${note.id}
        RETURNING id, contact_id
      )
      INSERT INTO contact_events (contact_id, type, source, payload)
      SELECT contact_id, 'crm_synced'::contact_event_type, 'mirror'::contact_event_source, jsonb_build_object('note_id', id, 'crm_note_id', ${crmNoteId}::int) FROM mirrored`;
  }

  /**
   * The contact could not be mirrored. Not `final`: the error is kept while retrying. `final`: the
   * contact is failed (unless it changed since the claim: that change gets its own attempts), and
   * so are its pending notes, which need its person.
   */
  async contactFailed(work: MirrorClaim, message: string, final: boolean): Promise<void> {
    await this.db.client.$executeRaw`
      WITH contact AS (
        UPDATE contacts
           SET crm_last_error = ${message},
               sync_status = CASE WHEN ${final} AND change_version <= ${work.version} THEN 'failed'::sync_status ELSE sync_status END
         WHERE id = ${work.contactId}
        RETURNING id, sync_status
      ), failed_notes AS (
        UPDATE notes SET crm_last_error = ${message}, sync_status = 'failed'
         WHERE ${final} AND contact_id = ${work.contactId} AND sync_status = 'pending'
        RETURNING id, contact_id
      )
      INSERT INTO contact_events (contact_id, type, source, payload)
      SELECT id, 'crm_failed'::contact_event_type, 'mirror'::contact_event_source, jsonb_build_object('error', ${message}::text) FROM contact WHERE ${final} AND sync_status = 'failed'
      UNION ALL
      SELECT contact_id, 'crm_failed'::contact_event_type, 'mirror'::contact_event_source, jsonb_build_object('note_id', id, 'error', ${message}::text) FROM failed_notes`;
  }

  /** The note could not be added. Not `final`: the error is kept while retrying; `final`: the note is failed. */
  async noteFailed(note: Note, message: string, final: boolean): Promise<void> {
    await this.db.client.$executeRaw`
      WITH failed AS (
        UPDATE notes SET crm_last_error = ${message},
                         sync_status = CASE WHEN ${final} THEN 'failed'::sync_status ELSE sync_status END
         WHERE id = ${note.id}
        RETURNING id, contact_id, sync_status
      )
      INSERT INTO contact_events (contact_id, type, source, payload)
      SELECT contact_id, 'crm_failed'::contact_event_type, 'mirror'::contact_event_source, jsonb_build_object('note_id', id, 'error', ${message}::text)
        FROM failed WHERE sync_status = 'failed'`;
  }

  /**
   * Ends a run that left nothing to retry: the claim is released, and the contact is due again at
   * once if it (or a note) is still pending (changed during the run), else leaves the queue.
   */
  async releaseDone(contactId: number): Promise<void> {
    await this.db.client.$executeRaw`
      UPDATE contacts AS c
         SET mirror_claimed_until = NULL, mirror_attempts = 0,
             mirror_due_at = CASE WHEN work.waiting THEN now() END,
             mirror_queued_at = CASE WHEN work.waiting THEN c.mirror_queued_at END,
             mirror_priority = CASE WHEN work.waiting THEN c.mirror_priority ELSE 0 END
        FROM (SELECT sync_status = 'pending' OR EXISTS (SELECT 1 FROM notes WHERE contact_id = ${contactId} AND sync_status = 'pending') AS waiting
                FROM contacts WHERE id = ${contactId}) AS work
       WHERE c.id = ${contactId}`;
  }

  /** Ends a failed run that will be tried again after `delayMs`; `refund`: the attempt does not count. */
  async releaseForRetry(contactId: number, delayMs: number, refund: boolean): Promise<void> {
    await this.db.client.$executeRaw`
      UPDATE contacts
         SET mirror_claimed_until = NULL,
             mirror_due_at = now() + make_interval(secs => ${delayMs}::float8 / 1000),
             mirror_attempts = CASE WHEN ${refund} THEN greatest(mirror_attempts - 1, 0) ELSE mirror_attempts END
       WHERE id = ${contactId}`;
  }

  /**
   * Queues the contact again now with fresh attempts, and its failed notes. A contact whose state
   * Pipedrive has already is sent whole (what people changed there is overwritten). Returns how
   * many rows were queued (the contact and its notes).
   */
  async requeue(contactId: number, priority: MirrorPriority): Promise<number> {
    const [row] = await this.db.client.$queryRaw<{ queued: number }[]>`
      WITH notes_queued AS (
        UPDATE notes SET sync_status = 'pending' WHERE contact_id = ${contactId} AND sync_status = 'failed' RETURNING id
      ), contact AS (
        UPDATE contacts
           SET sync_status = 'pending', crm_deleted = false, crm_pushed = CASE WHEN sync_status = 'synced' THEN NULL ELSE crm_pushed END,
               mirror_queued_at = COALESCE(mirror_queued_at, now()), mirror_due_at = now(), mirror_attempts = 0,
               mirror_priority = ${PRIORITY[priority]}
         WHERE id = ${contactId}
        RETURNING id
      )
      SELECT ((SELECT count(*) FROM contact) + (SELECT count(*) FROM notes_queued))::int AS queued`;
    return row?.queued ?? 0;
  }

  /**
   * Queues every failed contact and failed note again with fresh attempts, as bulk work (after
   * every due live change; a contact already waiting keeps its place). Returns what was queued.
   */
  async requeueFailed(): Promise<{ contacts: number; notes: number }> {
    const [row] = await this.db.client.$queryRaw<{ contacts: number; notes: number }[]>`
      WITH failed_contacts AS (
        SELECT id FROM contacts WHERE sync_status = 'failed'
      ), notes_queued AS (
        UPDATE notes SET sync_status = 'pending' WHERE sync_status = 'failed' RETURNING contact_id
      ), contacts_queued AS (
        UPDATE contacts
           SET sync_status = CASE WHEN sync_status = 'failed' THEN 'pending'::sync_status ELSE sync_status END,
               mirror_priority = CASE WHEN mirror_due_at IS NULL THEN ${PRIORITY.bulk} ELSE mirror_priority END,
               mirror_queued_at = COALESCE(mirror_queued_at, now()), mirror_due_at = LEAST(mirror_due_at, now()),
               mirror_attempts = 0
         WHERE id IN (SELECT id FROM failed_contacts) OR id IN (SELECT contact_id FROM notes_queued)
      )
      SELECT (SELECT count(*) FROM failed_contacts)::int AS contacts, (SELECT count(*) FROM notes_queued)::int AS notes`;
    return { contacts: row?.contacts ?? 0, notes: row?.notes ?? 0 };
  }

  /** Contacts never mirrored: written while no Pipedrive key was configured (and not deleted from Pipedrive since). */
  async countNeverMirrored(): Promise<number> {
    const [row] = await this.db.client.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM contacts WHERE sync_status = 'disabled' AND crm_id IS NULL AND NOT crm_deleted`;
    return row?.n ?? 0;
  }

  /** Queues up to `limit` never-mirrored contacts as bulk work, lowest id first; returns how many. */
  async queueNeverMirrored(limit: number): Promise<number> {
    // The trigger queues a contact leaving disabled; mirror_priority set here stays (bulk).
    return this.db.client.$executeRaw`
      UPDATE contacts SET sync_status = 'pending', mirror_priority = ${PRIORITY.bulk}
       WHERE id IN (SELECT id FROM contacts WHERE sync_status = 'disabled' AND crm_id IS NULL AND NOT crm_deleted ORDER BY id LIMIT ${limit})`;
  }

  /** Contacts waiting as bulk work. */
  async bulkQueued(): Promise<number> {
    const [row] = await this.db.client.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM contacts WHERE mirror_due_at IS NOT NULL AND mirror_priority = ${PRIORITY.bulk}`;
    return row?.n ?? 0;
  }

  /** Starts no mirror work before `until`; a longer pause in force stays. */
  async pause(until: Date, reason: string): Promise<void> {
    await this.db.client.$executeRaw`
      INSERT INTO mirror_pause (id, paused_until, reason) VALUES (1, ${until}, ${reason})
      ON CONFLICT (id) DO UPDATE SET paused_until = EXCLUDED.paused_until, reason = EXCLUDED.reason
       WHERE mirror_pause.paused_until < EXCLUDED.paused_until`;
  }

  /**
   * Counts a call's tokens in the day that began at `dayStart` (a new day starts from 0), and keeps
   * what Pipedrive reported: its count of tokens left covers every app of the company, ours only
   * our calls, so a reported figure replaces ours, which then counts down from it.
   */
  async spendTokens(dayStart: Date, cost: number, reported: { limit?: number; left?: number }): Promise<void> {
    const left = reported.left ?? null;
    const limit = reported.limit ?? null;
    await this.db.client.$executeRaw`
      INSERT INTO pipedrive_budget AS b (id, day_start, tokens_spent, token_limit, tokens_left, updated_at)
      VALUES (1, ${dayStart}, ${cost}, ${limit}::int, ${left}::int, now())
      ON CONFLICT (id) DO UPDATE SET
        tokens_spent = CASE WHEN b.day_start < EXCLUDED.day_start THEN EXCLUDED.tokens_spent ELSE b.tokens_spent + EXCLUDED.tokens_spent END,
        token_limit = COALESCE(EXCLUDED.token_limit, b.token_limit),
        tokens_left = CASE WHEN EXCLUDED.tokens_left IS NOT NULL THEN EXCLUDED.tokens_left
                           WHEN b.day_start < EXCLUDED.day_start THEN NULL
                           ELSE greatest(b.tokens_left - ${cost}, 0) END,
        day_start = greatest(b.day_start, EXCLUDED.day_start),
        updated_at = now()`;
  }

  /** The tokens of the day that began at `dayStart`. */
  async tokenUse(dayStart: Date): Promise<TokenUse> {
    const [row] = await this.db.client.$queryRaw<{ day_start: Date; tokens_spent: number; tokens_left: number | null; token_limit: number | null }[]>`
      SELECT day_start, tokens_spent, tokens_left, token_limit FROM pipedrive_budget WHERE id = 1`;
    if (!row) return { spent: 0, left: null, limit: null };
    if (row.day_start.getTime() < dayStart.getTime()) return { spent: 0, left: null, limit: row.token_limit };
    return { spent: row.tokens_spent, left: row.tokens_left, limit: row.token_limit };
  }

  /** Whether a pause is in force. */
  async paused(): Promise<boolean> {
    const rows = await this.db.client.$queryRaw<unknown[]>`SELECT 1 FROM mirror_pause WHERE paused_until > now()`;
    return rows.length > 0;
  }

  /** Ends a pause now. Returns whether one was in force. */
  async resume(): Promise<boolean> {
    return (await this.db.client.$executeRaw`DELETE FROM mirror_pause WHERE paused_until > now()`) > 0;
  }

  /** Contacts waiting for the mirror, and rows given up. */
  async queueDepth(): Promise<{ queued: number; failed: number }> {
    const [row] = await this.db.client.$queryRaw<{ queued: number; failed: number }[]>`
      SELECT (SELECT count(*) FROM contacts WHERE mirror_due_at IS NOT NULL)::int AS queued,
             ((SELECT count(*) FROM contacts WHERE sync_status = 'failed') + (SELECT count(*) FROM notes WHERE sync_status = 'failed'))::int AS failed`;
    return { queued: row?.queued ?? 0, failed: row?.failed ?? 0 };
  }

  async overview(dayStart: Date): Promise<MirrorOverview> {
    const [contacts, notes, queue, pause, tokens] = await Promise.all([
      this.db.client.$queryRaw<{ status: SyncStatus; n: number }[]>`SELECT sync_status AS status, count(*)::int AS n FROM contacts GROUP BY 1`,
      this.db.client.$queryRaw<{ status: SyncStatus; n: number }[]>`SELECT sync_status AS status, count(*)::int AS n FROM notes GROUP BY 1`,
      this.db.client.$queryRaw<{ live: number; bulk: number; oldest: Date | null }[]>`
        SELECT count(*) FILTER (WHERE mirror_priority = ${PRIORITY.live})::int AS live,
               count(*) FILTER (WHERE mirror_priority <> ${PRIORITY.live})::int AS bulk,
               min(mirror_queued_at) AS oldest
          FROM contacts WHERE mirror_due_at IS NOT NULL`,
      this.db.client.$queryRaw<{ paused_until: Date; reason: string }[]>`
        SELECT paused_until, reason FROM mirror_pause WHERE paused_until > now()`,
      this.tokenUse(dayStart),
    ]);
    const tally = (rows: { status: SyncStatus; n: number }[]) =>
      rows.reduce((counts, row) => ({ ...counts, [row.status]: row.n }), emptyCounts());
    return {
      contacts: tally(contacts),
      notes: tally(notes),
      queued: { live: queue[0]?.live ?? 0, bulk: queue[0]?.bulk ?? 0 },
      oldestQueuedAt: queue[0]?.oldest ?? null,
      pause: pause[0] ? { until: pause[0].paused_until, reason: pause[0].reason } : null,
      tokens,
    };
  }

  /** The CRM state workers last recorded; null before any. */
  async crmState(): Promise<Exclude<CrmState, 'disabled'> | null> {
    const [row] = await this.db.client.$queryRaw<{ state: Exclude<CrmState, 'disabled'> }[]>`SELECT state FROM crm_health WHERE id = 1`;
    return row?.state ?? null;
  }

  async saveCrmState(state: Exclude<CrmState, 'disabled'>, detail: string | null): Promise<void> {
    await this.db.client.$executeRaw`
      INSERT INTO crm_health (id, state, detail) VALUES (1, ${state}::crm_state, ${detail})
      ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, detail = EXCLUDED.detail, updated_at = now()`;
  }
}
