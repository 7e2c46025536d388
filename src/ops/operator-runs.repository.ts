import type { TransactionScope } from '../db/transaction-scope';

/** Where a resumable operator command got to. */
export interface OperatorRun {
  /** Null at the start. */
  position: string | null;
  counts: Record<string, number>;
  startedAt: Date;
  /** Whether this run goes on from an interrupted one. */
  resumed: boolean;
}

/** operator_runs: one row per command and subject; a finished run is started afresh next time. */
export class OperatorRunsRepository {
  constructor(private readonly db: TransactionScope) {}

  /** The unfinished run of `command` over `subject` to go on with, else a new one (`restart`: always new). */
  async begin(command: string, subject: string, restart: boolean): Promise<OperatorRun> {
    const [row] = await this.db.client.$queryRaw<{ position: string | null; counts: Record<string, number>; started_at: Date; resumed: boolean }[]>`
      INSERT INTO operator_runs AS r (command, subject) VALUES (${command}, ${subject})
      ON CONFLICT (command, subject) DO UPDATE
         SET position = CASE WHEN r.finished_at IS NULL AND NOT ${restart} THEN r.position END,
             counts = CASE WHEN r.finished_at IS NULL AND NOT ${restart} THEN r.counts ELSE '{}'::jsonb END,
             started_at = CASE WHEN r.finished_at IS NULL AND NOT ${restart} THEN r.started_at ELSE now() END,
             finished_at = NULL, updated_at = now()
      RETURNING position, counts, started_at, (xmax <> 0 AND position IS NOT NULL) AS resumed`;
    if (!row) throw new Error('operator_runs returned no row');
    return { position: row.position, counts: row.counts, startedAt: row.started_at, resumed: row.resumed };
  }

  async save(command: string, subject: string, position: string | null, counts: Record<string, number>): Promise<void> {
    await this.db.client.$executeRaw`
      UPDATE operator_runs SET position = ${position}, counts = ${JSON.stringify(counts)}::jsonb, updated_at = now()
       WHERE command = ${command} AND subject = ${subject}`;
  }

  async finish(command: string, subject: string, counts: Record<string, number>): Promise<void> {
    await this.db.client.$executeRaw`
      UPDATE operator_runs SET counts = ${JSON.stringify(counts)}::jsonb, finished_at = now(), updated_at = now()
       WHERE command = ${command} AND subject = ${subject}`;
  }
}
