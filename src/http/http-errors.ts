import { AppError } from '../errors';

/** Errors of the HTTP layer itself: requests refused before any capability sees them. */
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
