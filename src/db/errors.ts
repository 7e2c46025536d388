import { Prisma } from '@prisma/client';
import { ServiceUnavailableError } from '../errors';

/** Prisma error codes meaning "no usable connection", not "bad query". */
const UNREACHABLE_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);

/**
 * node-postgres and socket failures that reach us without Prisma's wrapping, or inside the
 * message of a raw query's error (P2010). A statement unanswered within the query timeout ends
 * either on the client side (query_timeout) or on the server side (statement_timeout, 57014),
 * whichever comes first: both mean the database did not answer in time.
 */
const UNREACHABLE_MESSAGES = [
  /timeout exceeded when trying to connect/i,
  /Connection terminated/i,
  // A statement sent on a connection that broke since (or was closed after a timeout).
  /is not queryable/i,
  /ECONNREFUSED/,
  /Can't reach database server/i,
  /Query read timeout/i,
  /canceling statement due to statement timeout/i,
];

/** Kinds of the driver adapter's errors that mean the connection, not the statement, failed. */
const UNREACHABLE_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout']);

/**
 * PostgreSQL's own "not now" codes: connection exceptions (class 08), and the server shutting down
 * or starting up (57P01 – 57P03).
 */
const UNAVAILABLE_SQLSTATE = /^(08|57P0[123])/;

interface AdapterErrorCause {
  kind?: unknown;
  originalCode?: unknown;
  originalMessage?: unknown;
}

/**
 * The driver adapter's description of a failure: the cause of a DriverAdapterError, which reaches
 * us unwrapped when Prisma's transaction manager runs the statement (a COMMIT on a connection cut
 * meanwhile), or wrapped in a raw query's P2010 (meta.driverAdapterError).
 */
function adapterErrorCause(error: Error): AdapterErrorCause | undefined {
  const adapterError: unknown =
    error instanceof Prisma.PrismaClientKnownRequestError ? error.meta?.driverAdapterError : error.name === 'DriverAdapterError' ? error : undefined;
  if (typeof adapterError !== 'object' || adapterError === null || !('cause' in adapterError)) return undefined;
  const cause: unknown = adapterError.cause;
  return typeof cause === 'object' && cause !== null ? (cause as AdapterErrorCause) : undefined;
}

/** PostgreSQL's SQLSTATE of a failed raw statement (P2010), such as 23505 for a unique violation. */
function sqlState(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = adapterErrorCause(error)?.originalCode;
  return typeof code === 'string' ? code : undefined;
}

function isDatabaseUnavailable(error: unknown): boolean {
  if (error instanceof Prisma.PrismaClientInitializationError) return true;
  if (error instanceof Prisma.PrismaClientKnownRequestError && UNREACHABLE_CODES.has(error.code)) return true;
  if (!(error instanceof Error)) return false;
  const cause = adapterErrorCause(error);
  if (typeof cause?.kind === 'string' && UNREACHABLE_KINDS.has(cause.kind)) return true;
  if (typeof cause?.originalCode === 'string' && UNAVAILABLE_SQLSTATE.test(cause.originalCode)) return true;
  return UNREACHABLE_MESSAGES.some((pattern) => pattern.test(error.message));
}

/** A statement broke a unique constraint: `constraint` names it (e.g. contacts_email_key). */
export class UniqueViolationError extends Error {
  override readonly name = 'UniqueViolationError';

  constructor(readonly constraint: string | undefined, options?: ErrorOptions) {
    super(`unique constraint ${constraint ?? '(unknown)'} violated`, options);
  }
}

/** A statement referred to a row that does not exist: `constraint` names the foreign key. */
export class ForeignKeyViolationError extends Error {
  override readonly name = 'ForeignKeyViolationError';

  constructor(readonly constraint: string | undefined, options?: ErrorOptions) {
    super(`foreign key ${constraint ?? '(unknown)'} violated`, options);
  }
}

/** A statement waited for a lock longer than the transaction's lock_timeout. */
export class LockTimeoutError extends Error {
  override readonly name = 'LockTimeoutError';
}

/** The constraint PostgreSQL names in its message (`... violates unique constraint "contacts_email_key"`). */
function constraintName(error: Error): string | undefined {
  const message = adapterErrorCause(error)?.originalMessage;
  return typeof message === 'string' ? /constraint "([^"]+)"/.exec(message)?.[1] : undefined;
}

/**
 * The one place driver errors are read: what a statement or transaction threw, as an error the rest
 * of the code knows. The database not answering becomes ServiceUnavailableError (503); broken
 * constraints and lock time-outs become the classes above, for the repositories to turn into their
 * domain's errors; anything else is returned as it is.
 */
export function classifyDatabaseError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  if (isDatabaseUnavailable(error)) return new ServiceUnavailableError('The database is unavailable; try again shortly', undefined, { cause: error });
  switch (sqlState(error) ?? (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002' ? '23505' : undefined)) {
    case '23505':
      return new UniqueViolationError(constraintName(error), { cause: error });
    case '23503':
      return new ForeignKeyViolationError(constraintName(error), { cause: error });
    case '55P03':
      return new LockTimeoutError('lock_timeout ran out', { cause: error });
    default:
      return error;
  }
}
