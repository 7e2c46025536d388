import { PhoneNumbers } from '../../src/contacts/phone-numbers';
import { decideFields, personValue, type FieldValues, type LocalContact } from '../../src/inbound/field-merge';
import type { CrmPerson } from '../../src/mirror/crm-gateway';

/** Field-level last-writer-wins between a contact and its person (src/inbound/field-merge.ts). */
const phones = new PhoneNumbers('GB');
const at = (iso: string) => new Date(iso);

const person = (fields: Partial<CrmPerson> = {}): CrmPerson => ({
  id: 1,
  name: 'Ada',
  emails: [{ value: 'ada@example.com', primary: true, label: 'work' }],
  phones: [{ value: '+442079460000', primary: true, label: 'work' }],
  updatedAt: at('2026-11-29T12:00:00Z'),
  ...fields,
});

const sent: FieldValues = { name: 'Ada', email: 'ada@example.com', phone: '+442079460000' };

const contact = (values: Partial<FieldValues> = {}, changedAt: Date | null = null): LocalContact => ({
  values: { ...sent, ...values },
  pushed: sent,
  changedAt: async () => changedAt,
});

describe('personValue', () => {
  it('is the value last sent while the person still has it, beside others the sales team added', () => {
    const p = person({ emails: [{ value: 'boss@example.com', primary: true, label: 'work' }, { value: 'ADA@example.com', primary: false, label: 'home' }] });
    expect(personValue('email', p, sent, phones)).toBe('ada@example.com');
  });

  it('is the primary one once the value last sent is gone, and null when the list is empty', () => {
    const p = person({ emails: [{ value: 'other@example.com', primary: false, label: '' }, { value: 'new@example.com', primary: true, label: '' }] });
    expect(personValue('email', p, sent, phones)).toBe('new@example.com');
    expect(personValue('phone', person({ phones: [] }), sent, phones)).toBeNull();
  });

  it('compares phones as numbers: a national number typed in Pipedrive is the one sent', () => {
    expect(personValue('phone', person({ phones: [{ value: '020 7946 0000', primary: true, label: '' }] }), sent, phones)).toBe('+442079460000');
  });
});

describe('decideFields', () => {
  it('takes nothing from an echo of the service’s own write', async () => {
    const decision = await decideFields(contact(), person(), phones);
    expect(decision).toEqual({ take: {}, keptLocal: [], pushed: sent });
  });

  it('takes a field changed in Pipedrive when the contact has no pending change of it', async () => {
    const decision = await decideFields(contact(), person({ name: 'Ada Lovelace' }), phones);
    expect(decision).toEqual({ take: { name: 'Ada Lovelace' }, keptLocal: [], pushed: { ...sent, name: 'Ada Lovelace' } });
  });

  it('keeps a newer local change not yet mirrored, and leaves what was sent as it was', async () => {
    const decision = await decideFields(contact({ name: 'Ada (local)' }, at('2026-11-29T12:00:05Z')), person({ name: 'Ada (Pipedrive)' }), phones);
    expect(decision).toEqual({ take: {}, keptLocal: ['name'], pushed: sent });
  });

  it('takes Pipedrive’s value over an older local change not yet mirrored', async () => {
    const decision = await decideFields(contact({ name: 'Ada (local)' }, at('2026-11-29T11:59:00Z')), person({ name: 'Ada (Pipedrive)' }), phones);
    expect(decision.take).toEqual({ name: 'Ada (Pipedrive)' });
  });

  it('records agreement when both sides made the same change', async () => {
    const decision = await decideFields(contact({ name: 'Ada King' }, at('2026-11-29T12:00:05Z')), person({ name: 'Ada King' }), phones);
    expect(decision).toEqual({ take: {}, keptLocal: [], pushed: { ...sent, name: 'Ada King' } });
  });

  it('takes a cleared email', async () => {
    const decision = await decideFields(contact(), person({ emails: [] }), phones);
    expect(decision.take).toEqual({ email: null });
  });
});
