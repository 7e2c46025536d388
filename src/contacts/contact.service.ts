import { setTimeout as sleep } from 'node:timers/promises';
import { CrmDisabledError } from './contact-errors';
import { NotFoundError, ValidationError } from '../errors';
import type { Contact, ContactChanges, ContactEvent, ContactFilter, NewContact, Note, Page, WriteOrigin } from './contact';
import type { ContactRepository } from './contact.repository';
import type { ContactMirror } from './mirror-port';
import { PhoneNumbers } from './phone-numbers';

export interface ContactServiceOptions {
  /** Absent when no CRM is configured: changes stay local. */
  mirror?: ContactMirror;
  /** How long a creation waits for its mirror before answering without it. */
  mirrorWaitMs?: number;
  /** How phone numbers are read; default: only numbers written with their country code. */
  phones?: PhoneNumbers;
}

/** Stored phones normalised per statement at start-up. */
const PHONE_BATCH = 500;

/** How often a waiting creation looks at its row again. */
const SYNC_POLL_MS = 25;

/** The contact use cases: validated input in, records out; no HTTP here. */
export class ContactService {
  private readonly mirror?: ContactMirror;
  private readonly mirrorWaitMs: number;
  private readonly phones: PhoneNumbers;

  constructor(
    private readonly contacts: ContactRepository,
    options: ContactServiceOptions = {},
  ) {
    this.mirror = options.mirror;
    this.mirrorWaitMs = options.mirrorWaitMs ?? 0;
    this.phones = options.phones ?? new PhoneNumbers();
  }

  /** Records a contact; its mirror runs once the write is committed (see `awaitContactMirror`). */
  createContact(input: NewContact, origin?: WriteOrigin): Promise<Contact> {
    return this.contacts.create({ ...input, phoneE164: this.phoneE164(input.phone, 'phone') }, origin);
  }

  /**
   * What creating the contact would meet, without writing it: throws ValidationError as
   * `createContact` would; returns the id of the contact that has its email already, else null.
   */
  async checkNewContact(input: NewContact): Promise<number | null> {
    this.phoneE164(input.phone, 'phone');
    if (!input.email) return null;
    const { items } = await this.contacts.list({ email: input.email, skip: 0, limit: 1 });
    return items[0]?.id ?? null;
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

  /** `phone`, in any form the service reads, finds the contacts with that number. */
  listContacts({ phone, ...filter }: Omit<ContactFilter, 'phoneE164'> & { phone?: string }): Promise<{ items: Contact[]; total: number }> {
    const phoneE164 = this.phoneE164(phone, 'phone') ?? undefined;
    return this.contacts.list({ ...filter, phoneE164 });
  }

  /** Answers at once: the mirror of an update finishes in the background. */
  updateContact(id: number, changes: ContactChanges): Promise<Contact> {
    if (changes.phone === undefined) return this.contacts.update(id, changes);
    return this.contacts.update(id, { ...changes, phoneE164: this.phoneE164(changes.phone, 'fields.phone') });
  }

  /**
   * Gives every stored phone without an E.164 form one, where the number reads as valid (rows
   * written before phones were normalised). Numbers that do not read stay as they were given.
   */
  async normaliseStoredPhones(): Promise<{ normalised: number; unreadable: number }> {
    let normalised = 0;
    let unreadable = 0;
    for (let afterId = 0; ; ) {
      const batch = await this.contacts.phonesWithoutE164(afterId, PHONE_BATCH);
      if (batch.length === 0) return { normalised, unreadable };
      const read = batch.flatMap(({ id, phone }) => {
        const phoneE164 = this.phones.toE164(phone);
        return phoneE164 ? [{ id, phone, phoneE164 }] : [];
      });
      await this.contacts.setPhonesE164(read);
      normalised += read.length;
      unreadable += batch.length - read.length;
      afterId = batch[batch.length - 1]!.id;
    }
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

  /** The E.164 form of a phone given in `field`; a number that is not valid is refused (400). */
  private phoneE164(phone: string | null | undefined, field: string): string | null {
    if (phone === null || phone === undefined) return null;
    const e164 = this.phones.toE164(phone);
    if (!e164) throw new ValidationError('Invalid phone number', [{ field, message: this.phones.invalidMessage() }]);
    return e164;
  }
}
