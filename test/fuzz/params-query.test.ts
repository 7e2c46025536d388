import { parse as parseQueryString } from 'node:querystring';
import fc from 'fast-check';
import { Contact, ContactEventPage, ContactIdParams, ContactPage, ListContactsQuery, PageQuery } from '../../src/contacts/contact.schemas';
import {
  REQUEST_TIMEOUT_MS,
  SQL_FRAGMENTS,
  expectClientError,
  expectNoPrototypePollution,
  expectTablesIntact,
  fcOptions,
  fromSupertest,
  hostileString,
  issueFields,
  percentEncode,
  resetAndSeed,
  sendRaw,
  snapshot,
  startFuzzApp,
  storable,
  wellFormed,
  type FuzzApp,
  type HttpResult,
} from './fuzz-support';

/**
 * Path parameters and query strings: arbitrary `:id`s (percent-encoded, and malformed
 * percent-encoding), arbitrary skip/limit/search/email, unknown paths and methods. Read routes
 * never change a row; every 4xx is in the error shape; nothing answers 5xx.
 */

let app: FuzzApp;
beforeAll(async () => {
  app = await startFuzzApp();
});
beforeEach(() => resetAndSeed(app));
afterEach(async () => {
  expectNoPrototypePollution();
  await expectTablesIntact(app.t);
});
afterAll(() => app.close());

const get = async (path: string): Promise<HttpResult> => fromSupertest(await app.http().get(path).timeout(REQUEST_TIMEOUT_MS));

// ---------------------------------------------------------------------------------------------
// Generators

const NUMBERISH = [
  '0', '1', '2', '3', '4', '50', '199', '200', '201', '-1', '-0', '+1', ' 1', '1 ', '01', '007', '1.0', '1.5', '1e3', '0x1F', '0b1',
  '2147483647', '2147483648', '9999999999', '99999999999', '12345678901234567890', 'NaN', 'Infinity', 'null', 'undefined', 'true',
  '１', '١', '½', '',
];

const queryValue = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NUMBERISH) },
  { weight: 3, arbitrary: hostileString(20) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(...SQL_FRAGMENTS, 'ada', 'ADA', 'a', ' grace ', 'ö', 'İ', '%a%', 'a\u0000b', '\u0000', 'x'.repeat(255), 'x'.repeat(256)),
  },
  { weight: 2, arbitrary: fc.constantFrom('ada@example.com', 'ADA@EXAMPLE.COM', ' grace@example.com ', 'a_a@example.com', 'nobody@example.com', 'x@y', '@', "o'brien@example.com") },
  { weight: 1, arbitrary: fc.emailAddress() },
);

const queryKey = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('skip', 'limit', 'search', 'email') },
  {
    weight: 2,
    arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'search[]', 'skip[0]', 'limit[$gt]', 'email[]', 'SKIP', ' limit', ''),
  },
  { weight: 1, arbitrary: hostileString(8) },
);

/** A query string: key=value pairs, keys repeated at times, everything percent-encoded. */
const queryString = fc
  .array(fc.tuple(queryKey, queryValue), { maxLength: 5 })
  .map((pairs) => pairs.map(([key, value]) => `${percentEncode(key)}=${percentEncode(value)}`).join('&'));

/** What Express 5's default ("simple") query parser makes of a query string. */
const parsedQuery = (query: string): Record<string, unknown> => ({ ...parseQueryString(query) });

const idText = fc.oneof(
  { weight: 3, arbitrary: fc.nat({ max: 5 }).map(String) },
  { weight: 3, arbitrary: fc.constantFrom(...NUMBERISH, '__proto__', 'constructor', '..', '.', '%', '%25', '1;DROP TABLE contacts', "1' OR '1'='1", '1/events') },
  { weight: 2, arbitrary: hostileString(20) },
  { weight: 1, arbitrary: fc.integer().map(String) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 10n ** 12n }).map(String) },
);

// ---------------------------------------------------------------------------------------------

