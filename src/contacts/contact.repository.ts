import { Prisma } from '@prisma/client';
import { ForeignKeyViolationError, UniqueViolationError } from '../db/errors';
import type { TransactionClient, TransactionScope } from '../db/transaction-scope';
import { ContactExistsError } from './contact-errors';
import { NotFoundError } from '../errors';
import type { Contact, ContactChanges, ContactEvent, ContactFilter, NewContact, Note, Page, PhoneE164, WriteOrigin } from './contact';

/** A contacts row as CONTACT_COLUMNS selects it. */
interface ContactRow {
  id: number;
  name: string;
  email: string | null;
  phone: string | null;
  phone_e164: string | null;
  crm_id: number | null;
  crm_deleted: boolean;
  sync_status: Contact['syncStatus'];
  crm_synced_at: Date | null;
  crm_last_error: string | null;
  created_at: Date;
  updated_at: Date;
}

interface NoteRow {
  id: number;
  contact_id: number;
  content: string;
  crm_id: number | null;
  sync_status: Note['syncStatus'];
  crm_synced_at: Date | null;
  crm_last_error: string | null;
  created_at: Date;
}

interface ContactEventRow {
  id: number;
  contact_id: number;
  type: ContactEvent['type'];
  source: ContactEvent['source'];
  payload: unknown;
  created_at: Date;
}

const CONTACT_COLUMNS = Prisma.sql`id, name, email, phone, phone_e164, crm_id, crm_deleted, sync_status, crm_synced_at, crm_last_error, created_at, updated_at`;
const NOTE_COLUMNS = Prisma.sql`id, contact_id, content, crm_id, sync_status, crm_synced_at, crm_last_error, created_at`;
const EVENT_COLUMNS = Prisma.sql`id, contact_id, type, source, payload, created_at`;

