import fc from 'fast-check';
import type { z } from 'zod';
import {
  CreateContactBody,
  CreateContactResponse,
  CreateNoteBody,
  CreateNoteResponse,
  UpdateContactBody,
  UpdateContactResponse,
} from '../../src/contacts/contact.schemas';
import { PhoneNumbers } from '../../src/contacts/phone-numbers';
import {
  BODY_LIMIT_BYTES,
  PROTOTYPE_KEYS_TO_SEND,
  REQUEST_TIMEOUT_MS,
  SQL_FRAGMENTS,
  anyJsonText,
  anyKey,
  expectClientError,
  expectNoPrototypePollution,
  expectTablesIntact,
  fcOptions,
  fromSupertest,
  hostileString,
  hostileUnit,
  issueFields,
  jsonObject,
  jsonString,
  notANumber,
  notAString,
  rawNumber,
  resetAndSeed,
  snapshot,
  startFuzzApp,
  storable,
  type FuzzApp,
  type HttpResult,
  type JsonText,
} from './fuzz-support';

/**
 * The three endpoints that take a JSON body, sent arbitrary and hostile JSON text. The expected
 * answer is computed from the route's own zod schema: a body the schema rejects (or JSON that is not
 * JSON) must get a 4xx in the error shape and change no row; one it accepts must be stored as sent.
 */

let app: FuzzApp;
beforeAll(async () => {
  app = await startFuzzApp();
});
beforeEach(() => resetAndSeed(app));
afterEach(() => expectNoPrototypePollution());
afterAll(() => app.close());

/** The fuzz app reads phones with no DEFAULT_PHONE_REGION. */
const PHONE_NUMBERS = new PhoneNumbers();

/** A stored contact with its E.164 phone, in the API's field names. */
const storedContact = (id: number) =>
  app.t.prisma.$queryRaw<Record<string, unknown>[]>`SELECT name, email, phone, phone_e164 FROM contacts WHERE id = ${id}`.then(([row]) => row);

// ---------------------------------------------------------------------------------------------
// Generators of JSON text for the routes' fields

const validName = fc.oneof(
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
  fc.string({ unit: hostileUnit, minLength: 1, maxLength: 30 }),
  fc.constantFrom(...SQL_FRAGMENTS),
);
const nameText: fc.Arbitrary<JsonText> = fc.oneof(
  { weight: 8, arbitrary: validName.map(jsonString) },
  { weight: 1, arbitrary: notAString },
  { weight: 1, arbitrary: fc.constantFrom('null', '""', '"   "', '"\\t\\n"') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(...['x'.repeat(255), 'x'.repeat(256), ` ${'x'.repeat(255)} `, '😀'.repeat(127), '😀'.repeat(128), 'é'.repeat(255)].map(jsonString)),
  },
);

const EMAILS = [
  'ada@example.com', // the seed's, in other spellings: a 409
  'ADA@Example.COM',
  ' grace@example.com ',
  'new@example.com',
  "o'brien@example.com",
  'a_b@example.com',
  'a%b@example.com',
  "'; DROP TABLE contacts; --@example.com",
  'x@y',
  'not-an-email',
  `${'a'.repeat(243)}@example.com`, // 255 characters
  `${'a'.repeat(244)}@example.com`, // 256
];
const emailText: fc.Arbitrary<JsonText> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...EMAILS).map(jsonString) },
  { weight: 2, arbitrary: fc.emailAddress().map(jsonString) },
  { weight: 1, arbitrary: hostileString().map(jsonString) },
  { weight: 1, arbitrary: fc.constantFrom('null', '""', '"  "') },
  { weight: 1, arbitrary: notAString },
);

/** Numbers countries issue, written in the ways callers write them. */
const validPhone = fc.oneof(
  fc.integer({ min: 0, max: 9999 }).map((n) => `+44 20 7946 ${String(n).padStart(4, '0')}`),
  fc.integer({ min: 0, max: 9999 }).map((n) => `+1 (202) 555-${String(n).padStart(4, '0')}`),
  fc.integer({ min: 0, max: 9999 }).map((n) => `+4930901${String(n).padStart(4, '0')}`),
);

