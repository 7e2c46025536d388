import type { Contact, Note } from '../contacts/contact';
import type { PhoneNumbers } from '../contacts/phone-numbers';
import type { Logger } from '../logger';
import { CrmError, type CrmGateway, type CrmPerson, type NewPerson } from './crm-gateway';
import type { MirrorClaim, MirrorRepository, MirrorWork } from './mirror.repository';
import type { PersonIndex } from './person-index';
import { needsLists, personUpdate } from './person-update';
import { retryDelayMs, type RetrySettings } from './retry-policy';
import { budgetDayStart, nextBudgetReset, type BudgetSettings } from './token-budget';

/**
 * What became of a run: synced (nothing left to retry), retry (failed, will run again), failed
 * (given up), paused (Pipedrive's rate limit: the whole mirror waits, the attempt does not count).
 */
export type MirrorOutcome = 'synced' | 'retry' | 'failed' | 'paused';

export interface MirrorRunSettings {
  /** How a contact's phone is compared with the phones the sales team typed into Pipedrive. */
  phones: PhoneNumbers;
  maxAttempts: number;
  retry: RetrySettings;
  budget: BudgetSettings;
}

/** A search: the most tokens one call of the mirror costs. */
const DEAREST_CALL_TOKENS = 20;

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** What a person shows of a contact: its phone in E.164 where it has one, so that Pipedrive matches it too. */
const personFields = (contact: Contact): NewPerson => ({ name: contact.name, email: contact.email, phone: contact.phoneE164 ?? contact.phone });

/** The linked person is no longer in Pipedrive: deleted, or merged into another person. */
class PersonGone extends Error {
  constructor(personId: number) {
    super(`Pipedrive person ${personId} is gone (deleted or merged)`);
  }
}

/** The contact left the mirror during the run: its person was deleted in Pipedrive (src/inbound). */
class LeftMirror extends Error {
  constructor(contactId: number) {
    super(`contact ${contactId}'s person was deleted in Pipedrive: it is no longer mirrored`);
  }
}

const isGone = (error: unknown) => error instanceof PersonGone || (error instanceof CrmError && error.notFound);

/** Which part of a run failed: the contact (its person), or one note. */
class RunFailure extends Error {
  constructor(
    readonly error: unknown,
    readonly note?: Note,
  ) {
    super(describe(error), { cause: error });
  }
}

/**
 * One run of a contact's mirror work: bring its person to the contact's current state, then add
 * its pending notes in order. The row is read when the run starts, so rapid changes coalesce into
 * one update, and a retry always sends the latest state.
 */
export class MirrorRuns {
  constructor(
    private readonly store: MirrorRepository,
    private readonly crm: CrmGateway,
    private readonly settings: MirrorRunSettings,
    private readonly logger: Logger,
    /** Matches new contacts without a search call; without it, every match searches. */
    private readonly index?: PersonIndex,
  ) {}

  async run(claim: MirrorClaim): Promise<MirrorOutcome> {
    const work = await this.store.work(claim);
    if (!work) return 'synced'; // deleted since: nothing left to mirror
    try {
      await this.mirror(work);
      await this.store.releaseDone(work.contactId);
      return 'synced';
    } catch (error) {
      if (!(error instanceof RunFailure)) throw error;
      if (error.error instanceof LeftMirror) {
        await this.store.releaseDone(work.contactId);
        return 'synced';
      }
      return this.settle(work, error);
    }
  }

  private async mirror(work: MirrorWork): Promise<void> {
    const { contact } = work;
    // Its person was deleted in Pipedrive since the claim: not created again.
    if (contact.crmDeleted) throw new RunFailure(new LeftMirror(contact.id));
    let personId = contact.crmId;
    // A note needs its person: one that has none is created even when only notes wait.
    if (contact.syncStatus === 'pending' || personId === null) {
      try {
        personId = await this.mirrorContact(work);
      } catch (error) {
        throw new RunFailure(error);
      }
    }
    for (const note of work.notes) {
      try {
        personId = await this.mirrorNote(work, note, personId);
      } catch (error) {
        throw new RunFailure(error, note);
      }
    }
  }

  /** Brings the person to the contact's state; returns its id (another one when it was gone). */
  private async mirrorContact(work: MirrorWork): Promise<number> {
    const { contact } = work;
    if (contact.crmId === null) return this.ensurePerson(work);
    let answer: CrmPerson | null;
    try {
      answer = await this.bringInLine(contact.crmId, contact, work.pushed, null);
    } catch (error) {
      if (!isGone(error)) throw error;
      return this.relink(work, contact.crmId, describe(error));
    }
    await this.store.contactMirrored(work, contact.crmId, personFields(contact), 'updated', answer?.updatedAt ?? null);
    return contact.crmId;
  }

