import { Prisma } from '@prisma/client';
import { sqlState } from '../db/errors';
import type { TransactionScope } from '../db/transaction-scope';
import { ContactExistsError, NotFoundError } from '../errors';
import { appendContactEvent } from './contact-events';
import type { ContactChanges, CreateContactInput, ListContactsFilter, PageFilter } from './contact.schemas';
import type { ContactField, ContactMirror } from './mirror-port';

export type ContactRecord = Prisma.ContactGetPayload<object>;
export type NoteRecord = Prisma.NoteGetPayload<object>;
export type ContactEventRecord = Prisma.ContactEventGetPayload<object>;

const isPrismaError = (error: unknown, code: string): error is Prisma.PrismaClientKnownRequestError =>
  error instanceof Prisma.PrismaClientKnownRequestError && error.code === code;

/** The columns of a contact or a note, named as Prisma names its fields (ContactRecord, NoteRecord). */
const CONTACT_COLUMNS = Prisma.sql`id, name, email, phone, crm_id AS "crmId", created_at AS "createdAt", updated_at AS "updatedAt",
  sync_status AS "syncStatus", crm_synced_at AS "crmSyncedAt", crm_last_error AS "crmLastError"`;
const NOTE_COLUMNS = Prisma.sql`id, contact_id AS "contactId", content, crm_id AS "crmId", created_at AS "createdAt",
  sync_status AS "syncStatus", crm_synced_at AS "crmSyncedAt", crm_last_error AS "crmLastError"`;

/**
 * For a creation statement whose WITH query `created` inserts the row: the WITH query `job` adding
 * its mirror job (`jobSql`), and the join that makes it run (PostgreSQL runs a plain WITH query
 * only when it is read). Both empty without a mirror.
 */
function mirrorJobParts(jobSql: Prisma.Sql | undefined): { job: Prisma.Sql; runJob: Prisma.Sql } {
  if (!jobSql) return { job: Prisma.empty, runJob: Prisma.empty };
  return {
    job: Prisma.sql`, job AS (SELECT ${jobSql} FROM created)`,
    runJob: Prisma.sql` CROSS JOIN (SELECT count(*) FROM job) AS queued`,
  };
}

/** Prisma's `contains` is a LIKE pattern: a searched `%` or `_` must match itself. */
const escapeLikePattern = (text: string) => text.replace(/[\\%_]/g, (char) => `\\${char}`);

/**
 * Data access for contacts and their notes. With a mirror, every write also queues
 * its mirror job in the same transaction, so no committed change can miss the CRM.
 * Creations (a contact, a note) are one statement each, row, audit event and job together:
 * atomic without a transaction, and one round trip instead of four or five (docs/benchmarks.md).
 * Statements go through `db.client`: inside a caller's transaction (an Idempotency-Key request's),
 * they are part of it.
 */
export class ContactRepository {
  constructor(
    private readonly db: TransactionScope,
    private readonly mirror?: ContactMirror,
  ) {}

  private get initialSyncStatus() {
    return this.mirror ? ('pending' as const) : ('disabled' as const);
  }

  async create(input: CreateContactInput): Promise<ContactRecord> {
    const { job, runJob } = mirrorJobParts(this.mirror?.newContactJobSql(Prisma.sql`id`));
    try {
      const [contact] = await this.db.client.$queryRaw<ContactRecord[]>`
        WITH created AS (
          INSERT INTO contacts (name, email, phone, sync_status)
          VALUES (${input.name}, ${input.email ?? null}, ${input.phone ?? null}, ${this.initialSyncStatus}::sync_status)
          RETURNING *
        ), event AS (
          INSERT INTO contact_events (contact_id, type, payload)
          SELECT id, 'created'::contact_event_type, jsonb_build_object('name', name, 'email', email, 'phone', phone) FROM created
        )${job}
        SELECT ${CONTACT_COLUMNS} FROM created${runJob}`;
      if (!contact) throw new Error('creating a contact returned no row');
      return contact;
    } catch (error) {
      throw await this.asEmailConflict(error, input.email);
    }
  }

  findById(id: number): Promise<ContactRecord | null> {
    return this.db.client.contact.findUnique({ where: { id } });
  }

  findNote(id: number): Promise<NoteRecord | null> {
    return this.db.client.note.findUnique({ where: { id } });
  }

