import type { TransactionScope } from '../db/transaction-scope';
import type { CrmPerson } from './crm-gateway';
import type { PhoneNumbers } from '../contacts/phone-numbers';
import { emailKey } from './person-update';

export interface IndexState {
  backfilledAt: Date | null;
  refreshedAt: Date | null;
}

/** The local index of Pipedrive persons (pipedrive_persons) and how far it is (pipedrive_index_state). */
export class PersonIndexRepository {
  constructor(
    private readonly db: TransactionScope,
    /** Phones are indexed as numbers (E.164 where they read as valid), as contacts' phones are matched. */
    private readonly phones: PhoneNumbers,
  ) {}

  /** Writes persons as Pipedrive answered them; an older state never replaces a newer one. */
  async upsert(persons: CrmPerson[]): Promise<void> {
    if (persons.length === 0) return;
    const rows = persons.map((person) => ({
      id: person.id,
      name: person.name,
      emails: person.emails.map((item) => emailKey(item.value)),
      phones: person.phones.map((item) => this.phones.key(item.value)),
      updated_at: (person.updatedAt ?? new Date()).toISOString(),
    }));
    await this.db.client.$executeRaw`
      INSERT INTO pipedrive_persons AS p (id, name, emails, phones, updated_at, gone, indexed_at)
      SELECT id, name, emails, phones, updated_at, false, now()
        FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS r(id int, name text, emails text[], phones text[], updated_at timestamptz)
      ON CONFLICT (id) DO UPDATE
         SET name = EXCLUDED.name, emails = EXCLUDED.emails, phones = EXCLUDED.phones, updated_at = EXCLUDED.updated_at,
             gone = false, indexed_at = now()
       WHERE p.updated_at <= EXCLUDED.updated_at`;
  }

  /**
   * The person is deleted or merged away (into `mergedInto`, when known): never matched again. Its
   * update time moves to `at`, so that an older state delivered late does not bring it back.
   */
  async markGone(id: number, at: Date | null = null, mergedInto: number | null = null): Promise<void> {
    await this.db.client.$executeRaw`
      UPDATE pipedrive_persons
         SET gone = true, indexed_at = now(), updated_at = GREATEST(updated_at, ${at}::timestamptz),
             merged_into = COALESCE(${mergedInto}::int, merged_into)
       WHERE id = ${id}`;
  }

  /** Whether the index knows the person as deleted or merged away. */
  async isGone(id: number): Promise<boolean> {
    const rows = await this.db.client.$queryRaw<unknown[]>`SELECT 1 FROM pipedrive_persons WHERE id = ${id} AND gone`;
    return rows.length > 0;
  }

  /**
   * The person a merged-away one lives on in: its survivor, or the survivor's own survivor; null
   * when the index knows of no merge, or the last survivor is gone too.
   */
  async survivorOf(id: number): Promise<number | null> {
    const [row] = await this.db.client.$queryRaw<{ id: number; gone: boolean }[]>`
      WITH RECURSIVE chain AS (
        SELECT merged_into AS id, 1 AS depth FROM pipedrive_persons WHERE id = ${id} AND merged_into IS NOT NULL
        UNION ALL
        SELECT p.merged_into, chain.depth + 1 FROM chain JOIN pipedrive_persons p ON p.id = chain.id
         WHERE p.merged_into IS NOT NULL AND chain.depth < 20
      )
      SELECT chain.id, COALESCE(p.gone, false) AS gone FROM chain LEFT JOIN pipedrive_persons p ON p.id = chain.id
       ORDER BY depth DESC LIMIT 1`;
    return row && !row.gone ? row.id : null;
  }

  /**
   * The person with this email, else with this phone, that no contact mirrors yet; the oldest when
   * several match. Its emails and phones are returned as keys, the first primary, without labels.
   */
  async findUnlinked(email: string | null, phone: string | null): Promise<CrmPerson | null> {
    const [row] = await this.db.client.$queryRaw<{ id: number; name: string; emails: string[]; phones: string[] }[]>`
      SELECT p.id, p.name, p.emails, p.phones FROM pipedrive_persons p
       WHERE NOT p.gone
         AND ((${email}::text IS NOT NULL AND p.emails @> ARRAY[${email === null ? null : emailKey(email)}::text])
           OR (${email}::text IS NULL AND ${phone}::text IS NOT NULL AND p.phones @> ARRAY[${phone === null ? null : this.phones.key(phone)}::text]))
         AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.crm_id = p.id)
       ORDER BY p.id
       LIMIT 1`;
    if (!row) return null;
    const items = (values: string[]) => values.map((value, index) => ({ value, primary: index === 0, label: '' }));
    return { id: row.id, name: row.name, emails: items(row.emails), phones: items(row.phones) };
  }

  async state(): Promise<IndexState> {
    const [row] = await this.db.client.$queryRaw<{ backfilled_at: Date | null; refreshed_at: Date | null }[]>`
      SELECT backfilled_at, refreshed_at FROM pipedrive_index_state WHERE id = 1`;
    return { backfilledAt: row?.backfilled_at ?? null, refreshedAt: row?.refreshed_at ?? null };
  }

  /** Takes the index's upkeep for `leaseMs`; false when another worker holds it. */
  async takeUpkeep(leaseMs: number): Promise<boolean> {
    const rows = await this.db.client.$queryRaw<unknown[]>`
      INSERT INTO pipedrive_index_state AS s (id, busy_until) VALUES (1, now() + make_interval(secs => ${leaseMs}::float8 / 1000))
      ON CONFLICT (id) DO UPDATE SET busy_until = EXCLUDED.busy_until WHERE s.busy_until IS NULL OR s.busy_until < now()
      RETURNING 1`;
    return rows.length > 0;
  }

  /** The backfill (begun at `startedAt`) or a refresh is complete; the upkeep is released. */
  async upkeepDone(startedAt: Date, backfill: boolean): Promise<void> {
    await this.db.client.$executeRaw`
      UPDATE pipedrive_index_state
         SET refreshed_at = ${startedAt}, busy_until = NULL,
             backfilled_at = CASE WHEN ${backfill} THEN ${startedAt} ELSE backfilled_at END
       WHERE id = 1`;
  }

  async releaseUpkeep(): Promise<void> {
    await this.db.client.$executeRaw`UPDATE pipedrive_index_state SET busy_until = NULL WHERE id = 1`;
  }
}
