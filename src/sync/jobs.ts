import type { Prisma } from '@prisma/client';
import type { ContactField } from '../contacts/mirror-port';

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
export const contactQueue = (contactId: number) => `contact:${contactId}`;

/** Adds a mirror job inside the caller's transaction: the change and its job commit together. */
export async function addMirrorJob(
  tx: Prisma.TransactionClient,
  task: typeof MIRROR_CONTACT | typeof MIRROR_NOTE,
  payload: MirrorContactPayload | MirrorNotePayload,
  maxAttempts: number,
): Promise<void> {
  await tx.$executeRaw`SELECT graphile_worker.add_job(
    ${task}, ${JSON.stringify(payload)}::json,
    queue_name => ${contactQueue(payload.contactId)}, max_attempts => ${maxAttempts}::int)`;
}