const phoneText: fc.Arbitrary<JsonText> = fc.oneof(
  { weight: 4, arbitrary: validPhone.map(jsonString) },
  { weight: 3, arbitrary: fc.stringMatching(/^ ?\+?[0-9][0-9 ()./-]{1,19} ?$/).map(jsonString) },
  {
    weight: 2,
    arbitrary: fc.constantFrom('+44 20 7946 0000', '1', '12', '+', '123456789012345678901', '0x1F', '555-CALL-NOW', '١٢٣٤٥', '+1 (555) 010-0000').map(jsonString),
  },
  { weight: 1, arbitrary: hostileString(22).map(jsonString) },
  { weight: 1, arbitrary: fc.constantFrom('null', '""', '"   "') },
  { weight: 1, arbitrary: notAString },
);

const contactIdText: fc.Arbitrary<JsonText> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('1', '2', '3', '4', '999') },
  { weight: 2, arbitrary: rawNumber },
  { weight: 1, arbitrary: fc.integer().map(String) },
  { weight: 2, arbitrary: notANumber },
);

const contentText: fc.Arbitrary<JsonText> = fc.oneof(
  { weight: 10, arbitrary: fc.oneof(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 200 }), hostileString(100)).map(jsonString) },
  { weight: 1, arbitrary: notAString },
  { weight: 1, arbitrary: fc.constantFrom('null', '""', '" \\n "') },
  { weight: 1, arbitrary: fc.constantFrom(...['y'.repeat(100_000), 'y'.repeat(100_001)].map(jsonString)) },
);

/** An object with some of the route's fields (in any order), sometimes with extra keys. */
function objectWith(fields: Record<string, fc.Arbitrary<JsonText>>): fc.Arbitrary<JsonText> {
  const known = fc.oneof(fc.record(fields), fc.record(fields, { requiredKeys: [] }));
  const extra = fc.oneof({ weight: 6, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(fc.tuple(anyKey, anyJsonText), { minLength: 1, maxLength: 2 }) });
  return fc
    .tuple(known, extra, fc.boolean())
    .map(([values, extras, extrasFirst]) => {
      const entries = Object.entries(values) as Array<[string, JsonText]>;
      return jsonObject(extrasFirst ? [...extras, ...entries] : [...entries, ...extras]);
    });
}

const fieldsText: fc.Arbitrary<JsonText> = fc.oneof(
  { weight: 6, arbitrary: objectWith({ name: nameText, email: emailText, phone: phoneText }) },
  { weight: 1, arbitrary: fc.constantFrom('{}', 'null', '[]', '"name"', '1') },
  { weight: 1, arbitrary: anyJsonText },
);

// ---------------------------------------------------------------------------------------------
// The routes and what a success must show

interface BodyRoute {
  name: string;
  method: 'post' | 'patch';
  path: string;
  schema: z.ZodType;
  okStatus: number;
  /** Answers a valid body may still get: no such contact, email taken. */
  validErrorStatuses: number[];
  shapedBody: fc.Arbitrary<JsonText>;
  /** A valid body, to be broken one field at a time. */
  validBody: Record<string, unknown>;
  /** Checks a success: the response's schema, and that what was stored is what was sent. */
  checkSuccess(res: HttpResult, data: never): Promise<void>;
}

