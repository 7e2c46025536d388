import type { ChangeSource, ContactField } from '../contacts/contact';
import { changedFields, changeEventPayload } from '../contacts/contact.repository';
import type { TransactionScope } from '../db/transaction-scope';
import type { FieldValues } from './field-merge';

/** A contact linked to a Pipedrive person, as a change from Pipedrive needs it. */
export interface LinkedContact {
  id: number;
  /** Name, email and phone as the mirror sends them (the phone in E.164 where it has one). */
  values: FieldValues;
  pushed: FieldValues | null;
  /** Pipedrive's update time of the person state last taken in. */
  crmUpdatedAt: Date | null;
}

/** Fields to write from Pipedrive; a phone comes with its E.164 form. */
export interface TakenFields {
  name?: string;
  email?: string | null;
  phone?: string | null;
  phoneE164?: string | null;
}

/** A contact made from a Pipedrive person. */
export interface ContactFromPerson {
  crmId: number;
  name: string;
  email: string | null;
  phone: string | null;
  phoneE164: string | null;
  crmUpdatedAt: Date | null;
}

interface LinkedRow {
  id: number;
  name: string;
  email: string | null;
  phone: string | null;
  phone_e164: string | null;
  crm_pushed: FieldValues | null;
  crm_updated_at: Date | null;
}

/**
 * The contact side of changes made in Pipedrive (src/inbound), in plain SQL, one statement each;
 * each write appends its audit event, with its source, in the same statement.
 */
export class InboundRepository {
  constructor(private readonly db: TransactionScope) {}

  /** The contact linked to the person, locked until the caller's transaction ends; null when none is. */
  async lockLinked(crmId: number): Promise<LinkedContact | null> {
    const [row] = await this.db.client.$queryRaw<LinkedRow[]>`
      SELECT id, name, email, phone, phone_e164, crm_pushed, crm_updated_at FROM contacts WHERE crm_id = ${crmId} FOR UPDATE`;
    if (!row) return null;
    return {
      id: row.id,
      values: { name: row.name, email: row.email, phone: row.phone_e164 ?? row.phone },
      pushed: row.crm_pushed,
      crmUpdatedAt: row.crm_updated_at,
    };
  }

  /** When a field of the contact last changed through the API or an import (its audit trail). */
  async fieldChangedAt(contactId: number, field: ContactField): Promise<Date | null> {
    const [row] = await this.db.client.$queryRaw<{ at: Date | null }[]>`
      SELECT max(created_at) AS at FROM contact_events
       WHERE contact_id = ${contactId} AND source IN ('api', 'import')
         AND (type = 'created' OR (type = 'updated' AND payload->'changes' ? ${field}))`;
    return row?.at ?? null;
  }

  /** Another contact with this email (emails are unique), if any. */
  async emailTaken(email: string, exceptId: number): Promise<number | null> {
    const [row] = await this.db.client.$queryRaw<{ id: number }[]>`SELECT id FROM contacts WHERE email = ${email} AND id <> ${exceptId}`;
    return row?.id ?? null;
  }

  /**
   * Writes what Pipedrive changed, records what Pipedrive now has (`pushed`, so that no mirror run
   * sends it back) and how recent it is, with an `updated` event whose source is Pipedrive.
   */
  async takeFromPipedrive(contactId: number, fields: TakenFields, pushed: FieldValues, crmUpdatedAt: Date | null, details: Record<string, unknown>): Promise<void> {
    const { phoneE164, ...changes } = fields;
    await this.db.client.$executeRaw`
      WITH changes AS (SELECT ${JSON.stringify(changes)}::jsonb AS value),
      before AS (SELECT id, name, email, phone FROM contacts WHERE id = ${contactId}),
      updated AS (
        UPDATE contacts AS c
           SET ${changedFields(phoneE164 ?? null)},
               crm_pushed = ${JSON.stringify(pushed)}::jsonb,
               crm_updated_at = GREATEST(c.crm_updated_at, ${crmUpdatedAt}::timestamptz)
          FROM changes
         WHERE c.id = ${contactId}
        RETURNING c.id
      )
      INSERT INTO contact_events (contact_id, type, source, payload)
      SELECT before.id, 'updated'::contact_event_type, 'pipedrive'::contact_event_source,
             ${changeEventPayload} || ${JSON.stringify(details)}::jsonb
        FROM before, changes, updated
       WHERE changes.value <> '{}'::jsonb`;
  }

