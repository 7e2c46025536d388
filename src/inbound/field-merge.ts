import type { ContactField } from '../contacts/contact';
import type { PhoneNumbers } from '../contacts/phone-numbers';
import type { ContactItem, CrmPerson, NewPerson } from '../mirror/crm-gateway';
import { emailKey } from '../mirror/person-update';

/**
 * Field-level last-writer-wins between a contact and its Pipedrive person.
 *
 * A field changed in Pipedrive when the person's value of it is no longer what this service last
 * sent (`pushed`). Then:
 * - it equals the contact's value: nothing to do (both sides agree);
 * - the contact has a change of that field not yet mirrored (its value differs from `pushed`) made
 *   after the person's update time: the local value wins, and the mirror sends it;
 * - else Pipedrive's value is taken into the contact.
 * An echo of the service's own write leaves every field equal to `pushed`, so it changes nothing.
 *
 * A person has lists of emails and phones; a contact one of each. The person's value for the
 * contact's email (or phone) is the one last sent while it is still on the person (the sales team
 * may add others beside it); once it is gone (edited or removed), the person's primary one.
 */

export type FieldValues = NewPerson;
/** Field values by name; a name is never null in practice (taken values are checked by the caller). */
type Values = Record<ContactField, string | null>;

export interface LocalContact {
  values: FieldValues;
  /** What the mirror last sent the person. */
  pushed: FieldValues;
  /** When each field last changed locally (API or import), for the fields that may be needed. */
  changedAt: (field: ContactField) => Promise<Date | null>;
}

export interface FieldDecision {
  /** Fields to take from Pipedrive, with their new values. */
  take: Partial<Values>;
  /** Fields changed on both sides where the newer local change wins. */
  keptLocal: ContactField[];
  /** What Pipedrive now has, for crm_pushed: the values both sides agree on, or that the mirror will send. */
  pushed: FieldValues;
}

const FIELDS: ContactField[] = ['name', 'email', 'phone'];

/** The person's value for a contact field, as described above. */
/** A person's primary email (or phone), else its first; null when it has none. */
export const primaryValue = (items: ContactItem[]): string | null => (items.find((item) => item.primary) ?? items[0])?.value ?? null;

export function personValue(field: ContactField, person: CrmPerson, pushed: FieldValues, phones: PhoneNumbers): string | null {
  if (field === 'name') return person.name;
  const items = field === 'email' ? person.emails : person.phones;
  const key = (value: string) => (field === 'email' ? emailKey(value) : phones.key(value));
  const sent = pushed[field];
  if (sent !== null && items.some((item) => key(item.value) === key(sent))) return sent;
  return primaryValue(items);
}

export function sameValue(field: ContactField, a: string | null, b: string | null, phones: PhoneNumbers): boolean {
  if (a === null || b === null) return a === b;
  if (field === 'email') return emailKey(a) === emailKey(b);
  if (field === 'phone') return phones.key(a) === phones.key(b);
  return a === b;
}

/** Decides, field by field, what a person state changes in its contact (see above). */
export async function decideFields(contact: LocalContact, person: CrmPerson, phones: PhoneNumbers): Promise<FieldDecision> {
  const { pushed } = contact;
  const next: Values = { ...pushed };
  const decision: FieldDecision = { take: {}, keptLocal: [], pushed: next as FieldValues };
  for (const field of FIELDS) {
    const theirs = personValue(field, person, pushed, phones);
    const local = contact.values[field];
    if (sameValue(field, theirs, pushed[field], phones)) continue;
    if (sameValue(field, theirs, local, phones)) {
      next[field] = local;
      continue;
    }
    const localPending = !sameValue(field, local, pushed[field], phones);
    const changedAt = localPending ? await contact.changedAt(field) : null;
    if (localPending && changedAt !== null && person.updatedAt !== undefined && changedAt > person.updatedAt) {
      decision.keptLocal.push(field);
      continue;
    }
    if (field === 'name' && theirs === null) continue;
    decision.take[field] = theirs;
    next[field] = theirs;
  }
  return decision;
}
