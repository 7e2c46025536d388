import { randomBytes } from 'node:crypto';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '@prisma/client';
import pg from 'pg';
import request from 'supertest';
import { ContactRepository } from '../../src/contacts/contact.repository';
import { TransactionScope } from '../../src/db/transaction-scope';
import { createTestApp, type TestApp } from '../support/test-app';

// GET /contacts?search= is served by the pg_trgm GIN index contacts_name_trgm_idx
// (migration 20261122060808_contacts_name_trigram_index). Other test files share this database:
// every row written here carries TAG in its name and is deleted at the end, and no table is emptied.

const TAG = `trgm${randomBytes(5).toString('hex')}`; // letters and digits only: literal in LIKE patterns
const INDEX = 'contacts_name_trgm_idx';
const BULK = 4000;
/** Seq scans and plain index scans off, so that a search can only run through a bitmap (index) scan. */
const INDEX_ONLY_OPTIONS = '-c enable_seqscan=off -c enable_indexscan=off';

const FIRST_NAMES = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Ken', 'Margaret'];
const LAST_NAMES = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Thompson', 'Hamilton',
  'Ritchie', 'Kernighan', 'Backus', 'Allen', 'Wirth', 'Hoare', 'Lamport', 'Perlis'];
/** Pairs told apart only by a literal %, _ or \, and by case or accents. */
const SPECIAL_NAMES = ['100% Sales', '1000 Sales', 'Under_score', 'UnderXscore', 'Back\\slash', 'Backslash',
  'Zoë Ådalsteinsdóttir', 'Zoe Adalsteinsdottir', 'McDONALD'];

interface Statement {
  sql: string;
  params: unknown[];
}

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

let t: TestApp;
/** The planner as the service meets it. */
let db: pg.Client;
/** The planner left with bitmap scans only. */
let indexOnlyDb: pg.Client;
/** The real repository, on a client that logs its SQL and can only use bitmap scans. */
let indexOnlyPrisma: PrismaClient;
let repository: ContactRepository;
const logged: Statement[] = [];
/** This file's rows, oldest first: what every search is checked against. */
let tagged: { id: number; name: string }[] = [];

async function connect(options?: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL, options });
  await client.connect();
  return client;
}

beforeAll(async () => {
  t = createTestApp();
  db = await connect();
  indexOnlyDb = await connect(INDEX_ONLY_OPTIONS);
  const prisma = new PrismaClient({
    adapter: new PrismaPg({ connectionString: process.env.DATABASE_URL!, options: INDEX_ONLY_OPTIONS }),
    log: [{ emit: 'event', level: 'query' }],
  });
  prisma.$on('query', (event) => logged.push({ sql: event.query, params: JSON.parse(event.params) as unknown[] }));
  indexOnlyPrisma = prisma;
  repository = new ContactRepository(new TransactionScope(prisma), false);

  // A few rows named Kowalczyk among thousands: what a selective search looks like.
  await db.query(
    `INSERT INTO contacts (name)
     SELECT $1 || ' ' || ($2::text[])[1 + i % 8] || ' '
              || CASE WHEN i % 500 = 0 THEN 'Kowalczyk' ELSE ($3::text[])[1 + (i / 8) % 16] END || ' ' || i
       FROM generate_series(1, $4::int) AS i`,
    [TAG, FIRST_NAMES, LAST_NAMES, BULK],
  );
  await db.query(
    `INSERT INTO contacts (name) SELECT $1 || ' ' || name FROM unnest($2::text[]) WITH ORDINALITY AS s(name, n) ORDER BY n`,
    [TAG, SPECIAL_NAMES],
  );
  // New rows wait in the GIN index's pending list, which every search reads in full and the planner
  // charges for, until a vacuum (autovacuum, in a running service) merges them into the index.
  await db.query('VACUUM ANALYZE contacts');
  tagged = (await db.query<{ id: number; name: string }>('SELECT id, name FROM contacts WHERE name LIKE $1 ORDER BY id', [`%${TAG}%`])).rows;
});