const bodyRoutes: BodyRoute[] = [
  {
    name: 'POST /contact',
    method: 'post',
    path: '/contact',
    schema: CreateContactBody,
    okStatus: 201,
    validErrorStatuses: [409],
    shapedBody: objectWith({ name: nameText, email: emailText, phone: phoneText }),
    validBody: { name: 'Fuzz', email: 'fuzz@example.com', phone: '+1 202 555 0100' },
    checkSuccess: async (res, data: z.output<typeof CreateContactBody>) => {
      const body = CreateContactResponse.parse(JSON.parse(res.text));
      const phone = data.phone ?? null;
      const expected = { name: data.name, email: data.email ?? null, phone, phone_e164: phone && PHONE_NUMBERS.toE164(phone) };
      expect(body.contact).toMatchObject(expected);
      expect(await storedContact(body.contact_id)).toMatchObject(expected);
    },
  },
  {
    name: 'PATCH /contact',
    method: 'patch',
    path: '/contact',
    schema: UpdateContactBody,
    okStatus: 200,
    validErrorStatuses: [404, 409],
    shapedBody: objectWith({ contact_id: contactIdText, fields: fieldsText }),
    validBody: { contact_id: 1, fields: { name: 'Fuzz', email: 'fuzz@example.com', phone: '+1 202 555 0100' } },
    checkSuccess: async (res, data: z.output<typeof UpdateContactBody>) => {
      const body = UpdateContactResponse.parse(JSON.parse(res.text));
      const expected: Record<string, unknown> = Object.fromEntries(Object.entries(data.fields).filter(([, value]) => value !== undefined));
      if (data.fields.phone !== undefined) expected.phone_e164 = data.fields.phone && PHONE_NUMBERS.toE164(data.fields.phone);
      expect(body.contact).toMatchObject({ id: data.contact_id, ...expected });
      expect(await storedContact(data.contact_id)).toMatchObject(expected);
    },
  },
  {
    name: 'POST /contact/note',
    method: 'post',
    path: '/contact/note',
    schema: CreateNoteBody,
    okStatus: 201,
    validErrorStatuses: [404],
    shapedBody: objectWith({ contact_id: contactIdText, content: contentText }),
    validBody: { contact_id: 1, content: 'Fuzz note' },
    checkSuccess: async (res, data: z.output<typeof CreateNoteBody>) => {
      const body = CreateNoteResponse.parse(JSON.parse(res.text));
      const note = await app.t.prisma.note.findUniqueOrThrow({ where: { id: body.note_id } });
      expect(note).toMatchObject({ contactId: data.contact_id, content: data.content });
    },
  },
];

const routeNamed = (name: string): BodyRoute => {
  const route = bodyRoutes.find((candidate) => candidate.name === name);
  if (!route) throw new Error(`no route ${name}`);
  return route;
};
/** Route names, not route objects, go into generated values: a counterexample must print short. */
const routeNames = bodyRoutes.map((route) => route.name);

// ---------------------------------------------------------------------------------------------
// The oracle

type Expected = { accepted: false; status: number; code: string } | { accepted: true; data: unknown };

/** What the README and the route's schema say a body deserves. */
function expectedFor(route: BodyRoute, text: JsonText): Expected {
  if (Buffer.byteLength(text) > BODY_LIMIT_BYTES) return { accepted: false, status: 413, code: 'PAYLOAD_TOO_LARGE' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { accepted: false, status: 400, code: 'MALFORMED_JSON' };
  }
  // express.json() is strict: only an object or an array at the top.
  if (typeof parsed !== 'object' || parsed === null) return { accepted: false, status: 400, code: 'MALFORMED_JSON' };
  const result = route.schema.safeParse(parsed);
  if (!result.success) return { accepted: false, status: 400, code: 'VALIDATION_ERROR' };
  // PostgreSQL text cannot hold NUL and Prisma refuses unpaired surrogates: such a body is invalid
  // input, to be answered 400 like any other, not a failure of the service.
  if (!storable(result.data)) return { accepted: false, status: 400, code: 'VALIDATION_ERROR' };
  // A phone of the right characters must also be a number some country issues (README: phone numbers).
  const data = result.data as { phone?: string | null; fields?: { phone?: string | null } };
  const phone = data.fields ? data.fields.phone : data.phone;
  if (typeof phone === 'string' && PHONE_NUMBERS.toE164(phone) === null) return { accepted: false, status: 400, code: 'VALIDATION_ERROR' };
  return { accepted: true, data: result.data };
}