  async list(filter: ListContactsFilter): Promise<{ items: ContactRecord[]; total: number }> {
    const where: Prisma.ContactWhereInput = {
      ...(filter.search ? { name: { contains: escapeLikePattern(filter.search), mode: 'insensitive' } } : {}),
      ...(filter.email ? { email: filter.email } : {}),
    };
    // Side by side, not in a transaction: under READ COMMITTED one would not give the page and the
    // count a common snapshot anyway, and would cost BEGIN and COMMIT round trips.
    const [items, total] = await Promise.all([
      this.db.client.contact.findMany({ where, orderBy: { id: 'asc' }, skip: filter.skip, take: filter.limit }),
      this.db.client.contact.count({ where }),
    ]);
    return { items, total };
  }

  async update(id: number, changes: ContactChanges): Promise<ContactRecord> {
    try {
      return await this.db.transaction(async (tx) => {
        // Locked first, so that concurrent changes take turns and each event's `previous` is what it replaced.
        await tx.$executeRaw`SELECT id FROM contacts WHERE id = ${id} FOR UPDATE`;
        const before = await tx.contact.findUnique({ where: { id } });
        if (!before) throw new NotFoundError(`Contact ${id} not found`);
        const contact = await tx.contact.update({
          where: { id },
          data: { ...changes, ...(this.mirror ? { syncStatus: 'pending' as const } : {}) },
        });
        const fields = Object.keys(changes) as ContactField[];
        const previous = Object.fromEntries(fields.map((field) => [field, before[field]]));
        await appendContactEvent(tx, id, 'updated', { changes, previous });
        await this.mirror?.enqueueContact(tx, id, fields);
        return contact;
      });
    } catch (error) {
      // Deleted between the read and the write.
      if (isPrismaError(error, 'P2025')) throw new NotFoundError(`Contact ${id} not found`);
      throw await this.asEmailConflict(error, changes.email);
    }
  }

  async listEvents(contactId: number, page: PageFilter): Promise<{ items: ContactEventRecord[]; total: number }> {
    const where = { contactId };
    const [items, total] = await Promise.all([
      this.db.client.contactEvent.findMany({ where, orderBy: { id: 'asc' }, skip: page.skip, take: page.limit }),
      this.db.client.contactEvent.count({ where }),
    ]);
    return { items, total };
  }

  /** Returns false when there was no such contact. Its notes go with it (ON DELETE CASCADE). */
  async delete(id: number): Promise<boolean> {
    const { count } = await this.db.client.contact.deleteMany({ where: { id } });
    return count > 0;
  }

  async addNote(contactId: number, content: string): Promise<NoteRecord> {
    const { job, runJob } = mirrorJobParts(this.mirror?.newNoteJobSql(Prisma.sql`id`, Prisma.sql`contact_id`));
    try {
      const [note] = await this.db.client.$queryRaw<NoteRecord[]>`
        WITH created AS (
          INSERT INTO notes (contact_id, content, sync_status) VALUES (${contactId}, ${content}, ${this.initialSyncStatus}::sync_status)
          RETURNING *
        ), event AS (
          INSERT INTO contact_events (contact_id, type, payload)
          SELECT contact_id, 'note_added'::contact_event_type, jsonb_build_object('note_id', id, 'content', content) FROM created
        )${job}
        SELECT ${NOTE_COLUMNS} FROM created${runJob}`;
      if (!note) throw new Error('adding a note returned no row');
      return note;
    } catch (error) {
      if (sqlState(error) === '23503') throw new NotFoundError(`Contact ${contactId} not found`);
      throw error;
    }
  }

  /** Throws when the database does not answer. */
  async ping(): Promise<void> {
    await this.db.client.$queryRaw`SELECT 1`;
  }

  /**
   * Contacts are written from the API with no crm_id, so the only unique
   * constraint such a write can break is the one on email.
   */
  private async asEmailConflict(error: unknown, email: string | null | undefined): Promise<unknown> {
    if (!(isPrismaError(error, 'P2002') || sqlState(error) === '23505') || !email) return error;
    // Outside the caller's transaction, which the failed statement has aborted.
    const existing = await this.db.prisma.contact.findUnique({ where: { email }, select: { id: true } });
    return existing ? new ContactExistsError(existing.id) : error;
  }
}
