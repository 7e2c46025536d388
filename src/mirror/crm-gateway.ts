/**
 * What the mirror needs from a CRM. The Pipedrive adapter (src/crm) implements it;
 * the sync worker depends on this interface only.
 */

/** One of a person's emails or phones, as Pipedrive keeps it. */
export interface ContactItem {
  value: string;
  primary: boolean;
  /** work, home, mobile, other: what the sales team chose. */
  label: string;
}

export interface CrmPerson {
  id: number;
  name: string;
  /** In Pipedrive's order. A search result's items carry no labels (''), the first primary. */
  emails: ContactItem[];
  phones: ContactItem[];
  /** When the person last changed in the CRM; absent from search results. */
  updatedAt?: Date;
  /** When the person was added to the CRM; absent from search results. */
  addedAt?: Date;
}

/** One page of persons, oldest id first; `nextCursor` null on the last page. */
export interface PersonPage {
  persons: CrmPerson[];
  nextCursor: string | null;
}

export interface NewPerson {
  name: string;
  email: string | null;
  phone: string | null;
}

/** Only the fields present are sent; a list replaces the person's whole list (Pipedrive's PATCH). */
export interface PersonUpdate {
  name?: string;
  emails?: ContactItem[];
  phones?: ContactItem[];
}

export type PersonSearchField = 'email' | 'phone' | 'name';

export interface CrmGateway {
  createPerson(person: NewPerson): Promise<CrmPerson>;
  updatePerson(id: number, update: PersonUpdate): Promise<CrmPerson>;
  /** The first person whose `field` equals `term` exactly, or null. */
  findPerson(field: PersonSearchField, term: string): Promise<CrmPerson | null>;
  /**
   * Persons (deleted ones left out), a page at a time (at most 500), those updated at or after
   * `updatedSince` when given: for keeping a local index of them.
   */
  listPersons(page: { updatedSince?: Date; cursor?: string; limit: number }): Promise<PersonPage>;
  /** Null when the person does not exist (any more). */
  getPerson(id: number): Promise<CrmPerson | null>;
  addNote(personId: number, content: string): Promise<{ id: number }>;
  /** The ids of the person's most recent notes whose content is exactly `content`, newest first. */
  findNotes(personId: number, content: string): Promise<number[]>;
}

/**
 * unauthorized: the token is missing, wrong or lacks rights (401, 403);
 * rate_limited: 429, retry after `retryAfterMs`;
 * unavailable: network error, timeout, 5xx: worth retrying;
 * rejected: the request itself is wrong (400, 404, 410, 422): retrying cannot help.
 */
export type CrmErrorKind = 'unauthorized' | 'rate_limited' | 'unavailable' | 'rejected';

export class CrmError extends Error {
  override readonly name = 'CrmError';

  constructor(
    readonly kind: CrmErrorKind,
    message: string,
    readonly options: { status?: number; retryAfterMs?: number; dailyBudgetSpent?: boolean; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
  }

  get retryable(): boolean {
    return this.kind === 'rate_limited' || this.kind === 'unavailable';
  }

  get status(): number | undefined {
    return this.options.status;
  }

  get retryAfterMs(): number | undefined {
    return this.options.retryAfterMs;
  }

  /** A 429 because the company's daily token budget is spent: nothing goes until it comes back. */
  get dailyBudgetSpent(): boolean {
    return this.options.dailyBudgetSpent === true;
  }

  /** The person (or note) asked for is not there: deleted, or merged into another. */
  get notFound(): boolean {
    return this.status === 404 || this.status === 410;
  }
}
