import { isPhoneRegion, PhoneNumbers } from '../../src/contacts/phone-numbers';

describe('PhoneNumbers', () => {
  it.each([
    ['+44 20 7946 0000', '+442079460000'],
    ['+442079460000', '+442079460000'],
    ['+44 (0)20 7946-0000', '+442079460000'],
    ['+1 (202) 555-0100', '+12025550100'],
    ['+49 30 901820', '+4930901820'],
  ])('reads %s as %s, with or without a default region', (text, e164) => {
    expect(new PhoneNumbers().toE164(text)).toBe(e164);
    expect(new PhoneNumbers('US').toE164(text)).toBe(e164);
  });

  it('reads a national number as one of the default region, and refuses it without one', () => {
    expect(new PhoneNumbers('GB').toE164('020 7946 0000')).toBe('+442079460000');
    expect(new PhoneNumbers('US').toE164('(202) 555-0100')).toBe('+12025550100');
    expect(new PhoneNumbers().toE164('020 7946 0000')).toBeNull();
  });

  it.each(['+1 555 0100', '+44 1', '+44 20 7946', '12', '+999 1234 5678'])('refuses %s, which no country issues', (text) => {
    expect(new PhoneNumbers('GB').toE164(text)).toBeNull();
  });

  it('compares numbers by E.164 where they read, else by their digits', () => {
    const phones = new PhoneNumbers('GB');
    expect(phones.key('020 7946 0000')).toBe(phones.key('+44 20 7946 0000'));
    expect(phones.key('+1 555 0100')).toBe('+15550100');
    expect(phones.key('555-01')).toBe('55501');
  });

  it('says how to write a refused number, naming the default region when there is one', () => {
    expect(new PhoneNumbers().invalidMessage()).toMatch(/\+ and its country code/);
    expect(new PhoneNumbers().invalidMessage()).not.toMatch(/national/);
    expect(new PhoneNumbers('GB').invalidMessage()).toMatch(/national number of GB/);
  });

  it('knows two-letter regions', () => {
    expect(isPhoneRegion('GB')).toBe(true);
    expect(isPhoneRegion('XX')).toBe(false);
    expect(isPhoneRegion('gb')).toBe(false);
  });
});