async function send(route: BodyRoute, text: JsonText): Promise<HttpResult> {
  const res = await app.http()[route.method](route.path).set('content-type', 'application/json').timeout(REQUEST_TIMEOUT_MS).send(text);
  return fromSupertest(res);
}

/** Sends `text` and checks the answer against the oracle, and the tables against their snapshot. */
async function sendAndCheck(route: BodyRoute, text: JsonText): Promise<HttpResult> {
  const expected = expectedFor(route, text);
  const before = await snapshot(app.t);
  const res = await send(route, text);
  if (!expected.accepted) {
    expectClientError(res, { status: expected.status, code: expected.code });
    expect(await snapshot(app.t)).toEqual(before);
  } else if (res.status === route.okStatus) {
    await route.checkSuccess(res, expected.data as never);
  } else {
    const { error } = expectClientError(res, { status: route.validErrorStatuses });
    if (error.code === 'CONTACT_EXISTS') {
      // contact_id names the contact that has the email.
      const data = expected.data as { email?: string | null; fields?: { email?: string | null } };
      const email = data.fields ? data.fields.email : data.email;
      expect(email).toEqual(expect.any(String));
      expect((await app.t.prisma.contact.findUnique({ where: { email: email! } }))?.id).toBe(error.contact_id);
    }
    expect(await snapshot(app.t)).toEqual(before);
  }
  expectNoPrototypePollution();
  return res;
}

/** `body` as JSON text with the value at `path` replaced by the JSON text `value`. */
function withValueAt(body: Record<string, unknown>, path: string[], value: JsonText): JsonText {
  const [head, ...rest] = path as [string, ...string[]];
  const entries = Object.entries(body).map(([key, inner]): [string, JsonText] => {
    if (key !== head) return [key, JSON.stringify(inner)];
    return [key, rest.length === 0 ? value : withValueAt(inner as Record<string, unknown>, rest, value)];
  });
  return jsonObject(entries);
}

// ---------------------------------------------------------------------------------------------

describe.each(bodyRoutes.map((route) => [route.name, route] as const))('%s', (_name, route) => {
  it('answers any JSON body as its schema says: 4xx in the error shape and no row changed unless valid', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 3, arbitrary: route.shapedBody }, { weight: 1, arbitrary: anyJsonText }), async (text) => {
        await sendAndCheck(route, text);
      }),
      fcOptions(120),
    );
  }, 60_000);
});

describe('wrong types', () => {
  const notAnObject = fc.oneof(fc.constantFrom('null', '[]', '[{}]', '"fields"', '0', 'true'), notANumber.filter((text) => !text.startsWith('{')));
  const cases: Array<[BodyRoute, string[], fc.Arbitrary<JsonText>]> = [
    [bodyRoutes[0]!, ['name'], fc.oneof(notAString, fc.constant('null'))],
    [bodyRoutes[0]!, ['email'], notAString],
    [bodyRoutes[0]!, ['phone'], notAString],
    [bodyRoutes[1]!, ['contact_id'], notANumber],
    [bodyRoutes[1]!, ['fields'], notAnObject],
    [bodyRoutes[1]!, ['fields', 'name'], fc.oneof(notAString, fc.constant('null'))],
    [bodyRoutes[1]!, ['fields', 'email'], notAString],
    [bodyRoutes[1]!, ['fields', 'phone'], notAString],
    [bodyRoutes[2]!, ['contact_id'], notANumber],
    [bodyRoutes[2]!, ['content'], fc.oneof(notAString, fc.constant('null'))],
  ];
  const oneCase = fc.oneof(...cases.map(([route, path, values]) => values.map((value) => ({ route: route.name, path: path.join('.'), value }))));

  it('answers 400 VALIDATION_ERROR naming the field for a number, boolean, array, object or null where a field takes none', async () => {
    await fc.assert(
      fc.asyncProperty(oneCase, async ({ route: routeName, path, value }) => {
        const route = routeNamed(routeName);
        const text = withValueAt(route.validBody, path.split('.'), value);
        const res = await sendAndCheck(route, text);
        expectClientError(res, { status: 400, code: 'VALIDATION_ERROR' });
        expect(issueFields(res)).toContain(path);
      }),
      fcOptions(100),
    );
  }, 60_000);
});

