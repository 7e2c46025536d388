import type { Contact } from '../contacts/contact';
import type { Logger } from '../logger';
import type { CrmGateway, CrmPerson } from './crm-gateway';
import type { PersonIndexRepository } from './person-index.repository';

export interface PersonIndexSettings {
  /** A refresh runs before matching when the last one began longer ago than this (PIPEDRIVE_INDEX_MAX_AGE_MS). */
  maxAgeMs: number;
  /** How long one worker may hold the index's upkeep (a backfill can take minutes on a large account). */
  upkeepLeaseMs: number;
}

/** Pipedrive's largest page. */
const PAGE_SIZE = 500;
/**
 * A refresh asks for persons updated since a little before the last one began: clocks differ, and
 * update times are whole seconds. What it fetches twice is written once (newer wins).
 */
const OVERLAP_MS = 60_000;

/**
 * The local index of Pipedrive persons: a new contact is matched here (by email, else phone), not by
 * a search call, which costs 20 tokens and has its own limit of 10 per 2 s. Filled by a backfill over
 * GET /api/v2/persons (500 a page, 10 tokens each) the first time, kept fresh by `updated_since`
 * refreshes and by the answers to the mirror's own writes.
 */
export class PersonIndex {
  constructor(
    private readonly store: PersonIndexRepository,
    private readonly crm: CrmGateway,
    private readonly settings: PersonIndexSettings,
    private readonly logger: Logger,
    /** Told of every page a backfill or refresh reads, after it is indexed, with the time persons count as new from. */
    private readonly onPage?: (persons: CrmPerson[], addedSince: Date | undefined) => Promise<void>,
  ) {}

  /**
   * Whether the index can answer now, bringing it up to date first when it is older than allowed,
   * or when `force` (a retry that may follow a creation whose answer was lost: the refresh finds the
   * person it created). False while it cannot: no backfill yet and another worker is on it, or a
   * forced refresh that another worker holds; the caller then searches.
   */
  async ready(force: boolean): Promise<boolean> {
    const state = await this.store.state();
    const fresh = state.refreshedAt !== null && Date.now() - state.refreshedAt.getTime() < this.settings.maxAgeMs;
    if (state.backfilledAt !== null && fresh && !force) return true;
    if (!(await this.store.takeUpkeep(this.settings.upkeepLeaseMs))) return !force && state.backfilledAt !== null;
    const startedAt = new Date();
    const backfill = state.backfilledAt === null;
    try {
      const updatedSince = backfill || state.refreshedAt === null ? undefined : new Date(state.refreshedAt.getTime() - OVERLAP_MS);
      let cursor: string | undefined;
      let count = 0;
      do {
        const page = await this.crm.listPersons({ updatedSince, cursor, limit: PAGE_SIZE });
        await this.store.upsert(page.persons);
        await this.onPage?.(page.persons, updatedSince);
        count += page.persons.length;
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      await this.store.upkeepDone(startedAt, backfill);
      this.logger.info({ persons: count, backfill }, backfill ? 'Pipedrive person index filled' : 'Pipedrive person index refreshed');
      return true;
    } catch (error) {
      await this.store.releaseUpkeep().catch(() => undefined);
      throw error;
    }
  }

  /** The unlinked person with the contact's email, else its phone (E.164 where it has one). */
  find(contact: Contact): Promise<CrmPerson | null> {
    return this.store.findUnlinked(contact.email, contact.phoneE164 ?? contact.phone);
  }

  /** A person as one of the mirror's own calls answered it. */
  record(person: CrmPerson): Promise<void> {
    return this.store.upsert([person]);
  }

  /** Persons read by another reader of Pipedrive's list (the import command). */
  recordAll(persons: CrmPerson[]): Promise<void> {
    return this.store.upsert(persons);
  }

  markGone(id: number): Promise<void> {
    return this.store.markGone(id);
  }

  /** The survivor a merged-away person lives on in, as a webhook told (null when none is known). */
  survivorOf(id: number): Promise<number | null> {
    return this.store.survivorOf(id);
  }
}
