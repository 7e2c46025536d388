import { setTimeout as sleep } from 'node:timers/promises';
import { CrmDisabledError } from './contact-errors';
import { NotFoundError } from '../errors';
import type { Contact, ContactChanges, ContactEvent, ContactFilter, NewContact, Note, Page } from './contact';
import type { ContactRepository } from './contact.repository';
import type { ContactMirror } from './mirror-port';

export interface ContactServiceOptions {
  /** Absent when no CRM is configured: changes stay local. */
  mirror?: ContactMirror;
  /** How long a creation waits for its mirror before answering without it. */
  mirrorWaitMs?: number;
}

/** How often a waiting creation looks at its row again. */
const SYNC_POLL_MS = 25;

/** The contact use cases: validated input in, records out; no HTTP here. */
export class ContactService {
  private readonly mirror?: ContactMirror;
  private readonly mirrorWaitMs: number;

  constructor(
    private readonly contacts: ContactRepository,
    options: ContactServiceOptions = {},
  ) {
    this.mirror = options.mirror;
    this.mirrorWaitMs = options.mirrorWaitMs ?? 0;
  }

  /** Records a contact; its mirror runs once the write is committed (see `awaitContactMirror`). */
  createContact(input: NewContact): Promise<Contact> {
    return this.contacts.create(input);
  }

  /** The contact once its first mirror is done, or as it is after CRM_SYNC_WAIT_MS. Call after the commit. */
  awaitContactMirror(contact: Contact): Promise<Contact> {
    return this.awaitMirror(contact, () => this.contacts.findById(contact.id));
  }

  async getContact(id: number): Promise<Contact> {
    const contact = await this.contacts.findById(id);
    if (!contact) throw new NotFoundError(`Contact ${id} not found`);
    return contact;
  }

  listContacts(filter: ContactFilter): Promise<{ items: Contact[]; total: number }> {
    return this.contacts.list(filter);
  }

  /** Answers at once: the mirror of an update finishes in the background. */
  updateContact(id: number, changes: ContactChanges): Promise<Contact> {
    return this.contacts.update(id, changes);
  }

  async deleteContact(id: number): Promise<void> {
    if (!(await this.contacts.delete(id))) throw new NotFoundError(`Contact ${id} not found`);
  }

  /** Adds a note; its mirror runs once the write is committed (see `awaitNoteMirror`). */
  addNote(contactId: number, content: string): Promise<Note> {
    return this.contacts.addNote(contactId, content);
  }

  /** The note once its mirror is done, or as it is after CRM_SYNC_WAIT_MS. Call after the commit. */
  awaitNoteMirror(note: Note): Promise<Note> {
    return this.awaitMirror(note, () => this.contacts.findNote(note.id));
  }

  /** The contact's audit trail, oldest first. */
  async listEvents(contactId: number, page: Page): Promise<{ items: ContactEvent[]; total: number }> {
    await this.getContact(contactId);
    return this.contacts.listEvents(contactId, page);
  }

  /** Queues a contact's mirror again, e.g. after a failure has been fixed. */
  async resyncContact(id: number): Promise<{ contact: Contact; requeued: number }> {
    if (!this.mirror) throw new CrmDisabledError('No CRM is configured (PIPEDRIVE_API_KEY is not set)');
    await this.getContact(id);
    const requeued = await this.mirror.requeueContact(id);
    return { contact: await this.getContact(id), requeued };
  }

  /**
   * Waits, up to the configured time, for a freshly written row to leave `pending`.
   * The write is committed already: the wait only decides what the caller is told.
   */
  private async awaitMirror<T extends { syncStatus: string }>(written: T, reload: () => Promise<T | null>): Promise<T> {
    if (!this.mirror || this.mirrorWaitMs === 0 || written.syncStatus !== 'pending') return written;
    const deadline = Date.now() + this.mirrorWaitMs;
    let latest = written;
    while (Date.now() < deadline) {
      await sleep(Math.min(SYNC_POLL_MS, Math.max(0, deadline - Date.now())));
      // A failed re-read must not turn a committed write into an error.
      latest = (await reload().catch(() => null)) ?? latest;
      if (latest.syncStatus !== 'pending') break;
    }
    return latest;
  }
}
