import type { Prisma } from '@prisma/client';
import type { ContactField } from './contact';

/** How the CRM answered lately; `disabled` when no CRM is configured. */
export type CrmState = 'ok' | 'unauthorized' | 'unreachable' | 'disabled';

/**
 * What the contact capability needs from the CRM mirror (implemented in src/sync).
 * The local database is the system of record: the mirror learns of a change through
 * a job written in the same transaction as the change.
 */
export interface ContactMirror {
  /**
   * SQL that queues the mirroring of a new contact, or of a new note, inside the statement that
   * inserts it (`contactId`, `noteId`: expressions of that statement): the row and its job are
   * then one write.
   */
  newContactJobSql(contactId: Prisma.Sql): Prisma.Sql;
  newNoteJobSql(noteId: Prisma.Sql, contactId: Prisma.Sql): Prisma.Sql;
  /** The same for a change of a contact's `changed` fields, inside the statement that updates it. */
  changedContactJobSql(contactId: Prisma.Sql, changed: ContactField[]): Prisma.Sql;
  /** Queues a contact's failed or waiting jobs again now (or a full sync if it has none); returns how many. */
  requeueContact(contactId: number): Promise<number>;
  crmState(): Promise<CrmState>;
}
