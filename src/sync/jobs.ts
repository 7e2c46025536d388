import { Prisma } from '@prisma/client';
import type { ContactField } from '../contacts/contact';

/**
 * The mirror's jobs, kept in graphile-worker's tables (schema graphile_worker).
 * Jobs carry ids, not data: a job reads the row when it runs, so whatever runs
 * last sends the latest state.
 */
export const MIRROR_CONTACT = 'mirror_contact';
export const MIRROR_NOTE = 'mirror_note';

export interface MirrorContactPayload {
  contactId: number;
  /** The fields a PATCH changed, sent to an existing person. */
  changed?: ContactField[];
  /** Send every field to an existing person (a manual sync). */
  full?: boolean;
}

export interface MirrorNotePayload {
  noteId: number;
  contactId: number;
}

/**
 * One queue per contact: graphile-worker runs a queue's jobs one at a time, so a
 * contact's creation, updates and notes never race each other.
 */
export const contactQueue = (contactId: number) => `${CONTACT_QUEUE_PREFIX}${contactId}`;
const CONTACT_QUEUE_PREFIX = 'contact:';

/** Adds a mirror job inside the caller's transaction: the change and its job commit together. */
export async function addMirrorJob(
  tx: Prisma.TransactionClient,
  task: typeof MIRROR_CONTACT | typeof MIRROR_NOTE,
  payload: MirrorContactPayload | MirrorNotePayload,
  maxAttempts: number,
): Promise<void> {
  await tx.$executeRaw`SELECT ${addJobSql(task, Prisma.sql`${JSON.stringify(payload)}::json`, Prisma.sql`${contactQueue(payload.contactId)}`, maxAttempts)}`;
}

/**
 * The same job as addMirrorJob, as an SQL expression for the statement that writes the row, whose
 * ids it takes as SQL (`contactId`, `noteId`: expressions of that statement, such as a column of
 * its RETURNING rows): the row and its job are then written by one statement, atomically.
 * `changed`: the fields an update changed, sent to an existing person.
 */
export function mirrorJobSql(
  task: typeof MIRROR_CONTACT | typeof MIRROR_NOTE,
  ids: { contactId: Prisma.Sql; noteId?: Prisma.Sql; changed?: ContactField[] },
  maxAttempts: number,
): Prisma.Sql {
  const payload = ids.noteId
    ? Prisma.sql`json_build_object('noteId', ${ids.noteId}, 'contactId', ${ids.contactId})`
    : ids.changed
      ? Prisma.sql`json_build_object('contactId', ${ids.contactId}, 'changed', ${JSON.stringify(ids.changed)}::json)`
      : Prisma.sql`json_build_object('contactId', ${ids.contactId})`;
  return addJobSql(task, payload, Prisma.sql`${CONTACT_QUEUE_PREFIX} || ${ids.contactId}`, maxAttempts);
}

/** graphile-worker's add_job for a mirror job, its payload and queue given as SQL. */
function addJobSql(task: typeof MIRROR_CONTACT | typeof MIRROR_NOTE, payload: Prisma.Sql, queue: Prisma.Sql, maxAttempts: number): Prisma.Sql {
  return Prisma.sql`graphile_worker.add_job(${task}, ${payload}, queue_name => ${queue}, max_attempts => ${maxAttempts}::int)`;
}