  /** Adds the note to the person; returns the person's id (another one when it was gone). */
  private async mirrorNote(work: MirrorWork, note: Note, personId: number): Promise<number> {
    let target = personId;
    let crmNoteId: number;
    try {
      crmNoteId = (await this.findLostNote(personId, note.content, work)) ?? (await this.crm.addNote(personId, note.content)).id;
    } catch (error) {
      // Pipedrive refuses a note for a person that is gone; anything else it refuses stays refused.
      const refused = error instanceof CrmError && (error.kind === 'rejected' || error.notFound);
      if (!refused || (await this.crm.getPerson(personId)) !== null) throw error;
      target = await this.relink(work, personId, describe(error));
      crmNoteId = (await this.crm.addNote(target, note.content)).id;
    }
    await this.store.noteMirrored(note, crmNoteId);
    return target;
  }

  /**
   * The person the contact was linked to is gone (deleted, or merged away: Pipedrive keeps no
   * forwarding address). The contact is unlinked, with an audit event, and linked again as a new
   * contact would be: to the person that has its email or phone (the survivor of a merge), else to
   * a new person. Never a failure for this reason.
   */
  private async relink(work: MirrorWork, goneId: number, reason: string): Promise<number> {
    const mirrored = await this.store.unlinkPerson(work.contactId, goneId, reason);
    await this.index?.markGone(goneId);
    if (!mirrored) throw new LeftMirror(work.contactId);
    this.logger.warn({ contactId: work.contactId, crmId: goneId, reason }, 'linked Pipedrive person is gone; linking the contact again');
    // The survivor of a merge, when a webhook named it; else the index is refreshed first, so that
    // the person with the contact's email or phone (a merge's survivor too) is found.
    const survivor = (await this.index?.survivorOf(goneId)) ?? null;
    const unlinked = { ...work, contact: { ...work.contact, crmId: null }, pushed: null };
    if (survivor !== null && !(await this.store.isPersonLinked(survivor))) return this.ensurePerson(unlinked, false, survivor);
    return this.ensurePerson(unlinked, true);
  }

  /**
   * Updates the person so that it shows the contact (see person-update.ts), reading it first when
   * an email or phone list must change (the update replaces the whole list), unless `known` was just
   * read (`current`). Returns the person as Pipedrive last answered it here; null when not asked.
   */
  private async bringInLine(personId: number, contact: Contact, pushed: NewPerson | null, known: CrmPerson | null, current = false): Promise<CrmPerson | null> {
    const wanted = personFields(contact);
    let person: CrmPerson | null = current ? known : null;
    if (!current && needsLists(wanted, pushed, known, this.settings.phones)) {
      person = await this.crm.getPerson(personId);
      if (person === null) throw new PersonGone(personId);
      await this.index?.record(person);
    }
    const update = personUpdate(wanted, pushed, person ?? known, this.settings.phones);
    if (Object.keys(update).length === 0) return person;
    const updated = await this.crm.updatePerson(personId, update);
    await this.index?.record(updated);
    return updated;
  }

  /**
   * Links the contact to its Pipedrive person, creating the person only when none can
   * be found: a retry after a request that reached Pipedrive but whose answer was lost
   * finds the person it created instead of creating a second one.
   */
  private async ensurePerson(work: MirrorWork, refreshIndex = false, survivorId: number | null = null): Promise<number> {
    const { contact } = work;
    // A known survivor is read below, as any match from the index is.
    let existing =
      survivorId !== null ? { id: survivorId, name: '', emails: [], phones: [] } : await this.findUnlinkedPerson(contact, work.attempt, refreshIndex);
    if (existing && this.index) {
      // The index learns of deletions late (lists leave deleted persons out): a match is read before
      // it is linked (1 token), which also gives its labels.
      const current = await this.crm.getPerson(existing.id);
      if (current) await this.index.record(current);
      else await this.index.markGone(existing.id);
      existing = current;
    }
    let linkedAnswer: CrmPerson | null = null;
    if (existing) {
      try {
        // The local row is the truth: the person's name follows it, and it gets the contact's email
        // and phone beside its own.
        linkedAnswer = await this.bringInLine(existing.id, contact, null, existing, this.index !== undefined);
        this.logger.info({ contactId: contact.id, crmId: existing.id }, 'linked contact to an existing Pipedrive person');
      } catch (error) {
        if (!isGone(error)) throw error;
        // The index knew a person that is gone since: never again, and a new person instead.
        await this.index?.markGone(existing.id);
        existing = null;
      }
    }
    let personId: number;
    let updatedAt: Date | null = null;
    if (existing) {
      personId = existing.id;
      updatedAt = linkedAnswer?.updatedAt ?? null;
    } else {
      const created = await this.crm.createPerson(personFields(contact));
      await this.index?.record(created);
      personId = created.id;
      updatedAt = created.updatedAt ?? null;
    }
    await this.store.linkPerson(contact.id, personId);
    await this.store.contactMirrored(work, personId, personFields(contact), existing ? 'linked' : 'created', updatedAt);
    return personId;
  }

