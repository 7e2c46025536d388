/** How the CRM answered lately; `disabled` when no CRM is configured. */
export type CrmState = 'ok' | 'unauthorized' | 'unreachable' | 'disabled';

/**
 * What the contact capability needs from the CRM mirror (implemented in src/mirror). The local
 * database is the system of record: the mirror learns of a change from the row itself (its
 * sync_status and versions), queued by the database in the statement that writes it.
 */
export interface ContactMirror {
  /** Queues a contact and its failed notes again now, with fresh attempts; returns how many rows were queued. */
  requeueContact(contactId: number): Promise<number>;
  crmState(): Promise<CrmState>;
}
