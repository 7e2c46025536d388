import { AppError } from '../errors';

/** Idempotency-Key errors. */
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
