import type { ContactItem } from '../../src/mirror/crm-gateway';
import { PhoneNumbers } from '../../src/contacts/phone-numbers';
import { needsLists, personUpdate, replaceItem } from '../../src/mirror/person-update';

const item = (value: string, primary = false, label = 'work'): ContactItem => ({ value, primary, label });
const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

describe('replaceItem', () => {
  it('replaces the value set before in its place, keeping its label and primary flag', () => {
    expect(replaceItem([item('x@home', false, 'home'), item('old@work', true)], 'old@work', 'new@work', same)).toEqual([
      item('x@home', false, 'home'),
      item('new@work', true),
    ]);
  });

  it('leaves the list alone when the value did not change, whatever its case', () => {
    const items = [item('Ada@Example.com', true)];
    expect(replaceItem(items, 'ada@example.com', 'ADA@example.com', same)).toBe(items);
  });

  it('only drops the value set before when the new one is already there (added by the sales team)', () => {
    expect(replaceItem([item('old', true), item('new', false, 'home')], 'old', 'new', same)).toEqual([item('new', true, 'home')]);
  });

  it('adds the value when nothing was set before, primary only in an empty list', () => {
    expect(replaceItem([], null, 'a', same)).toEqual([item('a', true)]);
    expect(replaceItem([item('b', true, 'home')], null, 'a', same)).toEqual([item('b', true, 'home'), item('a')]);
  });

  it('removes nothing it did not set', () => {
    const items = [item('theirs', true, 'home')];
    expect(replaceItem(items, 'gone already', null, same)).toEqual(items);
    expect(replaceItem(items, null, null, same)).toEqual(items);
  });
});

describe('personUpdate and needsLists', () => {
  const wanted = { name: 'Ada', email: 'ada@example.com', phone: '+442079460000' };
  const phones = new PhoneNumbers('GB');

  it('reads nothing and sends nothing when what was sent is what the contact holds', () => {
    expect(needsLists(wanted, wanted, null, phones)).toBe(false);
    expect(personUpdate(wanted, wanted, null, phones)).toEqual({});
  });

  it.each(['+44 20 7946 0000', '020 7946 0000', '(020) 7946-0000'])('takes %s typed in Pipedrive for the same number', (typed) => {
    const person = { id: 1, name: 'Ada', emails: [item('ada@example.com', true)], phones: [item(typed, true)] };
    expect(needsLists(wanted, null, person, phones)).toBe(false);
    expect(personUpdate(wanted, null, person, phones)).toEqual({});
  });

  it('adds the number beside a national one of another country (no default region to read it as ours)', () => {
    const person = { id: 1, name: 'Ada', emails: [item('ada@example.com', true)], phones: [item('020 7946 0000', true, 'home')] };
    expect(personUpdate(wanted, null, person, new PhoneNumbers('US')).phones).toEqual([item('020 7946 0000', true, 'home'), item('+442079460000')]);
  });

  it('sends the name alone when only the name changed', () => {
    expect(personUpdate({ ...wanted, name: 'Ada King' }, wanted, null, phones)).toEqual({ name: 'Ada King' });
  });
});
