import { Prisma } from '@prisma/client';
import type { ContactMirror } from '../../src/contacts/mirror-port';

/**
 * A mirror whose job queue fails unexpectedly whenever a contact is queued: the statement that
 * creates or changes a contact fails inside PostgreSQL with `message` in its error (an invalid
 * cast). Notes are queued as nothing.
 */
export const brokenMirror = (message: string): ContactMirror => ({
  newContactJobSql: () => Prisma.sql`(${message}::int)`,
  newNoteJobSql: () => Prisma.sql`NULL`,
  changedContactJobSql: () => Prisma.sql`(${message}::int)`,
  requeueContact: async () => 0,
  crmState: async () => 'ok',
});