describe('GET /contacts', () => {
  it('answers any query as ListContactsQuery says: 200 with exactly the matching page, else 400 in the error shape', async () => {
    await fc.assert(
      fc.asyncProperty(queryString, async (query) => {
        const before = await snapshot(app.t);
        const res = await get(`/contacts?${query}`);
        const parsed = ListContactsQuery.safeParse(parsedQuery(query));
        if (!parsed.success || !storable(parsed.data)) {
          // A NUL in `search` cannot be compared in PostgreSQL: it is invalid input like any other.
          expectClientError(res, { status: 400, code: 'VALIDATION_ERROR' });
        } else {
          expect(res.status).toBe(200);
          const page = ContactPage.parse(JSON.parse(res.text));
          const { skip, limit, search, email } = parsed.data;
          expect({ skip: page.skip, limit: page.limit }).toEqual({ skip, limit });
          expect(page.items.length).toBeLessThanOrEqual(limit);
          // Literal, case-insensitive substring on the name; exact email. Checked against every row
          // when the search is ASCII (PostgreSQL and JavaScript fold other letters differently).
          if (search === undefined || /^[\x20-\x7e]*$/.test(search)) {
            const needle = search?.toLowerCase() ?? '';
            const all = await app.t.prisma.contact.findMany({ orderBy: { id: 'asc' } });
            const matching = all.filter((row) => row.name.toLowerCase().includes(needle) && (email === undefined || row.email === email));
            expect(page.total).toBe(matching.length);
            expect(page.items.map((item) => item.id)).toEqual(matching.slice(skip, skip + limit).map((row) => row.id));
          }
        }
        expect(await snapshot(app.t)).toEqual(before);
      }),
      fcOptions(150),
    );
  }, 60_000);

  it('answers 400 VALIDATION_ERROR for a NUL character in search, not 500', async () => {
    const withNul = fc
      .tuple(fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 8 }), fc.string({ unit: 'grapheme-ascii', maxLength: 8 }))
      .map(([before, after]) => `${before}\u0000${after}`);
    await fc.assert(
      fc.asyncProperty(withNul, async (search) => {
        const res = await get(`/contacts?search=${percentEncode(search)}`);
        expectClientError(res, { status: 400, code: 'VALIDATION_ERROR' });
        expect(issueFields(res)).toContain('search');
      }),
      fcOptions(20),
    );
  }, 60_000);
});