  /**
   * The person was deleted in Pipedrive (or merged into one that mirrors another contact): the
   * contact forgets it and leaves the mirror (`crm_deleted`, sync_status disabled), with an event
   * saying why; it is never deleted here. Returns the contact's id, or null when none was linked.
   */
  async unlinkDeleted(crmId: number, reason: string, source: ChangeSource): Promise<number | null> {
    const [row] = await this.db.client.$queryRaw<{ id: number }[]>`
      WITH unlinked AS (
        UPDATE contacts
           SET crm_id = NULL, crm_pushed = NULL, crm_deleted = true, sync_status = 'disabled', crm_last_error = ${reason},
               mirror_due_at = NULL, mirror_queued_at = NULL, mirror_claimed_until = NULL, mirror_attempts = 0
         WHERE crm_id = ${crmId}
        RETURNING id
      ), event AS (
        INSERT INTO contact_events (contact_id, type, source, payload)
        SELECT id, 'crm_unlinked'::contact_event_type, ${source}::contact_event_source,
               jsonb_build_object('crm_id', ${crmId}::int, 'reason', ${reason}::text, 'crm_deleted', true) FROM unlinked
      )
      SELECT id FROM unlinked`;
    return row?.id ?? null;
  }

  /** The contact linked to a person, if any. */
  async linkedTo(crmId: number): Promise<number | null> {
    const [row] = await this.db.client.$queryRaw<{ id: number }[]>`SELECT id FROM contacts WHERE crm_id = ${crmId}`;
    return row?.id ?? null;
  }

  /**
   * Moves the contact linked to `fromId` to `toId` (the survivor of a merge), with a `crm_linked`
   * event. What was sent stays known: the merge kept the contact's email and phone on the survivor.
   */
  async relink(fromId: number, toId: number, reason: string, source: ChangeSource): Promise<number | null> {
    const [row] = await this.db.client.$queryRaw<{ id: number }[]>`
      WITH moved AS (
        UPDATE contacts SET crm_id = ${toId} WHERE crm_id = ${fromId} RETURNING id
      ), event AS (
        INSERT INTO contact_events (contact_id, type, source, payload)
        SELECT id, 'crm_linked'::contact_event_type, ${source}::contact_event_source,
               jsonb_build_object('crm_id', ${toId}::int, 'previous_crm_id', ${fromId}::int, 'reason', ${reason}::text) FROM moved
      )
      SELECT id FROM moved`;
    return row?.id ?? null;
  }

  /**
   * Links the person to the unlinked contact with one of its emails (as written, or lower-case),
   * else one of its phones (E.164), unless some contact mirrors it already. Nothing is known of
   * what Pipedrive shows of the contact (crm_pushed NULL): its next mirror run adds what is missing,
   * queued as bulk work for a contact never mirrored. Returns the contact's id.
   */
  async linkMatching(crmId: number, emails: string[], phonesE164: string[], source: ChangeSource): Promise<number | null> {
    const [row] = await this.db.client.$queryRaw<{ id: number }[]>`
      WITH match AS (
        SELECT id FROM contacts
         WHERE crm_id IS NULL AND NOT crm_deleted AND (email = ANY(${emails}::text[]) OR phone_e164 = ANY(${phonesE164}::text[]))
           AND NOT EXISTS (SELECT 1 FROM contacts WHERE crm_id = ${crmId})
         ORDER BY (email = ANY(${emails}::text[])) DESC, id
         LIMIT 1
         FOR UPDATE SKIP LOCKED
      ), linked AS (
        UPDATE contacts c
           SET crm_id = ${crmId}, crm_pushed = NULL,
               sync_status = CASE WHEN c.sync_status = 'disabled' THEN 'pending'::sync_status ELSE c.sync_status END,
               mirror_priority = CASE WHEN c.sync_status = 'disabled' THEN 1 ELSE c.mirror_priority END
          FROM match WHERE c.id = match.id AND c.crm_id IS NULL RETURNING c.id
      ), event AS (
        INSERT INTO contact_events (contact_id, type, source, payload)
        SELECT id, 'crm_linked'::contact_event_type, ${source}::contact_event_source,
               jsonb_build_object('crm_id', ${crmId}::int, 'reason', 'same email or phone'::text) FROM linked
      )
      SELECT id FROM linked`;
    return row?.id ?? null;
  }