describe('huge strings', () => {
  it('answers 413 exactly when the body is over 100 kB, else as the schema says', async () => {
    const sized = fc.record({
      route: fc.constantFrom(...routeNames),
      // ASCII, 2-byte, 4-byte (a surrogate pair: two UTF-16 units) characters
      char: fc.constantFrom('a', 'é', '😀'),
      bytes: fc.oneof(fc.integer({ min: 99_000, max: 104_000 }), fc.integer({ min: 200, max: 300 }), fc.integer({ min: 49_000, max: 51_000 })),
    });
    await fc.assert(
      fc.asyncProperty(sized, async ({ route: routeName, char, bytes }) => {
        const route = routeNamed(routeName);
        const long = char.repeat(Math.max(1, Math.floor(bytes / Buffer.byteLength(char))));
        const field = route.name === 'POST /contact/note' ? ['content'] : route.name === 'PATCH /contact' ? ['fields', 'name'] : ['name'];
        await sendAndCheck(route, withValueAt(route.validBody, field, jsonString(long)));
      }),
      fcOptions(24),
    );
  }, 60_000);

  it('answers 400 naming the field for a 50 kB name', async () => {
    const res = await sendAndCheck(bodyRoutes[0]!, jsonObject([['name', jsonString('n'.repeat(50_000))]]));
    expectClientError(res, { status: 400, code: 'VALIDATION_ERROR' });
    expect(issueFields(res)).toEqual(['name']);
  });

  it.each(bodyRoutes.map((route) => [route.name, route] as const))('%s answers 413 PAYLOAD_TOO_LARGE to a 1 MB body, JSON or not', async (_name, route) => {
    const mb = 1024 * 1024;
    for (const text of [withValueAt(route.validBody, [Object.keys(route.validBody).at(-1)!], jsonString('z'.repeat(mb))), `{"x":"${'z'.repeat(mb)}`]) {
      const before = await snapshot(app.t);
      expectClientError(await send(route, text), { status: 413, code: 'PAYLOAD_TOO_LARGE' });
      expect(await snapshot(app.t)).toEqual(before);
    }
  });
});

describe('__proto__, constructor and prototype keys', () => {
  // Raw JSON text, so that `__proto__` is a real own key of the parsed body (as JSON.parse makes it),
  // not the setter an object literal would call.
  const hostileValue = fc.oneof(
    fc.constantFrom('{"polluted":true}', '{"name":"hacked","contact_id":1}', '{"prototype":{"polluted":1}}', '{"__proto__":{"polluted":1}}', 'null', '[]'),
    anyJsonText,
  );
  const placement = fc.record({
    route: fc.constantFrom(...routeNames),
    key: fc.constantFrom(...PROTOTYPE_KEYS_TO_SEND),
    value: hostileValue,
    nested: fc.boolean(),
    keyFirst: fc.boolean(),
  });

  it('answers 400 naming the key, changes nothing and pollutes no prototype, at the top or nested', async () => {
    await fc.assert(
      fc.asyncProperty(placement, async ({ route: routeName, key, value, nested, keyFirst }) => {
        const route = routeNamed(routeName);
        // Nested: inside `fields` for PATCH, else as the value of a string field.
        const where = route.method === 'patch' ? (nested ? ['fields'] : []) : nested ? [Object.keys(route.validBody).at(-1)!] : [];
        const container = where.length === 0 ? route.validBody : route.method === 'patch' ? (route.validBody.fields as Record<string, unknown>) : {};
        const known = Object.entries(container).map(([name, inner]): [string, JsonText] => [name, JSON.stringify(inner)]);
        const object = jsonObject(keyFirst ? [[key, value], ...known] : [...known, [key, value]]);
        const text = where.length === 0 ? object : withValueAt(route.validBody, where, object);

        const res = await sendAndCheck(route, text);
        expectClientError(res, { status: 400, code: 'VALIDATION_ERROR' });
        const field = route.method === 'patch' ? [...where, key].join('.') : where.length > 0 ? where[0] : key;
        expect(issueFields(res)).toContain(field);
      }),
      fcOptions(60),
    );
  }, 60_000);
});