  /**
   * Email identifies a person; failing that, phone: through the person index when it can answer,
   * else a search. A name alone is searched only on a retry, where an earlier attempt may have
   * created the person: on a first attempt it could only find a namesake.
   */
  private async findUnlinkedPerson(contact: Contact, attempt: number, refreshIndex: boolean): Promise<CrmPerson | null> {
    // The index answers for email and phone without a search call; on a retry it is refreshed first.
    if (this.index && (contact.email || contact.phone) && (await this.index.ready(refreshIndex || attempt > 1))) return this.index.find(contact);
    const { email, phone } = personFields(contact);
    const search = email
      ? ({ field: 'email', term: email } as const)
      : phone
        ? ({ field: 'phone', term: phone } as const)
        : attempt > 1
          ? ({ field: 'name', term: contact.name } as const)
          : undefined;
    if (!search) return null;
    const person = await this.crm.findPerson(search.field, search.term);
    if (!person || (await this.store.isPersonLinked(person.id))) return null;
    return person;
  }

  /**
   * On a retry, an earlier attempt may have added the note and lost the answer: look for
   * a note of the person with this content that no local note claims yet.
   */
  private async findLostNote(personId: number, content: string, work: MirrorWork): Promise<number | null> {
    if (work.attempt === 1) return null;
    for (const id of await this.crm.findNotes(personId, content)) {
      if (!(await this.store.isNoteLinked(id))) return id;
    }
    return null;
  }

  /**
   * After a failed run: Pipedrive's rate limit pauses the whole mirror for as long as it says,
   * without spending the attempt; a failure retrying cannot mend, or the last attempt, fails the
   * part that failed (and the rest of the contact's work goes on); else the run is retried later.
   */
  private async settle(work: MirrorWork, failure: RunFailure): Promise<MirrorOutcome> {
    const error = failure.error;
    const message = describe(error);
    const context = { contactId: work.contactId, noteId: failure.note?.id, attempt: work.attempt, error: message };
    const pause = await this.pauseFor(error, message);
    if (pause) {
      await this.store.pause(pause.until, pause.reason);
      await this.recordFailure(work, failure, message, false);
      // Due at once: the pause holds it back, and it goes as soon as the pause ends (or is ended).
      await this.store.releaseForRetry(work.contactId, 0, true);
      this.logger.warn({ ...context, pausedUntil: pause.until }, `the mirror is paused: ${pause.reason}`);
      return 'paused';
    }
    const delay = work.attempt >= this.settings.maxAttempts ? null : retryDelayMs(error, work.attempt, this.settings.retry);
    await this.recordFailure(work, failure, message, delay === null);
    if (delay === null) {
      await this.store.releaseDone(work.contactId);
      this.logger.error(context, 'mirror gave up; POST /contact/:id/sync queues it again');
      return 'failed';
    }
    await this.store.releaseForRetry(work.contactId, delay, false);
    this.logger.warn({ ...context, retryInMs: delay }, 'mirror failed; will retry');
    return 'retry';
  }

  /** How long a failure pauses the whole mirror: until the daily budget comes back, or as long as a rate limit says. */
  private async pauseFor(error: unknown, message: string): Promise<{ until: Date; reason: string } | null> {
    if (!(error instanceof CrmError)) return null;
    if (error.dailyBudgetSpent || (error.kind === 'rate_limited' && (await this.dayCountedSpent()))) {
      const until = nextBudgetReset(new Date(), this.settings.budget.resetHourUtc);
      return { until, reason: `Pipedrive's daily token budget is spent; it comes back at ${until.toISOString()}` };
    }
    if (error.kind === 'rate_limited' && error.retryAfterMs !== undefined) {
      return { until: new Date(Date.now() + error.retryAfterMs), reason: `Pipedrive rate limit (${message})` };
    }
    return null;
  }

  /**
   * A 429 whose answer has no daily-token headers (they are undocumented, and missing from some
   * answers) says nothing of which limit it is: it is the daily one when our own count of the day
   * (pipedrive_budget: the last reported figure, less every call since) leaves less than the dearest call.
   */
  private async dayCountedSpent(): Promise<boolean> {
    const use = await this.store.tokenUse(budgetDayStart(new Date(), this.settings.budget.resetHourUtc));
    if (use.left !== null) return use.left < DEAREST_CALL_TOKENS;
    return use.limit !== null && use.limit - use.spent < DEAREST_CALL_TOKENS;
  }

  private recordFailure(work: MirrorWork, failure: RunFailure, message: string, final: boolean): Promise<void> {
    return failure.note ? this.store.noteFailed(failure.note, message, final) : this.store.contactFailed(work, message, final);
  }
}
