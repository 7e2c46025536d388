import type { ContactMirror, CrmState } from '../contacts/mirror-port';
import type { CrmHealth } from './crm-health';
import type { MirrorRepository } from './mirror.repository';

/** The contact capability's view of the Pipedrive mirror. */
export class QueuedMirror implements ContactMirror {
  constructor(
    private readonly store: MirrorRepository,
    private readonly health: CrmHealth,
  ) {}

  /** A caller asked for it: live priority. */
  requeueContact(contactId: number): Promise<number> {
    return this.store.requeue(contactId, 'live');
  }

  crmState(): Promise<CrmState> {
    return this.health.read();
  }
}
