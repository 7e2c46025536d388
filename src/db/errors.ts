import { Prisma } from '@prisma/client';

/** Prisma error codes meaning "no usable connection", not "bad query". */
const UNREACHABLE_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);

/** node-postgres and socket failures that reach us without Prisma's wrapping. */
const UNREACHABLE_MESSAGES = [/timeout exceeded when trying to connect/i, /Connection terminated/i, /ECONNREFUSED/];

export function isDatabaseUnavailable(error: unknown): boolean {
  if (error instanceof Prisma.PrismaClientInitializationError) return true;
  if (error instanceof Prisma.PrismaClientKnownRequestError && UNREACHABLE_CODES.has(error.code)) return true;
  return error instanceof Error && UNREACHABLE_MESSAGES.some((pattern) => pattern.test(error.message));
}
