import type { ChangeSource } from '../contacts/contact';
import type { PhoneNumbers } from '../contacts/phone-numbers';
import type { InboundSettings } from '../config/config';
import type { TransactionScope } from '../db/transaction-scope';
import type { Logger } from '../logger';
import type { CrmPerson } from '../mirror/crm-gateway';
import type { PersonIndexRepository } from '../mirror/person-index.repository';
import type { DeliveriesRepository } from './deliveries.repository';
import { emailKey } from '../mirror/person-update';
import { decideFields, primaryValue } from './field-merge';
import type { InboundRepository, TakenFields } from './inbound.repository';
import { PipedriveWebhookDelivery, toPersonEvent, type PersonEvent } from './person-event';

/**
 * What taking in one person state or event did: applied (fields taken into the contact), kept-local
 * (a newer local change won), unchanged (an echo of our own write, or both sides agree), stale (an
 * older state than one already taken in), indexed (only the index: no linked contact, or
 * index-only), unlinked (deleted), relinked (merged), linked / imported (a new person).
 */
export type InboundOutcome = 'applied' | 'kept-local' | 'unchanged' | 'stale' | 'indexed' | 'unlinked' | 'relinked' | 'linked' | 'imported';

/** How changes from Pipedrive are arriving, for GET /sync/status. */
export interface InboundStatus {
  mode: InboundSettings['mode'];
  lastDeliveryAt: Date | null;
  deliveriesWaiting: number;
  deliveriesFailed: number;
  /** From the event in Pipedrive to its processing here, for the last delivery processed. */
  lastDeliveryLagMs: number | null;
  /** When the last complete refresh of the person index began (it also takes changes in). */
  lastRefreshAt: Date | null;
}

/** Longest name and phone the contacts table holds. */
const MAX_NAME = 255;
const MAX_PHONE = 20;
/** Deliveries claimed per statement, and how long a claim lasts. */
const BATCH = 20;
/**
 * Deliveries of a batch applied at once. Their order does not matter: the contact's row lock and
 * `crm_updated_at` keep an older state from overwriting a newer one, whichever finishes first.
 */
const PARALLEL = 4;
const LEASE_MS = 60_000;
/** A delivery whose processing failed (the database, say) is tried again after this, at most MAX_ATTEMPTS times. */
const RETRY_MS = 5_000;
const MAX_ATTEMPTS = 10;

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Changes made in Pipedrive, taken into the local database (README, "Two-way sync"): from webhook
 * deliveries, recorded by the receiver and processed here in the background, and from the person
 * index's periodic refresh, which goes through the same logic so that a lost webhook delays a
 * change but never loses it.
 */