describe('routes with an :id', () => {
  const routes = ['GET /contact/:id', 'GET /contact/:id/events', 'DELETE /contact/:id', 'POST /contact/:id/sync'] as const;

  it('answers any :id as ContactIdParams says, in the error shape, and changes rows only on a 2xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), idText, fc.option(queryString, { nil: '' }), async (route, id, query) => {
        const [method, template] = route.split(' ') as [string, string];
        const path = `${template.replace(':id', percentEncode(id))}${query ? `?${query}` : ''}`;
        const before = await snapshot(app.t);
        const res = fromSupertest(await app.http()[method.toLowerCase() as 'get'](path).timeout(REQUEST_TIMEOUT_MS));

        const received = wellFormed(id); // what the server decodes: lone surrogates were sent as U+FFFD
        const params = ContactIdParams.safeParse({ id: received });
        if (route === 'GET /contact/:id' && received.toLowerCase() === 'health') {
          expect(res.status).toBe(200); // GET /contact/health is the readiness probe
        } else if (received === '') {
          expectClientError(res, { status: 404, code: 'NOT_FOUND' }); // no such route
        } else if (!params.success) {
          expectClientError(res, { status: 400, code: 'VALIDATION_ERROR' });
        } else if (route === 'POST /contact/:id/sync') {
          expectClientError(res, { status: [409, 404] }); // CRM_DISABLED: no Pipedrive key in this app
        } else {
          const existed = (await app.t.prisma.contact.count({ where: { id: params.data.id } })) > 0;
          const page = route === 'GET /contact/:id/events' ? PageQuery.safeParse(parsedQuery(query)) : undefined;
          if (page && !page.success) {
            expectClientError(res, { status: 400, code: 'VALIDATION_ERROR' });
          } else if (route === 'DELETE /contact/:id' && res.status === 204) {
            expect(await app.t.prisma.contact.count({ where: { id: params.data.id } })).toBe(0);
            return; // the one accepted change
          } else if (res.status === 404) {
            expectClientError(res, { status: 404, code: 'NOT_FOUND' });
            expect(existed).toBe(false);
          } else {
            expect(res.status).toBe(200);
            if (route === 'GET /contact/:id') expect(Contact.parse(JSON.parse(res.text)).id).toBe(params.data.id);
            else expect(ContactEventPage.parse(JSON.parse(res.text)).total).toBe(await app.t.prisma.contactEvent.count({ where: { contactId: params.data.id } }));
          }
        }
        expect(await snapshot(app.t)).toEqual(before);
      }),
      fcOptions(150),
    );
  }, 60_000);

  /** Percent signs that do not decode: the router cannot decode `:id`. */
  const malformedSegment = fc
    .array(fc.constantFrom('%', '%Z', '%ZZ', '%E0%A4', '%E0%A4%A', '%ED%A0%80', '%C3%28', '%FF', '%C0%AF', '%00', '%2', '%G1', '%u0041', '1', 'a', '%25', '%31'), {
      minLength: 1,
      maxLength: 4,
    })
    .map((parts) => parts.join(''));

  it('answers malformed percent-encoding in a path parameter with a 4xx in the error shape, not 500', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), malformedSegment, async (route, segment) => {
        const [method, template] = route.split(' ') as [string, string];
        const before = await snapshot(app.t);
        // node:http sends the path as written; a URL parser might re-encode it.
        const res = await sendRaw(app.port, { method, path: template.replace(':id', segment) });
        let decoded: string | undefined;
        try {
          decoded = decodeURIComponent(segment);
        } catch {
          decoded = undefined;
        }
        if (decoded === undefined || !ContactIdParams.safeParse({ id: decoded }).success) {
          expectClientError(res, { status: 400 });
        } else {
          expect(res.status).toBeLessThan(500);
          if (res.status >= 400) expectClientError(res);
        }
        if (res.status < 200 || res.status >= 300) expect(await snapshot(app.t)).toEqual(before);
      }),
      fcOptions(60),
    );
  }, 60_000);

  it('tolerates malformed percent-encoding in query strings', async () => {
    // (%00, a NUL, has a test of its own above.)
    const segment = malformedSegment.filter((text) => !text.includes('%00'));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('search', 'email', 'skip', 'limit', 'other'), segment, async (key, segment) => {
        const res = await sendRaw(app.port, { method: 'GET', path: `/contacts?${key}=${segment}` });
        const parsed = ListContactsQuery.safeParse(parsedQuery(`${key}=${segment}`));
        if (parsed.success && storable(parsed.data)) expect(res.status).toBe(200);
        else expectClientError(res, { status: 400, code: 'VALIDATION_ERROR' });
      }),
      fcOptions(40),
    );
  }, 60_000);
});

describe('any method, any path', () => {
  const segment = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('contact', 'contacts', 'note', 'sync', 'events', 'health', 'status', '1', '2', '999', 'CONTACT', '') },
    { weight: 1, arbitrary: hostileString(10).map(percentEncode) },
  );
  const request = fc.record({
    method: fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'PUT'),
    segments: fc.array(segment, { minLength: 1, maxLength: 4 }),
    trailingSlash: fc.boolean(),
    query: fc.option(queryString, { nil: '' }),
  });

  it('answers a 4xx in the error shape (or a success) and never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(request, async ({ method, segments, trailingSlash, query }) => {
        const path = `/${segments.join('/')}${trailingSlash ? '/' : ''}${query ? `?${query}` : ''}`;
        const before = await snapshot(app.t);
        const res = await sendRaw(app.port, { method, path });
        if (res.status >= 400) expectClientError(res);
        else expect(res.status).toBeLessThan(300);
        if (res.status >= 300) expect(await snapshot(app.t)).toEqual(before);
      }),
      fcOptions(100),
    );
  }, 60_000);
});

describe('probes', () => {
  it('/health, /contact/health and /sync/status answer 200 JSON whatever the query', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('/health', '/contact/health', '/sync/status'), queryString, async (path, query) => {
        const res = await get(`${path}?${query}`);
        expect(res.status).toBe(200);
        expect(res.headers['content-type']).toMatch(/^application\/json/);
        expect(JSON.parse(res.text)).toEqual(expect.any(Object));
      }),
      fcOptions(40),
    );
  }, 60_000);
});
