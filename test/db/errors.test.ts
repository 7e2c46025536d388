import { Prisma } from '@prisma/client';
import {
  classifyDatabaseError,
  ForeignKeyViolationError,
  LockTimeoutError,
  UniqueViolationError,
} from '../../src/db/errors';
import { ServiceUnavailableError } from '../../src/errors';

const isDatabaseUnavailable = (error: unknown) => classifyDatabaseError(error) instanceof ServiceUnavailableError;

const rawQueryError = (cause: Record<string, unknown>) =>
  new Prisma.PrismaClientKnownRequestError('Raw query failed.', {
    code: 'P2010',
    clientVersion: Prisma.prismaVersion.client,
    meta: { driverAdapterError: { name: 'DriverAdapterError', cause } },
  });

const adapterError = (cause: Record<string, unknown>) => Object.assign(new Error('driver adapter error'), { name: 'DriverAdapterError', cause });

describe('classifyDatabaseError: the database does not answer (503)', () => {
  it.each([
    ['a raw query whose connection was reset', rawQueryError({ kind: 'ConnectionClosed' })],
    ['a raw query that could not connect', rawQueryError({ kind: 'DatabaseNotReachable', host: '127.0.0.1', port: 5432 })],
    ['a raw query cut by the server shutting down (57P01)', rawQueryError({ kind: 'postgres', originalCode: '57P01' })],
    ['a raw query while the server starts up (57P03)', rawQueryError({ kind: 'postgres', originalCode: '57P03' })],
    ['a raw query on a broken connection (08006)', rawQueryError({ kind: 'postgres', originalCode: '08006' })],
    ['a COMMIT on a connection cut meanwhile', adapterError({ kind: 'ConnectionClosed' })],
    ['a statement unanswered past query_timeout', new Error('Query read timeout')],
    ['a statement past statement_timeout', new Error('canceling statement due to statement timeout')],
  ])('is true for %s', (_what, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it.each([
    ['a duplicate email in a raw insert (23505)', rawQueryError({ kind: 'UniqueConstraintViolation', originalCode: '23505' })],
    ['an unknown contact in a raw insert (23503)', rawQueryError({ kind: 'ForeignKeyConstraintViolation', originalCode: '23503' })],
    ['a bad raw query (42601)', rawQueryError({ kind: 'postgres', originalCode: '42601' })],
    ['a unique violation', new Prisma.PrismaClientKnownRequestError('Unique', { code: 'P2002', clientVersion: Prisma.prismaVersion.client })],
    ['a bug', new TypeError('undefined is not a function')],
    ['something thrown that is not an Error', 'ECONNREFUSED'],
  ])('is false for %s', (_what, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
  });
});

describe('classifyDatabaseError: what a statement broke', () => {
  it('names the unique constraint a write broke', () => {
    const error = rawQueryError({
      kind: 'UniqueConstraintViolation',
      originalCode: '23505',
      originalMessage: 'duplicate key value violates unique constraint "contacts_email_key"',
    });
    const classified = classifyDatabaseError(error);
    expect(classified).toBeInstanceOf(UniqueViolationError);
    expect(classified).toMatchObject({ constraint: 'contacts_email_key', cause: error });
  });

  it('names the foreign key a write broke', () => {
    const classified = classifyDatabaseError(
      rawQueryError({
        kind: 'ForeignKeyConstraintViolation',
        originalCode: '23503',
        originalMessage: 'insert or update on table "notes" violates foreign key constraint "notes_contact_id_fkey"',
      }),
    );
    expect(classified).toBeInstanceOf(ForeignKeyViolationError);
    expect(classified).toMatchObject({ constraint: 'notes_contact_id_fkey' });
  });

  it('tells a lock wait past lock_timeout (55P03)', () => {
    expect(classifyDatabaseError(rawQueryError({ kind: 'postgres', originalCode: '55P03' }))).toBeInstanceOf(LockTimeoutError);
  });

  it('keeps the driver error as the cause of a 503, for the log', () => {
    const error = rawQueryError({ kind: 'ConnectionClosed' });
    expect(classifyDatabaseError(error)).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE', cause: error });
  });

  it.each([
    ['a bad raw query (42601)', rawQueryError({ kind: 'postgres', originalCode: '42601' })],
    ['a bug', new TypeError('undefined is not a function')],
    ['something thrown that is not an Error', 'ECONNREFUSED'],
  ])('returns anything else as it is: %s', (_what, error) => {
    expect(classifyDatabaseError(error)).toBe(error);
  });
});
