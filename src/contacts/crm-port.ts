import type { ContactRecord, NoteRecord } from './contact.repository';
import type { ContactChanges } from './contact.schemas';

/**
 * What the contact service needs from a CRM mirror. The local database is the
 * system of record; a mirror learns of each committed change through this port.
 */
export interface CrmPort {
  /** False when no CRM is configured; health reports it as crm_configured. */
  readonly configured: boolean;
  contactCreated(contact: ContactRecord): Promise<void>;
  contactUpdated(contact: ContactRecord, changes: ContactChanges): Promise<void>;
  noteAdded(note: NoteRecord): Promise<void>;
}

/** A mirror that keeps every change local; `configured` only reports whether a CRM key is set. */
export const noopCrm = (configured: boolean): CrmPort => ({
  configured,
  contactCreated: async () => undefined,
  contactUpdated: async () => undefined,
  noteAdded: async () => undefined,
});
