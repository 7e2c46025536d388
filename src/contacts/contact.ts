/**
 * The contact capability's records: what the routes, the service and the mirror speak in. The
 * repositories map rows to them; nothing above them sees a row, an ORM type or SQL.
 */

/** Where a row stands with its Pipedrive mirror. */
export type SyncStatus = 'disabled' | 'pending' | 'synced' | 'failed';

/** The fields of a contact that callers write and the mirror sends. */
export type ContactField = 'name' | 'email' | 'phone';

export interface Contact {
  id: number;
  name: string;
  email: string | null;
  /** The phone as it was given. */
  phone: string | null;
  /** The phone in E.164 (`+442079460000`): what is matched and sent to Pipedrive. Null for a number stored before it was read as valid. */
  phoneE164: string | null;
  /** Its Pipedrive person, once linked. */
  crmId: number | null;
  /** The sales team deleted its person in Pipedrive: it is not mirrored until queued again. */
  crmDeleted: boolean;
  syncStatus: SyncStatus;
  crmSyncedAt: Date | null;
  crmLastError: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface Note {
  id: number;
  contactId: number;
  content: string;
  /** Its Pipedrive note, once added. */
  crmId: number | null;
  syncStatus: SyncStatus;
  crmSyncedAt: Date | null;
  crmLastError: string | null;
  createdAt: Date;
}

export const CONTACT_EVENT_TYPES = ['created', 'updated', 'note_added', 'crm_synced', 'crm_failed', 'crm_unlinked', 'crm_linked'] as const;
export type ContactEventType = (typeof CONTACT_EVENT_TYPES)[number];

/**
 * Where a change came from: a caller of the API, the sales team in Pipedrive (a webhook or a
 * refresh), an operator's import, or the mirror's own work.
 */
export const CHANGE_SOURCES = ['api', 'pipedrive', 'import', 'mirror'] as const;
export type ChangeSource = (typeof CHANGE_SOURCES)[number];

/** One entry of a contact's audit trail. */
export interface ContactEvent {
  id: number;
  contactId: number;
  type: ContactEventType;
  source: ChangeSource;
  payload: unknown;
  createdAt: Date;
}

/** Who writes a contact, for its audit trail; `bulk`: the mirror takes it after every live change (an import). */
export interface WriteOrigin {
  source: ChangeSource;
  bulk?: boolean;
}

/** A contact to record: email and phone may be absent. */
export interface NewContact {
  name: string;
  email?: string | null;
  phone?: string | null;
}

/** The fields to change; null clears email or phone. */
export type ContactChanges = Partial<Record<'name', string> & Record<'email' | 'phone', string | null>>;

/** A phone checked and normalised by the service, beside the number as given. */
export interface PhoneE164 {
  phoneE164: string | null;
}

export interface Page {
  skip: number;
  limit: number;
}

export interface ContactFilter extends Page {
  /** A case-insensitive substring of the name. */
  search?: string;
  email?: string;
  /** A phone in E.164: contacts whose number is the same, however it was written. */
  phoneE164?: string;
}
