import type { CrmState } from '../contacts/mirror-port';
import type { Logger } from '../logger';
import type { CrmErrorKind } from './crm-gateway';
import type { MirrorRepository } from './mirror.repository';

type AnsweringState = Exclude<CrmState, 'disabled'>;

/** Rate limiting and rejected requests still mean Pipedrive answers with this token. */
const STATE_AFTER: Record<'ok' | CrmErrorKind, AnsweringState> = {
  ok: 'ok',
  rate_limited: 'ok',
  rejected: 'ok',
  unauthorized: 'unauthorized',
  unavailable: 'unreachable',
};

/**
 * How Pipedrive answered lately. Workers record every outcome; the row in crm_health
 * is written only when the state changes, so that API processes without a worker see
 * it too and health checks never call Pipedrive.
 */
export class CrmHealth {
  private written?: AnsweringState;
  private latest?: AnsweringState;
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: MirrorRepository,
    private readonly logger: Logger,
  ) {}

  record(outcome: 'ok' | CrmErrorKind): void {
    const state = STATE_AFTER[outcome];
    this.latest = state;
    if (state === this.written) return;
    this.written = state;
    this.writes = this.writes.then(() => this.save(state, outcome === 'ok' ? null : outcome));
  }

  /** Resolves once every recorded state is written (before the database pool closes). */
  flushed(): Promise<void> {
    return this.writes;
  }

  /** The last recorded state; this process's own when the database cannot be read. */
  async read(): Promise<AnsweringState> {
    try {
      return (await this.store.crmState()) ?? this.latest ?? 'ok';
    } catch {
      return this.latest ?? 'ok';
    }
  }

  private async save(state: AnsweringState, detail: string | null): Promise<void> {
    try {
      await this.store.saveCrmState(state, detail);
      if (state !== 'ok') this.logger.warn({ crm: state, detail }, 'Pipedrive is not answering normally');
    } catch (error) {
      // Not written: try again with the next outcome.
      this.written = undefined;
      this.logger.warn({ err: error }, 'could not record the CRM state');
    }
  }
}
