import type { PhoneNumbers } from '../contacts/phone-numbers';
import type { ContactItem, CrmPerson, NewPerson, PersonUpdate } from './crm-gateway';

/**
 * What to send a Pipedrive person so that it shows the contact, without destroying what the sales
 * team put there. Pipedrive's PATCH replaces a person's whole email (or phone) list; so a changed
 * value replaces only the value this service sent before (`pushed`), in its place, with its label
 * and primary flag, and every other item stays. Nothing known of what was sent (a link, a full sync):
 * the contact's value is added when missing, and nothing is removed. Phones are compared as numbers
 * (`phones.key`): `020 7946 0000` typed in Pipedrive is the contact's `+442079460000`.
 */

type Same = (a: string, b: string) => boolean;

/** How an email is compared and indexed: trimmed, lower-case. */
export const emailKey = (email: string) => email.trim().toLowerCase();

const sameEmail: Same = (a, b) => emailKey(a) === emailKey(b);
const samePhone = (phones: PhoneNumbers): Same => (a, b) => phones.key(a) === phones.key(b);

/** `items` with `previous` replaced by `next` (null: removed), or `next` added when neither is there. */
export function replaceItem(items: ContactItem[], previous: string | null, next: string | null, same: Same): ContactItem[] {
  if (previous !== null && next !== null && same(previous, next)) return items;
  const present = next !== null && items.some((item) => same(item.value, next));
  const index = previous === null ? -1 : items.findIndex((item) => same(item.value, previous));
  const result = [...items];
  if (index >= 0) {
    const replaced = result[index]!;
    if (next !== null && !present) result[index] = { value: next, primary: replaced.primary, label: replaced.label };
    else result.splice(index, 1);
  } else if (next !== null && !present) {
    result.push({ value: next, primary: result.length === 0, label: 'work' });
  }
  // Pipedrive keeps one primary item in a non-empty list: the first takes over from a removed one.
  if (result.length > 0 && !result.some((item) => item.primary)) result[0] = { ...result[0]!, primary: true };
  return result;
}

const sameItems = (a: ContactItem[], b: ContactItem[]) =>
  a.length === b.length && a.every((item, i) => item.value === b[i]!.value && item.primary === b[i]!.primary && item.label === b[i]!.label);

/** Whether the contact's `field` must change in the person's list (which needs the list itself). */
function listChanges(field: 'email' | 'phone', wanted: NewPerson, pushed: NewPerson | null, known: CrmPerson | null, phones: PhoneNumbers): boolean {
  const value = wanted[field];
  if (pushed) return pushed[field] !== value;
  if (value === null) return false;
  const items = field === 'email' ? known?.emails : known?.phones;
  const same = field === 'email' ? sameEmail : samePhone(phones);
  return !items?.some((item) => same(item.value, value));
}

/** Whether the person's email or phone lists must be read before the update can be computed. */
export function needsLists(wanted: NewPerson, pushed: NewPerson | null, known: CrmPerson | null, phones: PhoneNumbers): boolean {
  return listChanges('email', wanted, pushed, known, phones) || listChanges('phone', wanted, pushed, known, phones);
}

/**
 * The update bringing `person` in line with `wanted`; empty when nothing differs. `person` is the
 * person as Pipedrive has it (its lists with labels), or null when no list needs changing.
 */
export function personUpdate(wanted: NewPerson, pushed: NewPerson | null, person: CrmPerson | null, phones: PhoneNumbers): PersonUpdate {
  const update: PersonUpdate = {};
  if (pushed ? pushed.name !== wanted.name : person?.name !== wanted.name) update.name = wanted.name;
  if (person && listChanges('email', wanted, pushed, person, phones)) {
    const emails = replaceItem(person.emails, pushed?.email ?? null, wanted.email, sameEmail);
    if (!sameItems(emails, person.emails)) update.emails = emails;
  }
  if (person && listChanges('phone', wanted, pushed, person, phones)) {
    const items = replaceItem(person.phones, pushed?.phone ?? null, wanted.phone, samePhone(phones));
    if (!sameItems(items, person.phones)) update.phones = items;
  }
  return update;
}