export class InboundSync {
  private pass: Promise<void> | null = null;
  private again = false;
  private closed = false;
  private readonly sweep: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: TransactionScope,
    private readonly contacts: InboundRepository,
    private readonly deliveries: DeliveriesRepository,
    private readonly index: PersonIndexRepository,
    private readonly phones: PhoneNumbers,
    private readonly settings: Pick<InboundSettings, 'mode' | 'importNew'>,
    private readonly logger: Logger,
  ) {
    // Deliveries left by a failure or a stopped process are taken up again (none arrive when off).
    this.sweep = settings.mode === 'off' ? undefined : setInterval(() => this.processDeliveries(), RETRY_MS);
    this.sweep?.unref();
  }

  /** Records a delivery; false when it was recorded before (a duplicate). Processing follows in the background. */
  async receive(event: PersonEvent, payload: unknown): Promise<boolean> {
    const fresh = await this.deliveries.record(event, payload);
    this.processDeliveries();
    return fresh;
  }

  /** Processes waiting deliveries in the background, one pass at a time; a call during a pass makes it look once more. */
  processDeliveries(): void {
    if (this.closed) return;
    if (this.pass) {
      this.again = true;
      return;
    }
    this.pass = this.processWaiting()
      .catch((error: unknown) => this.logger.warn({ err: error }, 'could not process Pipedrive webhook deliveries; trying again shortly'))
      .finally(() => {
        this.pass = null;
      });
  }

  /** Resolves once no pass is running (for shutdown, and tests). */
  async settled(): Promise<void> {
    while (this.pass) await this.pass;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweep);
    await this.settled();
  }

  async status(): Promise<InboundStatus> {
    const [deliveries, index] = await Promise.all([this.deliveries.overview(), this.index.state()]);
    return {
      mode: this.settings.mode,
      lastDeliveryAt: deliveries.lastReceivedAt,
      deliveriesWaiting: deliveries.waiting,
      deliveriesFailed: deliveries.failed,
      lastDeliveryLagMs: deliveries.lastLagMs,
      lastRefreshAt: index.refreshedAt,
    };
  }

  /** What the import command would do, from the person index. */
  importPreview(): ReturnType<InboundRepository['importPreview']> {
    return this.contacts.importPreview();
  }

  /** Takes in what one event says. */
  async apply(event: PersonEvent): Promise<InboundOutcome> {
    if (event.action === 'delete') return this.deleted(event.personId, event.at, event.mergedInto);
    if (!event.person) return 'indexed';
    await this.index.upsert([event.person]);
    if (await this.index.isGone(event.personId)) return 'stale';
    return this.takeIn(event.person, { importable: event.action === 'create', source: 'pipedrive' });
  }

  /**
   * Persons the index refresh read (already written to the index): their changes are taken in as
   * a delivery's would be. Persons added since `addedSince` are new (imported with PIPEDRIVE_IMPORT_NEW).
   */
  async refreshed(persons: CrmPerson[], addedSince: Date | undefined): Promise<void> {
    if (this.settings.mode !== 'apply') return;
    for (const person of persons) {
      const importable = addedSince !== undefined && person.addedAt !== undefined && person.addedAt >= addedSince;
      await this.takeIn(person, { importable, source: 'pipedrive' });
    }
  }

  /**
   * One person state: its linked contact takes the fields changed in Pipedrive (field-merge.ts);
   * a person no contact mirrors is linked or imported when `importable` and PIPEDRIVE_IMPORT_NEW
   * say so (or always, for `force`: the import command).
   */
  async takeIn(person: CrmPerson, options: { importable: boolean; source: ChangeSource; force?: boolean }): Promise<InboundOutcome> {
    if (this.settings.mode !== 'apply' && !options.force) return 'indexed';
    return this.db.transaction(async () => {
      const contact = await this.contacts.lockLinked(person.id);
      if (!contact) {
        const wanted = options.force || (options.importable && this.settings.importNew);
        return wanted ? this.importPerson(person, options.source) : 'indexed';
      }
      if (contact.crmUpdatedAt && person.updatedAt && person.updatedAt < contact.crmUpdatedAt) return 'stale';
      // Linked, and not mirrored since: nothing is known of what Pipedrive shows of the contact, so
      // nothing there can be told a change; the contact's own values go to the person first.
      if (contact.pushed === null) return 'unchanged';
      const sent = contact.pushed;
      const decision = await decideFields({ ...contact, pushed: sent, changedAt: (field) => this.contacts.fieldChangedAt(contact.id, field) }, person, this.phones);
      const fields: TakenFields = {};
      const skipped: Record<string, string> = {};
      const { take, pushed } = decision;
      if (take.name !== undefined && take.name !== null) {
        fields.name = take.name.slice(0, MAX_NAME);
        pushed.name = fields.name;
      }
      if (take.email !== undefined) {
        const email = take.email === null ? null : emailKey(take.email);
        const owner = email === null ? null : await this.contacts.emailTaken(email, contact.id);
        if (owner !== null || (email !== null && email.length > MAX_NAME)) {
          // Kept as it is on both sides: Pipedrive's value is not sent over, nor ours back.
          skipped.email = owner !== null ? `contact ${owner} has ${email}` : 'too long';
          pushed.email = sent.email;
        } else {
          fields.email = email;
          pushed.email = email;
        }
      }
      if (take.phone !== undefined) {
        if (take.phone !== null && take.phone.length > MAX_PHONE) {
          skipped.phone = 'too long';
          pushed.phone = sent.phone;
        } else {
          fields.phone = take.phone;
          fields.phoneE164 = take.phone === null ? null : this.phones.toE164(take.phone);
          pushed.phone = fields.phoneE164 ?? fields.phone;
        }
      }
      const details = {
        crm_id: person.id,
        ...(decision.keptLocal.length > 0 && { kept_local: decision.keptLocal }),
        ...(Object.keys(skipped).length > 0 && { skipped }),
      };
      const newer = person.updatedAt !== undefined && (contact.crmUpdatedAt === null || person.updatedAt > contact.crmUpdatedAt);
      const samePushed = sent.name === pushed.name && sent.email === pushed.email && sent.phone === pushed.phone;
      // An echo, or a state seen before: nothing to write.
      if (Object.keys(fields).length > 0 || !samePushed || newer) {
        await this.contacts.takeFromPipedrive(contact.id, fields, pushed, person.updatedAt ?? null, details);
      }
      if (Object.keys(fields).length > 0) {
        this.logger.info({ contactId: contact.id, crmId: person.id, fields: Object.keys(fields), keptLocal: decision.keptLocal }, 'took in a change made in Pipedrive');
        return 'applied';
      }
      return decision.keptLocal.length > 0 ? 'kept-local' : 'unchanged';
    });
  }

  /**
   * The person was deleted in Pipedrive, or merged into `mergedInto`. The index forgets it; its
   * contact is relinked to the survivor, unless the survivor already mirrors another contact (one
   * person mirrors one contact; the two contacts are not merged here): then, as for a delete, the
   * contact is unlinked and leaves the mirror, kept locally with the reason.
   */
  async deleted(personId: number, at: Date | null, mergedInto: number | null): Promise<InboundOutcome> {
    await this.index.markGone(personId, at, mergedInto);
    if (this.settings.mode !== 'apply') return 'indexed';
    return this.db.transaction(async () => {
      if (mergedInto === null) {
        return (await this.contacts.unlinkDeleted(personId, `Pipedrive person ${personId} was deleted in Pipedrive`, 'pipedrive')) === null ? 'indexed' : 'unlinked';
      }
      const survivorContact = await this.contacts.linkedTo(mergedInto);
      if (survivorContact === null) {
        const moved = await this.contacts.relink(personId, mergedInto, `Pipedrive person ${personId} was merged into ${mergedInto}`, 'pipedrive');
        if (moved === null) return 'indexed';
        // The survivor's own change may have been delivered first, when no contact mirrored it yet.
        const survivor = this.personIn(await this.deliveries.latestState(mergedInto));
        if (survivor) await this.takeIn(survivor, { importable: false, source: 'pipedrive' });
        return 'relinked';
      }
      const reason = `Pipedrive person ${personId} was merged into ${mergedInto}, which mirrors contact ${survivorContact}: merge the two contacts, or queue this one again to give it a person of its own`;
      return (await this.contacts.unlinkDeleted(personId, reason, 'pipedrive')) === null ? 'indexed' : 'unlinked';
    });
  }

  /** The event of a recorded delivery; a string saying why when it cannot be read. */
  private eventIn(payload: unknown): PersonEvent | string {
    const parsed = PipedriveWebhookDelivery.safeParse(payload);
    return parsed.success ? toPersonEvent(parsed.data) : 'does not match the webhook v2 schema';
  }

  /** The person a recorded delivery carries; null when it carries none. */
  private personIn(payload: unknown): CrmPerson | null {
    const event = payload === undefined ? 'none' : this.eventIn(payload);
    return typeof event === 'string' ? null : event.person;
  }

  /** A person no contact mirrors: linked to the contact with its email or phone, else a new contact. */
  private async importPerson(person: CrmPerson, source: ChangeSource): Promise<InboundOutcome> {
    if (await this.index.isGone(person.id)) return 'stale';
    const emails = person.emails.flatMap((item) => [item.value, emailKey(item.value)]);
    const phonesE164 = person.phones.flatMap((item) => this.phones.toE164(item.value) ?? []);
    if ((await this.contacts.linkMatching(person.id, emails, phonesE164, source)) !== null) return 'linked';
    // Perhaps the mirror's own creation, not linked yet: left to the next refresh, which sees it linked (or new still).
    if (await this.contacts.creationInFlight(person.name)) return 'indexed';
    const primaryEmail = primaryValue(person.emails);
    const email = primaryEmail === null ? null : emailKey(primaryEmail);
    const rawPhone = primaryValue(person.phones);
    const phoneE164 = rawPhone === null ? null : this.phones.toE164(rawPhone);
    const created = await this.contacts.createFromPerson(
      {
        crmId: person.id,
        name: person.name.slice(0, MAX_NAME),
        email: email !== null && email.length <= MAX_NAME ? email : null,
        phone: rawPhone !== null && rawPhone.length <= MAX_PHONE ? rawPhone : phoneE164,
        phoneE164,
        crmUpdatedAt: person.updatedAt ?? null,
      },
      source,
    );
    if (created === null) return 'indexed';
    this.logger.info({ contactId: created, crmId: person.id }, 'a Pipedrive person became a contact');
    return 'imported';
  }

  private async processWaiting(): Promise<void> {
    do {
      this.again = false;
      for (;;) {
        const batch = await this.deliveries.claim(BATCH, LEASE_MS, MAX_ATTEMPTS);
        if (batch.length === 0) break;
        const queue = [...batch];
        const lane = async () => {
          for (let delivery = queue.shift(); delivery; delivery = queue.shift()) await this.processOne(delivery.id, delivery.payload);
        };
        await Promise.all(Array.from({ length: PARALLEL }, lane));
      }
    } while (this.again && !this.closed);
  }

  private async processOne(id: string, payload: unknown): Promise<void> {
    const event = this.eventIn(payload);
    if (typeof event === 'string') {
      await this.deliveries.processed(id, `ignored: ${event}`);
      return;
    }
    try {
      const outcome = await this.apply(event);
      await this.deliveries.processed(id, outcome);
    } catch (error) {
      this.logger.warn({ err: error, deliveryId: id, crmId: event.personId }, 'could not take in a Pipedrive webhook delivery; trying again shortly');
      await this.deliveries.failed(id, describe(error), RETRY_MS);
    }
  }
}
