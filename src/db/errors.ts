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

/**
 * Kinds of the driver adapter's own errors, which reach us unwrapped when Prisma's transaction
 * manager runs the statement (a COMMIT on a connection cut meanwhile: ConnectionClosed).
 */
const UNREACHABLE_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout']);

function driverAdapterErrorKind(error: Error): string | undefined {
  const cause: unknown = error.cause;
  if (error.name !== 'DriverAdapterError' || typeof cause !== 'object' || cause === null || !('kind' in cause)) return undefined;
  return typeof cause.kind === 'string' ? cause.kind : undefined;
}

export function isDatabaseUnavailable(error: unknown): boolean {
  if (error instanceof Prisma.PrismaClientInitializationError) return true;
  if (error instanceof Prisma.PrismaClientKnownRequestError && UNREACHABLE_CODES.has(error.code)) return true;
  if (!(error instanceof Error)) return false;
  if (UNREACHABLE_KINDS.has(driverAdapterErrorKind(error) ?? '')) return true;
  return UNREACHABLE_MESSAGES.some((pattern) => pattern.test(error.message));
}
