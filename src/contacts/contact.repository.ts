import { Prisma, type PrismaClient } from '@prisma/client';
import { ContactExistsError, NotFoundError } from '../errors';
import { appendContactEvent } from './contact-events';
import type { ContactChanges, CreateContactInput, ListContactsFilter, PageFilter } from './contact.schemas';
import type { ContactField, ContactMirror } from './mirror-port';

export type ContactRecord = Prisma.ContactGetPayload<object>;
export type NoteRecord = Prisma.NoteGetPayload<object>;
export type ContactEventRecord = Prisma.ContactEventGetPayload<object>;

const isPrismaError = (error: unknown, code: string): error is Prisma.PrismaClientKnownRequestError =>
  error instanceof Prisma.PrismaClientKnownRequestError && error.code === code;

/** Prisma's `contains` is a LIKE pattern: a searched `%` or `_` must match itself. */
const escapeLikePattern = (text: string) => text.replace(/[\\%_]/g, (char) => `\\${char}`);

/**
 * Data access for contacts and their notes. With a mirror, every write also queues
 * its mirror job in the same transaction, so no committed change can miss the CRM.
 */
export class ContactRepository {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly mirror?: ContactMirror,
  ) {}

  private get initialSyncStatus() {
    return this.mirror ? ('pending' as const) : ('disabled' as const);
  }

  async create(input: CreateContactInput): Promise<ContactRecord> {
    try {
      return await this.prisma.$transaction(async (tx) => {
        const contact = await tx.contact.create({
          data: { name: input.name, email: input.email ?? null, phone: input.phone ?? null, syncStatus: this.initialSyncStatus },
        });
        await appendContactEvent(tx, contact.id, 'created', { name: contact.name, email: contact.email, phone: contact.phone });
        await this.mirror?.enqueueContact(tx, contact.id);
        return contact;
      });
    } catch (error) {
      throw await this.asEmailConflict(error, input.email);
    }
  }

  findById(id: number): Promise<ContactRecord | null> {
    return this.prisma.contact.findUnique({ where: { id } });
  }

  findNote(id: number): Promise<NoteRecord | null> {
    return this.prisma.note.findUnique({ where: { id } });
  }

  async list(filter: ListContactsFilter): Promise<{ items: ContactRecord[]; total: number }> {
    const where: Prisma.ContactWhereInput = {
      ...(filter.search ? { name: { contains: escapeLikePattern(filter.search), mode: 'insensitive' } } : {}),
      ...(filter.email ? { email: filter.email } : {}),
    };
    // Side by side, not in a transaction: under READ COMMITTED one would not give the page and the
    // count a common snapshot anyway, and would cost BEGIN and COMMIT round trips.
    const [items, total] = await Promise.all([
      this.prisma.contact.findMany({ where, orderBy: { id: 'asc' }, skip: filter.skip, take: filter.limit }),
      this.prisma.contact.count({ where }),
    ]);
    return { items, total };
  }

  async update(id: number, changes: ContactChanges): Promise<ContactRecord> {
    try {
      return await this.prisma.$transaction(async (tx) => {
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
      this.prisma.contactEvent.findMany({ where, orderBy: { id: 'asc' }, skip: page.skip, take: page.limit }),
      this.prisma.contactEvent.count({ where }),
    ]);
    return { items, total };
  }

  /** Returns false when there was no such contact. Its notes go with it (ON DELETE CASCADE). */
  async delete(id: number): Promise<boolean> {
    const { count } = await this.prisma.contact.deleteMany({ where: { id } });
    return count > 0;
  }

  async addNote(contactId: number, content: string): Promise<NoteRecord> {
    try {
      return await this.prisma.$transaction(async (tx) => {
        const note = await tx.note.create({ data: { contactId, content, syncStatus: this.initialSyncStatus } });
        await appendContactEvent(tx, contactId, 'note_added', { note_id: note.id, content });
        await this.mirror?.enqueueNote(tx, note.id, contactId);
        return note;
      });
    } catch (error) {
      if (isPrismaError(error, 'P2003')) throw new NotFoundError(`Contact ${contactId} not found`);
      throw error;
    }
  }

  /** Throws when the database does not answer. */
  async ping(): Promise<void> {
    await this.prisma.$queryRaw`SELECT 1`;
  }

  /**
   * Contacts are written from the API with no crm_id, so the only unique
   * constraint such a write can break is the one on email.
   */
  private async asEmailConflict(error: unknown, email: string | null | undefined): Promise<unknown> {
    if (!isPrismaError(error, 'P2002') || !email) return error;
    const existing = await this.prisma.contact.findUnique({ where: { email }, select: { id: true } });
    return existing ? new ContactExistsError(existing.id) : error;
  }
}
