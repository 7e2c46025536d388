import { isSupportedCountry, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';

/** Whether `region` is a two-letter country code libphonenumber-js knows (GB, US, DE…). */
export const isPhoneRegion = (region: string): region is CountryCode => isSupportedCountry(region);

/**
 * Phone numbers as the service reads them: E.164 (`+442079460000`), through libphonenumber-js with
 * its full metadata (the smaller sets accept numbers of a plausible length that no country issues).
 * A number written without its country code is read as one of `defaultRegion` (DEFAULT_PHONE_REGION).
 */
export class PhoneNumbers {
  constructor(readonly defaultRegion?: CountryCode) {}

  /** `text` in E.164, or null when it is not a valid number. */
  toE164(text: string): string | null {
    const parsed = parsePhoneNumberFromString(text, this.defaultRegion);
    return parsed?.isValid() ? parsed.number : null;
  }

  /**
   * How two numbers are compared (ours and those the sales team typed into Pipedrive): E.164 when
   * valid, else the digits with the leading + if any.
   */
  key(text: string): string {
    const e164 = this.toE164(text);
    if (e164) return e164;
    const digits = text.replace(/\D/g, '');
    return text.trim().startsWith('+') ? `+${digits}` : digits;
  }

  /** Why a number was refused, for the caller. */
  invalidMessage(): string {
    const national = this.defaultRegion ? `, or as a national number of ${this.defaultRegion}` : '';
    return `is not a valid phone number: write it with + and its country code (+44 20 7946 0000)${national}`;
  }
}
