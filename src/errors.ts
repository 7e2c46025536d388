/**
 * The one error hierarchy of the service. Domain code throws these; the HTTP
 * error handler turns them into `{ success: false, error: { code, message, details? } }`.
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

export class MalformedJsonError extends AppError {
  readonly status = 400;
  readonly code = 'MALFORMED_JSON';
}

/** HTTP/1.1 that Node's parser refuses (see http/client-errors.ts). */
export class MalformedRequestError extends AppError {
  readonly status = 400;
  readonly code = 'MALFORMED_REQUEST';
}

export class HeadersTooLargeError extends AppError {
  readonly status = 431;
  readonly code = 'HEADERS_TOO_LARGE';
}

export class RequestTimeoutError extends AppError {
  readonly status = 408;
  readonly code = 'REQUEST_TIMEOUT';
}

export class PayloadTooLargeError extends AppError {
  readonly status = 413;
  readonly code = 'PAYLOAD_TOO_LARGE';
}

export class UnsupportedMediaTypeError extends AppError {
  readonly status = 415;
  readonly code = 'UNSUPPORTED_MEDIA_TYPE';
}

export class UnauthorizedError extends AppError {
  readonly status = 401;
  readonly code = 'UNAUTHORIZED';
}

export class RateLimitedError extends AppError {
  readonly status = 429;
  readonly code = 'RATE_LIMITED';
}

export class NotFoundError extends AppError {
  readonly status = 404;
  readonly code = 'NOT_FOUND';
}

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

/** The Idempotency-Key was used before with another request. */
export class IdempotencyKeyReusedError extends AppError {
  readonly status = 422;
  readonly code = 'IDEMPOTENCY_KEY_REUSED';
}

/** The first request with this Idempotency-Key has not finished. */
export class IdempotencyKeyInUseError extends AppError {
  readonly status = 409;
  readonly code = 'IDEMPOTENCY_KEY_IN_USE';
}

export class CrmDisabledError extends AppError {
  readonly status = 409;
  readonly code = 'CRM_DISABLED';
}

export class ServiceUnavailableError extends AppError {
  readonly status = 503;
  readonly code = 'SERVICE_UNAVAILABLE';
}

/** Raised at start-up; the message names the offending setting. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