  /**
   * Whether a contact with this name is being mirrored without a person yet: the person may be the
   * one its run is creating, whose answer (and link) has not come back.
   */
  async creationInFlight(name: string): Promise<boolean> {
    const rows = await this.db.client.$queryRaw<unknown[]>`
      SELECT 1 FROM contacts WHERE name = ${name} AND crm_id IS NULL AND mirror_claimed_until > now() LIMIT 1`;
    return rows.length > 0;
  }

  /**
   * What an import would do, from the person index (no Pipedrive call): persons already mirrored,
   * those a contact's email or E.164 phone would link, and those that would become contacts.
   */
  async importPreview(): Promise<{ persons: number; mirrored: number; wouldLink: number; wouldCreate: number }> {
    const [row] = await this.db.client.$queryRaw<{ persons: number; mirrored: number; would_link: number; would_create: number }[]>`
      WITH persons AS (
        SELECT EXISTS (SELECT 1 FROM contacts c WHERE c.crm_id = p.id) AS mirrored,
               EXISTS (SELECT 1 FROM contacts c WHERE c.crm_id IS NULL AND NOT c.crm_deleted
                          AND (c.email = ANY(p.emails) OR c.phone_e164 = ANY(p.phones))) AS matched
          FROM pipedrive_persons p WHERE NOT p.gone
      )
      SELECT count(*)::int AS persons, count(*) FILTER (WHERE mirrored)::int AS mirrored,
             count(*) FILTER (WHERE NOT mirrored AND matched)::int AS would_link,
             count(*) FILTER (WHERE NOT mirrored AND NOT matched)::int AS would_create
        FROM persons`;
    return { persons: row?.persons ?? 0, mirrored: row?.mirrored ?? 0, wouldLink: row?.would_link ?? 0, wouldCreate: row?.would_create ?? 0 };
  }

  /**
   * A new contact showing the person, linked and synced (Pipedrive has it already: no mirror run),
   * unless another contact has its email or mirrors it. Returns its id, or null when not created.
   */
  async createFromPerson(person: ContactFromPerson, source: ChangeSource): Promise<number | null> {
    const pushed = { name: person.name, email: person.email, phone: person.phoneE164 ?? person.phone };
    const [row] = await this.db.client.$queryRaw<{ id: number }[]>`
      WITH created AS (
        INSERT INTO contacts (name, email, phone, phone_e164, crm_id, sync_status, crm_synced_at, crm_pushed, crm_updated_at, mirrored_version)
        SELECT ${person.name}, ${person.email}, ${person.phone}, ${person.phoneE164}, ${person.crmId}, 'synced'::sync_status, now(),
               ${JSON.stringify(pushed)}::jsonb, ${person.crmUpdatedAt}::timestamptz, 1
         WHERE NOT EXISTS (SELECT 1 FROM contacts WHERE crm_id = ${person.crmId})
        ON CONFLICT DO NOTHING
        RETURNING id, name, email, phone
      ), event AS (
        INSERT INTO contact_events (contact_id, type, source, payload)
        SELECT id, 'created'::contact_event_type, ${source}::contact_event_source,
               jsonb_build_object('name', name, 'email', email, 'phone', phone, 'crm_id', ${person.crmId}::int) FROM created
      )
      SELECT id FROM created`;
    return row?.id ?? null;
  }
}