/** The one place a contacts row becomes a Contact. */
const toContact = (row: ContactRow): Contact => ({
  id: row.id,
  name: row.name,
  email: row.email,
  phone: row.phone,
  phoneE164: row.phone_e164,
  crmId: row.crm_id,
  crmDeleted: row.crm_deleted,
  syncStatus: row.sync_status,
  crmSyncedAt: row.crm_synced_at,
  crmLastError: row.crm_last_error,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

const toNote = (row: NoteRow): Note => ({
  id: row.id,
  contactId: row.contact_id,
  content: row.content,
  crmId: row.crm_id,
  syncStatus: row.sync_status,
  crmSyncedAt: row.crm_synced_at,
  crmLastError: row.crm_last_error,
  createdAt: row.created_at,
});

const toContactEvent = (row: ContactEventRow): ContactEvent => ({
  id: row.id,
  contactId: row.contact_id,
  type: row.type,
  source: row.source,
  payload: row.payload,
  createdAt: row.created_at,
});

async function contactById(client: TransactionClient, id: number): Promise<Contact | null> {
  const [row] = await client.$queryRaw<ContactRow[]>`SELECT ${CONTACT_COLUMNS} FROM contacts WHERE id = ${id}`;
  return row ? toContact(row) : null;
}

/**
 * The mirror's read of the contact it sends (src/mirror), with what it last sent the person
 * (`crm_pushed`, whose shape the mirror owns), in one statement.
 */
export async function contactForMirror(client: TransactionClient, id: number): Promise<{ contact: Contact; pushed: unknown } | null> {
  const [row] = await client.$queryRaw<(ContactRow & { crm_pushed: unknown })[]>`
    SELECT ${CONTACT_COLUMNS}, crm_pushed FROM contacts WHERE id = ${id}`;
  return row ? { contact: toContact(row), pushed: row.crm_pushed } : null;
}

async function noteById(client: TransactionClient, id: number): Promise<Note | null> {
  const [row] = await client.$queryRaw<NoteRow[]>`SELECT ${NOTE_COLUMNS} FROM notes WHERE id = ${id}`;
  return row ? toNote(row) : null;
}

/** A contact's notes still to be mirrored, oldest first (src/mirror). */
export async function pendingNotesOf(client: TransactionClient, contactId: number): Promise<Note[]> {
  const rows = await client.$queryRaw<NoteRow[]>`
    SELECT ${NOTE_COLUMNS} FROM notes WHERE contact_id = ${contactId} AND sync_status = 'pending' ORDER BY id`;
  return rows.map(toNote);
}

/**
 * The SET of a change of name, email and phone given as the jsonb `changes.value` on `contacts AS c`:
 * a field absent keeps its value, null clears it; `phoneE164` goes with a changed phone. Shared by
 * every writer of a change (the API's, and Pipedrive's: src/inbound).
 */
export const changedFields = (phoneE164: string | null) => Prisma.sql`
  name = CASE WHEN changes.value ? 'name' THEN changes.value->>'name' ELSE c.name END,
  email = CASE WHEN changes.value ? 'email' THEN changes.value->>'email' ELSE c.email END,
  phone = CASE WHEN changes.value ? 'phone' THEN changes.value->>'phone' ELSE c.phone END,
  phone_e164 = CASE WHEN changes.value ? 'phone' THEN ${phoneE164} ELSE c.phone_e164 END`;

/** An `updated` event's payload: the changes, and what each replaced (`before`: the row as it was). */
export const changeEventPayload = Prisma.sql`jsonb_build_object(
  'changes', changes.value,
  'previous', (SELECT jsonb_object_agg(field, to_jsonb(before) -> field) FROM jsonb_object_keys(changes.value) AS field))`;

/** A searched `%` or `_` must match itself in ILIKE. */
const escapeLikePattern = (text: string) => text.replace(/[\\%_]/g, (char) => `\\${char}`);

/**
 * Data access for contacts, their notes and their audit trail, in plain SQL through Prisma's
 * `$queryRaw` (parameterised tagged templates): Prisma's model API compiles every query anew,
 * which costs more than twice the CPU of the same statement sent raw (docs/benchmarks.md).
 * Every write is one statement that also appends its audit event: atomic without a transaction, and
 * one round trip. The mirror is queued by the database's triggers on contacts and notes (see
 * src/mirror/mirror.repository.ts): rows written `pending` here, and any later change of them.
 * Statements go through `db.client`: inside a caller's transaction (an Idempotency-Key request's),
 * they are part of it.
 */
export class ContactRepository {
  constructor(
    private readonly db: TransactionScope,
    /** Whether a CRM mirror is configured: new rows are then written `pending`, else `disabled`. */
    private readonly mirrored: boolean,
  ) {}

  private get initialSyncStatus() {
    return this.mirrored ? ('pending' as const) : ('disabled' as const);
  }

  /** `origin.bulk`: the mirror takes it after every live change (mirror_priority 1, as MirrorRepository's bulk). */
  async create(input: NewContact & PhoneE164, origin: WriteOrigin = { source: 'api' }): Promise<Contact> {
    try {
      const [row] = await this.db.client.$queryRaw<ContactRow[]>`
        WITH created AS (
          INSERT INTO contacts (name, email, phone, phone_e164, sync_status, mirror_priority)
          VALUES (${input.name}, ${input.email ?? null}, ${input.phone ?? null}, ${input.phoneE164}, ${this.initialSyncStatus}::sync_status,
                  ${origin.bulk ? 1 : 0})
          RETURNING *
        ), event AS (
          INSERT INTO contact_events (contact_id, type, source, payload)
          SELECT id, 'created'::contact_event_type, ${origin.source}::contact_event_source,
                 jsonb_build_object('name', name, 'email', email, 'phone', phone) FROM created
        )
        SELECT ${CONTACT_COLUMNS} FROM created`;
      if (!row) throw new Error('creating a contact returned no row');
      return toContact(row);
    } catch (error) {
      throw await this.asEmailConflict(error, input.email);
    }
  }

  findById(id: number): Promise<Contact | null> {
    return contactById(this.db.client, id);
  }

  findNote(id: number): Promise<Note | null> {
    return noteById(this.db.client, id);
  }

  async list(filter: ContactFilter): Promise<{ items: Contact[]; total: number }> {
    const conditions = [
      ...(filter.search ? [Prisma.sql`name ILIKE ${`%${escapeLikePattern(filter.search)}%`}`] : []),
      ...(filter.email ? [Prisma.sql`email = ${filter.email}`] : []),
      ...(filter.phoneE164 ? [Prisma.sql`phone_e164 = ${filter.phoneE164}`] : []),
    ];
    const where = conditions.length > 0 ? Prisma.sql`WHERE ${Prisma.join(conditions, ' AND ')}` : Prisma.empty;
    // Side by side, not in a transaction: under READ COMMITTED one would not give the page and the
    // count a common snapshot anyway, and would cost BEGIN and COMMIT round trips.
    const [rows, [counted]] = await Promise.all([
      this.db.client.$queryRaw<ContactRow[]>`
        SELECT ${CONTACT_COLUMNS} FROM contacts ${where} ORDER BY id LIMIT ${filter.limit} OFFSET ${filter.skip}`,
      this.db.client.$queryRaw<{ total: number }[]>`SELECT count(*)::int AS total FROM contacts ${where}`,
    ]);
    return { items: rows.map(toContact), total: counted?.total ?? 0 };
  }

  /**
   * One statement: the row is locked first (`before`), so that concurrent changes take turns and
   * each event's `previous` holds what that change replaced; the update and its event follow. A field absent from `changes` keeps its value; null clears it.
   * `phoneE164` goes with a changed phone.
   */
  async update(id: number, { phoneE164, ...changes }: ContactChanges & Partial<PhoneE164>): Promise<Contact> {
    const json = JSON.stringify(changes);
    try {
      const [row] = await this.db.client.$queryRaw<ContactRow[]>`
        WITH changes AS (SELECT ${json}::jsonb AS value),
        before AS (SELECT id, name, email, phone FROM contacts WHERE id = ${id} FOR UPDATE),
        updated AS (
          UPDATE contacts AS c
             SET ${changedFields(phoneE164 ?? null)},
                 -- A contact written while no CRM was configured joins the mirror with its first change;
                 -- one whose person the sales team deleted stays out until queued again (POST /contact/:id/sync).
                 sync_status = CASE WHEN c.sync_status = 'disabled' AND NOT c.crm_deleted AND ${this.mirrored} THEN 'pending'::sync_status ELSE c.sync_status END
            FROM before, changes
           WHERE c.id = before.id
          RETURNING c.*
        ), event AS (
          INSERT INTO contact_events (contact_id, type, payload)
          SELECT before.id, 'updated'::contact_event_type, ${changeEventPayload}
            FROM before, changes
        )
        SELECT ${CONTACT_COLUMNS} FROM updated`;
      if (!row) throw new NotFoundError(`Contact ${id} not found`);
      return toContact(row);
    } catch (error) {
      throw await this.asEmailConflict(error, changes.email);
    }
  }

  /** Up to `limit` contacts after `afterId` whose phone has no E.164 form yet, by id. */
  async phonesWithoutE164(afterId: number, limit: number): Promise<{ id: number; phone: string }[]> {
    return this.db.client.$queryRaw<{ id: number; phone: string }[]>`
      SELECT id, phone FROM contacts WHERE phone IS NOT NULL AND phone_e164 IS NULL AND id > ${afterId} ORDER BY id LIMIT ${limit}`;
  }

  /** Stores phones' E.164 forms, unless the phone has changed since it was read. */
  async setPhonesE164(phones: { id: number; phone: string; phoneE164: string }[]): Promise<void> {
    if (phones.length === 0) return;
    await this.db.client.$executeRaw`
      UPDATE contacts AS c SET phone_e164 = r."phoneE164"
        FROM jsonb_to_recordset(${JSON.stringify(phones)}::jsonb) AS r(id int, phone text, "phoneE164" text)
       WHERE c.id = r.id AND c.phone = r.phone`;
  }

  async listEvents(contactId: number, page: Page): Promise<{ items: ContactEvent[]; total: number }> {
    const [rows, [counted]] = await Promise.all([
      this.db.client.$queryRaw<ContactEventRow[]>`
        SELECT ${EVENT_COLUMNS} FROM contact_events WHERE contact_id = ${contactId} ORDER BY id LIMIT ${page.limit} OFFSET ${page.skip}`,
      this.db.client.$queryRaw<{ total: number }[]>`SELECT count(*)::int AS total FROM contact_events WHERE contact_id = ${contactId}`,
    ]);
    return { items: rows.map(toContactEvent), total: counted?.total ?? 0 };
  }

  /** Returns false when there was no such contact. Its notes go with it (ON DELETE CASCADE). */
  async delete(id: number): Promise<boolean> {
    return (await this.db.client.$executeRaw`DELETE FROM contacts WHERE id = ${id}`) > 0;
  }

  async addNote(contactId: number, content: string): Promise<Note> {
    try {
      const [row] = await this.db.client.$queryRaw<NoteRow[]>`
        WITH created AS (
          INSERT INTO notes (contact_id, content, sync_status) VALUES (${contactId}, ${content}, ${this.initialSyncStatus}::sync_status)
          RETURNING *
        ), event AS (
          INSERT INTO contact_events (contact_id, type, payload)
          SELECT contact_id, 'note_added'::contact_event_type, jsonb_build_object('note_id', id, 'content', content) FROM created
        )
        SELECT ${NOTE_COLUMNS} FROM created`;
      if (!row) throw new Error('adding a note returned no row');
      return toNote(row);
    } catch (error) {
      if (error instanceof ForeignKeyViolationError && error.constraint === 'notes_contact_id_fkey') {
        throw new NotFoundError(`Contact ${contactId} not found`);
      }
      throw error;
    }
  }

  /** A write that took another contact's email: CONTACT_EXISTS, naming that contact. */
  private async asEmailConflict(error: unknown, email: string | null | undefined): Promise<unknown> {
    if (!(error instanceof UniqueViolationError && error.constraint === 'contacts_email_key') || !email) return error;
    // Outside the caller's transaction, which the failed statement has aborted.
    const [existing] = await this.db.prisma.$queryRaw<{ id: number }[]>`SELECT id FROM contacts WHERE email = ${email}`;
    return existing ? new ContactExistsError(existing.id) : error;
  }
}
