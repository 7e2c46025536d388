import type { Prisma } from '@prisma/client';
import type { ContactField } from '../contacts/contact';
import type { ContactMirror, CrmState } from '../contacts/mirror-port';
import type { CrmHealth } from './crm-health';
import { MIRROR_CONTACT, MIRROR_NOTE, mirrorJobSql } from './jobs';
import type { SyncRepository } from './sync.repository';

/** The contact capability's view of the Pipedrive mirror. */
export class SyncMirror implements ContactMirror {
  constructor(
    private readonly store: SyncRepository,
    private readonly health: CrmHealth,
    private readonly maxAttempts: number,
  ) {}

  newContactJobSql(contactId: Prisma.Sql): Prisma.Sql {
    return mirrorJobSql(MIRROR_CONTACT, { contactId }, this.maxAttempts);
  }

  newNoteJobSql(noteId: Prisma.Sql, contactId: Prisma.Sql): Prisma.Sql {
    return mirrorJobSql(MIRROR_NOTE, { noteId, contactId }, this.maxAttempts);
  }

  changedContactJobSql(contactId: Prisma.Sql, changed: ContactField[]): Prisma.Sql {
    return mirrorJobSql(MIRROR_CONTACT, { contactId, changed }, this.maxAttempts);
  }

  requeueContact(contactId: number): Promise<number> {
    return this.store.requeueContact(contactId, this.maxAttempts);
  }

  crmState(): Promise<CrmState> {
    return this.health.read();
  }
}
