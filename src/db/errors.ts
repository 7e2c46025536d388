import { Prisma } from '@prisma/client';

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
export function sqlState(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = adapterErrorCause(error)?.originalCode;
  return typeof code === 'string' ? code : undefined;
}

export function isDatabaseUnavailable(error: unknown): boolean {
  if (error instanceof Prisma.PrismaClientInitializationError) return true;
  if (error instanceof Prisma.PrismaClientKnownRequestError && UNREACHABLE_CODES.has(error.code)) return true;
  if (!(error instanceof Error)) return false;
  const cause = adapterErrorCause(error);
  if (typeof cause?.kind === 'string' && UNREACHABLE_KINDS.has(cause.kind)) return true;
  if (typeof cause?.originalCode === 'string' && UNAVAILABLE_SQLSTATE.test(cause.originalCode)) return true;
  return UNREACHABLE_MESSAGES.some((pattern) => pattern.test(error.message));
}