describe('text PostgreSQL cannot store', () => {
  const fields: Array<[string, string[]]> = [
    ['POST /contact', ['name']],
    ['PATCH /contact', ['fields', 'name']],
    ['POST /contact/note', ['content']],
  ];
  const poisoned = fc.record({
    target: fc.constantFrom(...fields),
    prefix: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 10 }),
    poison: fc.oneof(fc.constant('\u0000'), fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code))),
    suffix: fc.string({ unit: 'grapheme-ascii', maxLength: 10 }),
  });

  it('answers 400 VALIDATION_ERROR for a NUL character or a lone surrogate in stored text, not 500', async () => {
    await fc.assert(
      fc.asyncProperty(poisoned, async ({ target: [routeName, path], prefix, poison, suffix }) => {
        const route = routeNamed(routeName);
        // JSON.stringify writes them as the escapes `\u0000` and `\ud800`: valid JSON text.
        const text = withValueAt(route.validBody, path, jsonString(`${prefix}${poison}${suffix}`));
        const res = await sendAndCheck(route, text);
        expect(issueFields(res)).toContain(path.join('.'));
      }),
      fcOptions(30),
    );
  }, 60_000);
});

describe('SQL-looking strings', () => {
  const asciiWord = fc.string({ unit: fc.constantFrom(...'abcXYZ019 '.split('')), maxLength: 6 });
  const sqlName = fc
    .array(fc.oneof(fc.constantFrom(...SQL_FRAGMENTS), asciiWord), { minLength: 1, maxLength: 4 })
    .map((parts) => parts.join(''))
    .filter((name) => name.trim().length > 0);
  const localPart = fc.array(fc.constantFrom('a', 'b', '_', "'", '%', '\\', '.', '+', '-', '1'), { minLength: 1, maxLength: 8 }).map((chars) => chars.join(''));

  it('stores names and emails literally, and searches them literally (no LIKE wildcards, no injection)', async () => {
    await fc.assert(
      fc.asyncProperty(sqlName, localPart, fc.nat({ max: 3 }), async (name, local, cut) => {
        const email = `${local}@example.com`;
        const res = await sendAndCheck(bodyRoutes[0]!, jsonObject([['name', jsonString(name)], ['email', jsonString(email)]]));

        // Search by a piece of the name: the answer is exactly the contacts whose name contains it.
        const search = name.trim().slice(cut);
        const all = await app.t.prisma.contact.findMany({ orderBy: { id: 'asc' } });
        const bySearch = await app.http().get('/contacts').query({ search, limit: 200 }).timeout(REQUEST_TIMEOUT_MS);
        expect(bySearch.status).toBe(200);
        const needle = search.trim().toLowerCase();
        expect(bySearch.body.items.map((item: { id: number }) => item.id)).toEqual(
          all.filter((contact) => contact.name.toLowerCase().includes(needle)).map((contact) => contact.id),
        );

        // Filter by email: an exact match, `_` and `%` included.
        const byEmail = await app.http().get('/contacts').query({ email }).timeout(REQUEST_TIMEOUT_MS);
        if (res.status === 201 || res.status === 409) {
          expect(byEmail.status).toBe(200);
          const stored = email.trim().toLowerCase();
          expect(byEmail.body.items.map((item: { email: string }) => item.email)).toEqual(all.filter((c) => c.email === stored).map((c) => c.email));
          expect(byEmail.body.items).toHaveLength(1);
        } else {
          expectClientError(fromSupertest(byEmail), { status: 400, code: 'VALIDATION_ERROR' });
        }
      }),
      fcOptions(40),
    );
    await expectTablesIntact(app.t);
  }, 60_000);
});
