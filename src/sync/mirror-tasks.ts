import type { Contact } from '../contacts/contact';
import type { Logger } from '../logger';
import { CrmError, type CrmGateway, type CrmPerson, type NewPerson, type PersonChanges } from './crm-gateway';
import type { MirrorContactPayload, MirrorNotePayload } from './jobs';
import type { SyncRepository } from './sync.repository';

export interface JobContext {
  id: string;
  attempt: number;
  maxAttempts: number;
}

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** The last attempt, or a failure no retry can mend. */
const isFinal = (error: unknown, job: JobContext) =>
  job.attempt >= job.maxAttempts || (error instanceof CrmError && !error.retryable);

const personFields = (contact: Contact): NewPerson => ({ name: contact.name, email: contact.email, phone: contact.phone });

/** Local values that the person lacks; a field empty locally leaves the person's alone. */
function differingFields(contact: Contact, person: CrmPerson): PersonChanges {
  const changes: PersonChanges = {};
  if (contact.name !== person.name) changes.name = contact.name;
  if (contact.email && !person.emails.some((email) => email.toLowerCase() === contact.email)) changes.email = contact.email;
  if (contact.phone && !person.phones.includes(contact.phone)) changes.phone = contact.phone;
  return changes;
}

/** What the mirror jobs do: bring Pipedrive to the contact's current local state. */
export class MirrorTasks {
  constructor(
    private readonly store: SyncRepository,
    private readonly crm: CrmGateway,
    private readonly logger: Logger,
  ) {}

  async mirrorContact(payload: MirrorContactPayload, job: JobContext): Promise<void> {
    const contact = await this.store.getContact(payload.contactId);
    if (!contact) return; // deleted since: nothing left to mirror
    try {
      if (contact.crmId === null) {
        // The person is created from the current row, which already holds any change.
        await this.ensurePerson(contact, job);
        return;
      }
      const changes = this.changesToSend(contact, payload);
      if (Object.keys(changes).length > 0) await this.crm.updatePerson(contact.crmId, changes);
      await this.store.markContactSynced(contact.id, job.id, contact.crmId, 'updated');
    } catch (error) {
      await this.store.recordContactError(contact.id, describe(error), isFinal(error, job));
      throw error;
    }
  }

  async mirrorNote(payload: MirrorNotePayload, job: JobContext): Promise<void> {
    const note = await this.store.getNote(payload.noteId);
    if (!note || note.crmId !== null) return;
    const contact = await this.store.getContact(payload.contactId);
    if (!contact) return;
    try {
      // A note needs its person: whichever of the contact's jobs runs first creates it.
      const personId = contact.crmId ?? (await this.ensurePerson(contact, job));
      const crmNoteId = (await this.findLostNote(personId, note.content, job)) ?? (await this.crm.addNote(personId, note.content)).id;
      await this.store.markNoteSynced(note.id, contact.id, crmNoteId);
    } catch (error) {
      await this.store.recordNoteError(note.id, contact.id, describe(error), isFinal(error, job));
      throw error;
    }
  }

  /**
   * On a retry, an earlier attempt may have added the note and lost the answer: look for
   * a note of the person with this content that no local note claims yet.
   */
  private async findLostNote(personId: number, content: string, job: JobContext): Promise<number | null> {
    if (job.attempt === 1) return null;
    for (const id of await this.crm.findNotes(personId, content)) {
      if (!(await this.store.isNoteLinked(id))) return id;
    }
    return null;
  }

  private changesToSend(contact: Contact, payload: MirrorContactPayload): PersonChanges {
    const fields = personFields(contact);
    if (payload.full) return fields;
    return Object.fromEntries((payload.changed ?? []).map((field) => [field, fields[field]]));
  }

  /**
   * Links the contact to its Pipedrive person, creating the person only when none can
   * be found: a retry after a request that reached Pipedrive but whose answer was lost
   * finds the person it created instead of creating a second one.
   */
  private async ensurePerson(contact: Contact, job: JobContext): Promise<number> {
    const existing = await this.findUnlinkedPerson(contact, job);
    let personId: number;
    if (existing) {
      personId = existing.id;
      this.logger.info({ contactId: contact.id, crmId: personId }, 'linked contact to an existing Pipedrive person');
      // The local row is the truth: bring the person's differing fields in line.
      const changes = differingFields(contact, existing);
      if (Object.keys(changes).length > 0) await this.crm.updatePerson(personId, changes);
    } else {
      personId = (await this.crm.createPerson(personFields(contact))).id;
    }
    await this.store.linkPerson(contact.id, personId);
    await this.store.markContactSynced(contact.id, job.id, personId, existing ? 'linked' : 'created');
    return personId;
  }

  /**
   * Email identifies a person; failing that, phone. A name alone is searched only on a
   * retry, where an earlier attempt may have created the person: on a first attempt it
   * could only find a namesake.
   */
  private async findUnlinkedPerson(contact: Contact, job: JobContext) {
    const search = contact.email
      ? ({ field: 'email', term: contact.email } as const)
      : contact.phone
        ? ({ field: 'phone', term: contact.phone } as const)
        : job.attempt > 1
          ? ({ field: 'name', term: contact.name } as const)
          : undefined;
    if (!search) return null;
    const person = await this.crm.findPerson(search.field, search.term);
    if (!person || (await this.store.isPersonLinked(person.id))) return null;
    return person;
  }
}