afterAll(async () => {
  await db?.query('DELETE FROM contacts WHERE name LIKE $1', [`%${TAG}%`]);
  await Promise.all([db?.end(), indexOnlyDb?.end(), indexOnlyPrisma?.$disconnect(), t?.close()]);
});

/** The statements the repository sends for a search (the page and the count), with their parameters. */
async function searchStatements(term: string): Promise<{ names: string[]; total: number; statements: Statement[] }> {
  logged.length = 0;
  const { items, total } = await repository.list({ search: term, skip: 0, limit: 200 });
  const statements = logged.filter((statement) => /\bILIKE\b/i.test(statement.sql));
  expect(statements).toHaveLength(2);
  return { names: items.map((contact) => contact.name), total, statements };
}

function planNodes(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(planNodes)];
}

/** "Node Type on index" for every node of the statement's plan. */
async function plan(client: pg.Client, statement: Statement): Promise<string[]> {
  const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (FORMAT JSON) ${statement.sql}`, statement.params);
  return planNodes(rows[0]!['QUERY PLAN'][0].Plan).map((node) => `${node['Node Type']}${node['Index Name'] ? ` on ${node['Index Name']}` : ''}`);
}

/** What a case-insensitive substring search must find among this file's rows. */
const expected = (term: string) => tagged.map((row) => row.name).filter((name) => name.toLowerCase().includes(term.toLowerCase()));

describe('the pg_trgm index behind GET /contacts?search=', () => {
  it('exists: a GIN trigram index on contacts.name, with a comment', async () => {
    const extension = await db.query("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'");
    expect(extension.rowCount).toBe(1);
    const { rows } = await db.query<{ indexdef: string; comment: string | null }>(
      `SELECT indexdef, obj_description(format('%I.%I', schemaname, indexname)::regclass, 'pg_class') AS comment
         FROM pg_indexes WHERE tablename = 'contacts' AND indexname = $1`,
      [INDEX],
    );
    expect(rows).toEqual([{ indexdef: expect.stringMatching(/USING gin \(name gin_trgm_ops\)$/), comment: expect.stringMatching(/search/) }]);
  });

  it('serves the SQL the repository sends for a selective search, count and page alike', async () => {
    const { names, statements } = await searchStatements('walcZ');

    expect(names).toHaveLength(BULK / 500);
    for (const statement of statements) {
      // The planner's own choice, no setting changed: before the index, a Seq Scan of the table.
      expect(await plan(db, statement)).toContain(`Bitmap Index Scan on ${INDEX}`);
    }
  });

  it.each([
    [`${TAG} ada`, 'more than a page: the total beyond the 200 items', BULK / 8],
    [`${TAG} ada lovelace 1`, 'a few rows', 9],
    [`${TAG.toUpperCase()} mcdon`, 'another case', 1],
    [`${TAG} 100%`, 'a literal %', 1],
    [`${TAG} under_s`, 'a literal _', 1],
    [`${TAG} back\\s`, 'a literal \\', 1],
    [`${TAG} zoë ådal`, 'accented letters in another case', 1],
    [`${TAG} nobody`, 'nothing', 0],
  ])('finds what a case-insensitive substring search finds: %s (%s)', async (term, _what, count) => {
    const matches = expected(term);
    expect(matches).toHaveLength(count);

    // Through the API, with the plan the planner chooses.
    const res = await request(t.app).get('/contacts').query({ search: term, limit: 200 }).expect(200);
    expect(res.body.items.map((contact: { name: string }) => contact.name)).toEqual(matches.slice(0, 200));
    expect(res.body.total).toBe(count);

    // Through the repository with nothing but the index to search with: same rows, same total.
    const { names, total, statements } = await searchStatements(term);
    expect(names).toEqual(matches.slice(0, 200));
    expect(total).toBe(count);
    for (const statement of statements) {
      expect(await plan(indexOnlyDb, statement)).toContain(`Bitmap Index Scan on ${INDEX}`);
    }
  });
});
