import { NotFoundError } from '../errors';
import type { ContactRecord, ContactRepository, NoteRecord } from './contact.repository';
import type { ContactChanges, CreateContactInput, ListContactsFilter } from './contact.schemas';
import type { CrmPort } from './crm-port';

export interface ServiceHealth {
  database: 'up' | 'down';
  crmConfigured: boolean;
}

/** The contact use cases: validated input in, records out; no HTTP here. */
export class ContactService {
  constructor(
    private readonly contacts: ContactRepository,
    private readonly crm: CrmPort,
  ) {}

  async createContact(input: CreateContactInput): Promise<ContactRecord> {
    const contact = await this.contacts.create(input);
    await this.crm.contactCreated(contact);
    return contact;
  }

  async getContact(id: number): Promise<ContactRecord> {
    const contact = await this.contacts.findById(id);
    if (!contact) throw new NotFoundError(`Contact ${id} not found`);
    return contact;
  }

  listContacts(filter: ListContactsFilter): Promise<{ items: ContactRecord[]; total: number }> {
    return this.contacts.list(filter);
  }

  async updateContact(id: number, changes: ContactChanges): Promise<ContactRecord> {
    const contact = await this.contacts.update(id, changes);
    await this.crm.contactUpdated(contact, changes);
    return contact;
  }

  async deleteContact(id: number): Promise<void> {
    if (!(await this.contacts.delete(id))) throw new NotFoundError(`Contact ${id} not found`);
  }

  async addNote(contactId: number, content: string): Promise<NoteRecord> {
    const note = await this.contacts.addNote(contactId, content);
    await this.crm.noteAdded(note);
    return note;
  }

  async health(): Promise<ServiceHealth> {
    const database = await this.contacts.ping().then(
      () => 'up' as const,
      () => 'down' as const,
    );
    return { database, crmConfigured: this.crm.configured };
  }
}
