/**
 * The base of the service's errors, and the errors every capability shares. A capability's own
 * errors live with it (contacts/contact-errors.ts, idempotency/idempotency-errors.ts, the HTTP
 * layer's in http/http-errors.ts); the HTTP error handler turns any of them into
 * `{ success: false, error: { code, message, details? } }`.
 */
export abstract class AppError extends Error {
  abstract readonly status: number;
  abstract readonly code: string;

  constructor(message: string, readonly details?: unknown, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }

  /** Extra members of the `error` object, beside code, message and details. */
  extra(): Record<string, unknown> {
    return {};
  }
}

export interface FieldIssue {
  field: string;
  message: string;
}

export class ValidationError extends AppError {
  readonly status = 400;
  readonly code = 'VALIDATION_ERROR';

  constructor(message: string, readonly issues: FieldIssue[]) {
    super(message, issues);
  }
}

export class NotFoundError extends AppError {
  readonly status = 404;
  readonly code = 'NOT_FOUND';
}

export class ServiceUnavailableError extends AppError {
  readonly status = 503;
  readonly code = 'SERVICE_UNAVAILABLE';
}
