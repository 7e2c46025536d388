import type { PrismaClient } from '@prisma/client';

export interface DatabaseFault {
  remove(): Promise<void>;
}

/**
 * Makes every INSERT into `table` fail inside PostgreSQL with `message`: an error the service
 * does not expect (raise_exception), as a broken trigger or extension would give. The suite runs
 * in band, so no other test sees it; remove it in a `finally`.
 */
export async function failInserts(prisma: PrismaClient, table: 'contacts' | 'notes' | 'contact_events', message: string): Promise<DatabaseFault> {
  await prisma.$executeRawUnsafe(`
    CREATE OR REPLACE FUNCTION test_fault() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$`);
  await prisma.$executeRawUnsafe(`
    CREATE TRIGGER test_fault BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION test_fault(${quoteLiteral(message)})`);
  return {
    remove: async () => {
      await prisma.$executeRawUnsafe(`DROP TRIGGER IF EXISTS test_fault ON ${table}`);
    },
  };
}

const quoteLiteral = (text: string) => `'${text.replace(/'/g, "''")}'`;
