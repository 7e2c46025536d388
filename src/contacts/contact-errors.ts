import { AppError } from '../errors';

/** The contact capability's own errors. */
export class ContactExistsError extends AppError {
  readonly status = 409;
  readonly code = 'CONTACT_EXISTS';

  constructor(readonly contactId: number) {
    super(`A contact with this email already exists (contact ${contactId})`);
  }

  override extra(): Record<string, unknown> {
    return { contact_id: this.contactId };
  }
}

export class CrmDisabledError extends AppError {
  readonly status = 409;
  readonly code = 'CRM_DISABLED';
}
