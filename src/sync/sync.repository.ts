import type { Prisma } from '@prisma/client';
import type { Contact, ContactEventType, Note } from '../contacts/contact';
import type { TransactionScope } from '../db/transaction-scope';
import { contactById, noteById } from '../contacts/contact.repository';
import { addMirrorJob, contactQueue, MIRROR_CONTACT } from './jobs';

export type SyncCounts = Record<'disabled' | 'pending' | 'synced' | 'failed', number>;

export interface SyncOverview {
  contacts: SyncCounts;
  notes: SyncCounts;
  jobs: { queued: number; failed: number; oldestQueuedAt: Date | null };
}

const emptyCounts = (): SyncCounts => ({ disabled: 0, pending: 0, synced: 0, failed: 0 });

/**
 * Appends to a contact's audit trail. Always called with the transaction of the change
 * it records, so the trail can neither miss a change nor tell of one that was rolled back.
 */
async function appendContactEvent(
  tx: Prisma.TransactionClient,
  contactId: number,
  type: ContactEventType,
  payload: Prisma.InputJsonObject,
): Promise<void> {
  await tx.contactEvent.create({ data: { contactId, type, payload } });
}

/** The mirror's reads and writes of local state: sync columns and graphile-worker's job tables. */
export class SyncRepository {
  constructor(private readonly db: TransactionScope) {}

  getContact(id: number): Promise<Contact | null> {
    return contactById(this.db.client, id);
  }

  getNote(id: number): Promise<Note | null> {
    return noteById(this.db.client, id);
  }

  /** Whether a Pipedrive person is already the mirror of some contact. */
  async isPersonLinked(crmId: number): Promise<boolean> {
    return (await this.db.client.contact.count({ where: { crmId } })) > 0;
  }

  /** Whether a Pipedrive note is already the mirror of some note. */
  async isNoteLinked(crmId: number): Promise<boolean> {
    return (await this.db.client.note.count({ where: { crmId } })) > 0;
  }

  async linkPerson(contactId: number, crmId: number): Promise<void> {
    await this.db.client.contact.updateMany({ where: { id: contactId, crmId: null }, data: { crmId } });
  }

  /**
   * Synced, unless more of the contact's changes are still queued behind this job.
   * `action` says what reached Pipedrive, for the contact's audit trail.
   */
  async markContactSynced(contactId: number, jobId: string, crmId: number, action: 'created' | 'linked' | 'updated'): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.$executeRaw`
        UPDATE contacts
           SET crm_synced_at = now(), crm_last_error = NULL,
               sync_status = CASE WHEN EXISTS (
                 SELECT 1 FROM graphile_worker.jobs j
                  WHERE j.queue_name = ${contactQueue(contactId)} AND j.task_identifier = ${MIRROR_CONTACT}
                    AND j.id <> ${jobId}::bigint AND j.attempts < j.max_attempts
               ) THEN 'pending'::sync_status ELSE 'synced'::sync_status END
         WHERE id = ${contactId}`;
      await appendContactEvent(tx, contactId, 'crm_synced', { crm_id: crmId, action });
    });
  }

  /** Keeps the error while retrying; `final` marks the contact failed. */
  async recordContactError(contactId: number, message: string, final: boolean): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.contact.updateMany({
        where: { id: contactId },
        data: { crmLastError: message, ...(final ? { syncStatus: 'failed' as const } : {}) },
      });
      if (final) await appendContactEvent(tx, contactId, 'crm_failed', { error: message });
    });
  }

  async markNoteSynced(noteId: number, contactId: number, crmId: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.note.updateMany({
        where: { id: noteId },
        data: { crmId, syncStatus: 'synced', crmSyncedAt: new Date(), crmLastError: null },
      });
      await appendContactEvent(tx, contactId, 'crm_synced', { note_id: noteId, crm_note_id: crmId });
    });
  }

  async recordNoteError(noteId: number, contactId: number, message: string, final: boolean): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.note.updateMany({
        where: { id: noteId },
        data: { crmLastError: message, ...(final ? { syncStatus: 'failed' as const } : {}) },
      });
      if (final) await appendContactEvent(tx, contactId, 'crm_failed', { note_id: noteId, error: message });
    });
  }

  /**
   * Runs a contact's waiting and failed jobs again now, with fresh attempts; when it has
   * none, queues a full sync. Returns how many jobs were queued.
   */
  async requeueContact(contactId: number, maxAttempts: number): Promise<number> {
    return this.db.transaction(async (tx) => {
      await tx.contact.update({ where: { id: contactId }, data: { syncStatus: 'pending' } });
      await tx.note.updateMany({ where: { contactId, syncStatus: 'failed' }, data: { syncStatus: 'pending' } });
      const rescheduled = await tx.$queryRaw<{ id: bigint }[]>`
        SELECT id FROM graphile_worker.reschedule_jobs(
          ARRAY(SELECT id FROM graphile_worker.jobs WHERE queue_name = ${contactQueue(contactId)} AND locked_at IS NULL),
          run_at => now(), attempts => 0)`;
      if (rescheduled.length > 0) return rescheduled.length;
      await addMirrorJob(tx, MIRROR_CONTACT, { contactId, full: true }, maxAttempts);
      return 1;
    });
  }

  /** Jobs waiting to run or retry, and jobs given up. */
  async queueDepth(): Promise<{ queued: number; failed: number }> {
    const [row] = await this.db.client.$queryRaw<{ queued: bigint; failed: bigint }[]>`
      SELECT count(*) FILTER (WHERE attempts < max_attempts) AS queued,
             count(*) FILTER (WHERE attempts >= max_attempts) AS failed
        FROM graphile_worker.jobs`;
    return { queued: Number(row?.queued ?? 0), failed: Number(row?.failed ?? 0) };
  }

  async overview(): Promise<SyncOverview> {
    const [contacts, notes, depth, oldest] = await Promise.all([
      this.db.client.contact.groupBy({ by: ['syncStatus'], _count: { _all: true } }),
      this.db.client.note.groupBy({ by: ['syncStatus'], _count: { _all: true } }),
      this.queueDepth(),
      this.db.client.$queryRaw<{ oldest: Date | null }[]>`
        SELECT min(created_at) AS oldest FROM graphile_worker.jobs WHERE attempts < max_attempts`,
    ]);
    const tally = (rows: { syncStatus: keyof SyncCounts; _count: { _all: number } }[]) =>
      rows.reduce((counts, row) => ({ ...counts, [row.syncStatus]: row._count._all }), emptyCounts());
    return {
      contacts: tally(contacts),
      notes: tally(notes),
      jobs: { ...depth, oldestQueuedAt: oldest[0]?.oldest ?? null },
    };
  }
}
