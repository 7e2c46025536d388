import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import pino from 'pino';
import { PipedriveClient, type CallReport, type PipedriveClientOptions } from '../../src/crm/pipedrive-client';
import type { RateLimits } from '../../src/crm/shared-rate-limits';
import { CrmError, type CrmErrorKind } from '../../src/mirror/crm-gateway';
import { FakePipedrive, type RecordedRequest } from '../../testkit/fake-pipedrive';
import { findOperation } from '../../testkit/pipedrive-contract';

const TIMEOUT_MS = 400;
/** undici checks headers/body timeouts on a ~500 ms tick: they fire between TIMEOUT_MS and about TIMEOUT_MS + 1 s. */
const TIMEOUT_SLACK_MS = 1_200;

let fake: FakePipedrive;
let client: PipedriveClient;
let outcomes: ('ok' | CrmErrorKind)[] = [];
const logLines: string[] = [];

function clientFor(target: FakePipedrive, options: Partial<PipedriveClientOptions> = {}): PipedriveClient {
  return new PipedriveClient({
    apiToken: target.token,
    baseUrl: target.url,
    timeoutMs: TIMEOUT_MS,
    onOutcome: (outcome) => outcomes.push(outcome),
    ...options,
  });
}

beforeAll(async () => {
  fake = await FakePipedrive.start();
  client = clientFor(fake, { logger: pino({ level: 'debug' }, { write: (line: string) => logLines.push(line) }) });
});
beforeEach(() => {
  fake.reset();
  outcomes = [];
  logLines.length = 0;
});
afterAll(async () => {
  await client.close();
  await fake.close();
});

function onlyRequest(): RecordedRequest {
  expect(fake.requests).toHaveLength(1);
  const [request] = fake.requests;
  if (!request) throw new Error('no request recorded');
  return request;
}

async function crmFailure(promise: Promise<unknown>): Promise<CrmError> {
  const error: unknown = await promise.then(
    () => new Error('expected the call to fail'),
    (reason: unknown) => reason,
  );
  if (!(error instanceof CrmError)) throw error;
  return error;
}

describe('PipedriveClient requests', () => {
  it('creates a person with POST /api/v2/persons, the token in x-api-token and v2 email/phone objects', async () => {
    const person = await client.createPerson({ name: 'Ada Lovelace', email: 'ada@example.com', phone: '+44 20 7946 0000' });

    expect(person).toEqual({ id: expect.any(Number), updatedAt: expect.any(Date), addedAt: expect.any(Date), name: 'Ada Lovelace', emails: [{ value: 'ada@example.com', primary: true, label: 'work' }], phones: [{ value: '+44 20 7946 0000', primary: true, label: 'work' }] });
    const request = onlyRequest();
    expect(request).toMatchObject({
      method: 'POST',
      path: '/api/v2/persons',
      query: {},
      body: {
        name: 'Ada Lovelace',
        emails: [{ value: 'ada@example.com', primary: true, label: 'work' }],
        phones: [{ value: '+44 20 7946 0000', primary: true, label: 'work' }],
      },
    });
    expect(request.headers['x-api-token']).toBe(fake.token);
    expect(request.headers['content-type']).toBe('application/json');
    expect(fake.persons.get(person.id)).toMatchObject({ name: 'Ada Lovelace', emails: [{ value: 'ada@example.com' }] });
    expect(outcomes).toEqual(['ok']);
  });

  it('leaves emails and phones out of a new person that has none', async () => {
    const person = await client.createPerson({ name: 'Grace Hopper', email: null, phone: null });

    expect(onlyRequest().body).toEqual({ name: 'Grace Hopper' });
    expect(person).toEqual({ id: expect.any(Number), updatedAt: expect.any(Date), addedAt: expect.any(Date), name: 'Grace Hopper', emails: [], phones: [] });
  });

  it('updates with PATCH /api/v2/persons/{id} and sends only the given fields', async () => {
    const { id } = fake.seedPerson({ name: 'Ada', email: 'ada@example.com', phone: '+1 202 555 0100' });

    await expect(client.updatePerson(id, { name: 'Ada King' })).resolves.toEqual({
      id,
      updatedAt: expect.any(Date),
      addedAt: expect.any(Date),
      name: 'Ada King',
      emails: [{ value: 'ada@example.com', primary: true, label: 'work' }],
      phones: [{ value: '+1 202 555 0100', primary: true, label: 'work' }],
    });
    await client.updatePerson(id, { emails: [{ value: 'countess@example.com', primary: true, label: 'work' }] });

    expect(fake.requests.map(({ method, path, body }) => ({ method, path, body }))).toEqual([
      { method: 'PATCH', path: `/api/v2/persons/${id}`, body: { name: 'Ada King' } },
      { method: 'PATCH', path: `/api/v2/persons/${id}`, body: { emails: [{ value: 'countess@example.com', primary: true, label: 'work' }] } },
    ]);
    expect(fake.persons.get(id)).toMatchObject({ name: 'Ada King', emails: [{ value: 'countess@example.com' }], phones: [{ value: '+1 202 555 0100' }] });
  });

  it('clears email and phone with empty lists', async () => {
    const { id } = fake.seedPerson({ name: 'Ada', email: 'ada@example.com', phone: '+1 202 555 0100' });

    const updated = await client.updatePerson(id, { emails: [], phones: [] });

    expect(onlyRequest().body).toEqual({ emails: [], phones: [] });
    expect(updated).toEqual({ id, updatedAt: expect.any(Date), addedAt: expect.any(Date), name: 'Ada', emails: [], phones: [] });
    expect(fake.persons.get(id)).toMatchObject({ emails: [], phones: [] });
  });

  it('finds a person with an exact-match search on one field, mapping the string lists of search results', async () => {
    fake.seedPerson({ name: 'Someone Else', email: 'else@example.com' });
    const ada = fake.seedPerson({ name: 'Ada Lovelace', email: 'ada@example.com', phone: '+44 20 7946 0000' });

    const found = await client.findPerson('email', 'ADA@example.com');

    // A search result's items are plain strings: no labels, the first primary.
    expect(found).toEqual({
      id: ada.id,
      name: 'Ada Lovelace',
      emails: [{ value: 'ada@example.com', primary: true, label: '' }],
      phones: [{ value: '+44 20 7946 0000', primary: true, label: '' }],
    });
    const request = onlyRequest();
    expect(request).toMatchObject({
      method: 'GET',
      path: '/api/v2/persons/search',
      query: { term: 'ADA@example.com', fields: 'email', exact_match: 'true' },
      body: undefined,
    });
    expect(request.headers['x-api-token']).toBe(fake.token);
  });

  it('searches by phone (encoding the term) and by name, and answers null when nothing matches', async () => {
    const ada = fake.seedPerson({ name: 'Ada Lovelace', email: 'ada@example.com', phone: '+44 20 7946 0000' });

    await expect(client.findPerson('phone', '+44 20 7946 0000')).resolves.toMatchObject({ id: ada.id });
    await expect(client.findPerson('name', 'ada lovelace')).resolves.toMatchObject({ id: ada.id });
    await expect(client.findPerson('email', 'ada@example')).resolves.toBeNull();
    await expect(client.findPerson('name', 'ada@example.com')).resolves.toBeNull();

    expect(fake.requests.map((request) => request.query)).toEqual([
      { term: '+44 20 7946 0000', fields: 'phone', exact_match: 'true' },
      { term: 'ada lovelace', fields: 'name', exact_match: 'true' },
      { term: 'ada@example', fields: 'email', exact_match: 'true' },
      { term: 'ada@example.com', fields: 'name', exact_match: 'true' },
    ]);
    expect(outcomes).toEqual(['ok', 'ok', 'ok', 'ok']);
  });

  it('lists persons a page at a time with GET /api/v2/persons, from a cursor, updated since a time', async () => {
    const [ada, grace, hedy] = ['Ada', 'Grace', 'Hedy'].map((name) => fake.seedPerson({ name }));
    fake.deletePerson(hedy!.id);

    const first = await client.listPersons({ limit: 1 });
    expect(first.persons.map((p) => p.name)).toEqual(['Ada']);
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = await client.listPersons({ limit: 1, cursor: first.nextCursor! });
    // The deleted person is left out, so Grace's page is the last.
    expect(second).toEqual({ persons: [expect.objectContaining({ id: grace!.id, updatedAt: expect.any(Date) })], nextCursor: null });

    const future = await client.listPersons({ limit: 500, updatedSince: new Date(Date.now() + 60_000) });
    expect(future.persons).toEqual([]);
    expect(fake.requests.map((r) => r.query)).toEqual([
      { limit: '1' },
      { limit: '1', cursor: first.nextCursor },
      { limit: '500', updated_since: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) },
    ]);
    expect(ada!.id).toBeLessThan(grace!.id);
  });

  it('gets a person with GET /api/v2/persons/{id}, its items in the order Pipedrive keeps, with their labels and primary flags', async () => {
    const { id } = fake.seedPerson({ name: 'Ada', email: 'ada@example.com' });
    fake.persons.get(id)?.emails.unshift({ value: 'old@example.com', primary: false, label: 'home' });

    const person = await client.getPerson(id);

    expect(person).toEqual({
      id,
      updatedAt: new Date(fake.persons.get(id)!.update_time),
      addedAt: new Date(fake.persons.get(id)!.add_time),
      name: 'Ada',
      emails: [
        { value: 'old@example.com', primary: false, label: 'home' },
        { value: 'ada@example.com', primary: true, label: 'work' },
      ],
      phones: [],
    });
    expect(onlyRequest()).toMatchObject({ method: 'GET', path: `/api/v2/persons/${id}`, body: undefined });
  });

  it('answers null for a person that does not exist or is flagged deleted, as a successful outcome', async () => {
    const { id } = fake.seedPerson({ name: 'Gone' });
    const person = fake.persons.get(id);
    if (person) person.is_deleted = true;

    await expect(client.getPerson(987654)).resolves.toBeNull();
    await expect(client.getPerson(id)).resolves.toBeNull();
    expect(outcomes).toEqual(['ok', 'ok']);
  });

  it('adds a note with POST /v1/notes', async () => {
    const { id: personId } = fake.seedPerson({ name: 'Ada' });

    const note = await client.addNote(personId, 'Met at the conference');

    expect(fake.notes.get(note.id)).toEqual({ id: note.id, content: 'Met at the conference', person_id: personId });
    const request = onlyRequest();
    expect(request).toMatchObject({ method: 'POST', path: '/v1/notes', body: { content: 'Met at the conference', person_id: personId } });
    expect(request.headers['x-api-token']).toBe(fake.token);
  });

  it('finds a person’s recent notes by exact content, newest first, with GET /v1/notes', async () => {
    const { id: personId } = fake.seedPerson({ name: 'Ada' });
    const { id: otherId } = fake.seedPerson({ name: 'Grace' });
    await expect(client.findNotes(personId, 'Called')).resolves.toEqual([]);
    const first = await client.addNote(personId, 'Called');
    await client.addNote(personId, 'Called back');
    await client.addNote(otherId, 'Called');
    const second = await client.addNote(personId, 'Called');
    fake.requests.length = 0;

    await expect(client.findNotes(personId, 'Called')).resolves.toEqual([second.id, first.id]);
    expect(onlyRequest()).toMatchObject({
      method: 'GET',
      path: '/v1/notes',
      query: { person_id: String(personId), sort: 'add_time DESC', limit: '100' },
    });
  });

  it('reports validation failures of Pipedrive as rejected, with its error text', async () => {
    const noPerson = await crmFailure(client.addNote(424242, 'orphan'));
    const noName = await crmFailure(client.createPerson({ name: ' ', email: null, phone: null }));
    const unknownPerson = await crmFailure(client.updatePerson(424242, { name: 'Nobody' }));

    expect(noPerson).toMatchObject({ kind: 'rejected', status: 400, message: expect.stringContaining('Pipedrive POST /v1/notes: 400 Person not found') });
    expect(noName).toMatchObject({ kind: 'rejected', status: 400, message: expect.stringContaining('Validation failed: name') });
    expect(unknownPerson).toMatchObject({ kind: 'rejected', status: 404, message: expect.stringContaining('Pipedrive PATCH /api/v2/persons/424242: 404') });
    expect([noPerson, noName, unknownPerson].map((error) => error.retryable)).toEqual([false, false, false]);
    expect(outcomes).toEqual(['rejected', 'rejected', 'rejected']);
  });
});

describe('PipedriveClient failures', () => {
  it.each([
    [500, 'unavailable'],
    [502, 'unavailable'],
    [503, 'unavailable'],
    [401, 'unauthorized'],
    [403, 'unauthorized'],
    [400, 'rejected'],
    [404, 'rejected'],
    [410, 'rejected'],
    [422, 'rejected'],
  ] as const)('classifies %i as %s, keeping method, path and Pipedrive error text', async (status, kind) => {
    fake.fault({ kind: 'status', status });

    const error = await crmFailure(client.createPerson({ name: 'Ada', email: null, phone: null }));

    expect(error).toMatchObject({ name: 'CrmError', kind, status });
    expect(error.message).toMatch(new RegExp(`^Pipedrive POST /api/v2/persons: ${status} .+ \\(Please check developers\\.pipedrive\\.com`));
    expect(error.retryable).toBe(kind === 'unavailable');
    expect(outcomes).toEqual([kind]);
  });

  it('backs off like a 429 after a 403 that is an HTML page (a block for calling on), not a refused token', async () => {
    fake.fault({ kind: 'blocked', times: 1 });

    const error = await crmFailure(client.getPerson(1));

    expect(error).toMatchObject({ name: 'CrmError', kind: 'rate_limited', status: 403, retryAfterMs: 60_000 });
    expect(error.message).toMatch(/403 blocked \(an HTML page/);
    expect(error.retryable).toBe(true);
    expect(outcomes).toEqual(['rate_limited']);
  });

  it('classifies a wrong token as unauthorized without revealing it', async () => {
    const wrong = clientFor(fake, { apiToken: 'not-the-token-3f9a' });
    try {
      const error = await crmFailure(wrong.getPerson(1));
      expect(error).toMatchObject({ kind: 'unauthorized', status: 401, message: expect.stringContaining('unauthorized access') });
      expect(error.message).not.toContain('not-the-token-3f9a');
    } finally {
      await wrong.close();
    }
  });

  it('classifies 429 as rate_limited, waiting as long as Retry-After says in seconds', async () => {
    fake.fault({ kind: 'status', status: 429, retryAfterSeconds: 3 });

    const error = await crmFailure(client.getPerson(1));

    expect(error).toMatchObject({ kind: 'rate_limited', status: 429, retryAfterMs: 3000 });
    expect(error.retryable).toBe(true);
    expect(outcomes).toEqual(['rate_limited']);
  });

  it('reads Retry-After as an HTTP date too', async () => {
    fake.fault({ kind: 'status', status: 429, headers: { 'retry-after': new Date(Date.now() + 5000).toUTCString() } });

    const error = await crmFailure(client.getPerson(1));

    expect(error.retryAfterMs).toBeGreaterThan(3000);
    expect(error.retryAfterMs).toBeLessThanOrEqual(5000);
  });

  it('falls back to x-ratelimit-reset, then to two seconds', async () => {
    fake.fault({ kind: 'status', status: 429, times: 1, headers: { 'x-ratelimit-reset': '7' } });
    fake.fault({ kind: 'status', status: 429, times: 1, headers: { 'x-ratelimit-reset': '' } });

    const withReset = await crmFailure(client.getPerson(1));
    const withNothing = await crmFailure(client.getPerson(1));

    expect(withReset).toMatchObject({ kind: 'rate_limited', retryAfterMs: 7000 });
    expect(withNothing).toMatchObject({ kind: 'rate_limited', retryAfterMs: 2000 });
  });

  it('tells its rate limits which calls are searches, what the answers said, and how long a 429 holds calls back', async () => {
    const seen: unknown[] = [];
    const rateLimits: RateLimits = {
      acquire: async (call) => void seen.push(['acquire', call.search]),
      update: (headers) => void seen.push(['update', headers['x-ratelimit-limit']]),
      pause: (ms) => void seen.push(['pause', ms]),
    };
    const limited = clientFor(fake, { rateLimits });
    try {
      await limited.findPerson('email', 'ada@example.com');
      fake.fault({ kind: 'status', status: 429, retryAfterSeconds: 3, times: 1 });
      await crmFailure(limited.getPerson(1));
      expect(seen).toEqual([
        ['acquire', true],
        ['update', expect.any(String)],
        ['acquire', false],
        ['update', expect.any(String)],
        ['pause', 3000],
      ]);
    } finally {
      await limited.close();
    }
  });

  it.each([
    ['a 200 that is not JSON', 200, '<html>maintenance</html>', 'response is not a Pipedrive JSON envelope'],
    ['a 200 envelope without success', 200, '{"data":{"id":1,"name":"Ada"}}', 'response is not a Pipedrive JSON envelope'],
    ['a 200 with an unexpected data shape', 200, '{"success":true,"data":{"id":"1","name":"Ada"}}', 'unexpected response data shape'],
    ['an HTML 502 from a proxy', 502, '<html>Bad gateway</html>', '502 response is not a Pipedrive JSON envelope'],
  ])('reports %s as unavailable', async (_case, status, body, message) => {
    fake.fault({ kind: 'status', status, body });

    const error = await crmFailure(client.getPerson(1));

    expect(error).toMatchObject({ kind: 'unavailable', message: expect.stringContaining(message) });
    expect(outcomes).toEqual(['unavailable']);
  });

  it('times out a request that never gets an answer', async () => {
    fake.fault({ kind: 'hang' });
    const started = Date.now();

    const error = await crmFailure(client.getPerson(1));

    expect(Date.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + TIMEOUT_SLACK_MS);
    expect(error).toMatchObject({ kind: 'unavailable', message: expect.stringMatching(/^Pipedrive GET \/api\/v2\/persons\/1: UND_ERR_HEADERS_TIMEOUT/) });
    expect(outcomes).toEqual(['unavailable']);
  });

  it('answers normally after latency within the timeout, and times out beyond it', async () => {
    const { id } = fake.seedPerson({ name: 'Ada' });
    fake.fault({ kind: 'latency', ms: 100, times: 1 });
    fake.fault({ kind: 'latency', ms: TIMEOUT_MS + TIMEOUT_SLACK_MS, times: 1 });

    await expect(client.getPerson(id)).resolves.toMatchObject({ id });
    await expect(crmFailure(client.getPerson(id))).resolves.toMatchObject({ kind: 'unavailable' });
    expect(outcomes).toEqual(['ok', 'unavailable']);
  });

  it('reports a dropped connection as unavailable', async () => {
    fake.fault({ kind: 'drop', times: 1 });

    const error = await crmFailure(client.createPerson({ name: 'Ada', email: null, phone: null }));

    expect(error).toMatchObject({ kind: 'unavailable', message: expect.stringContaining('UND_ERR_SOCKET') });
    expect(fake.persons.size).toBe(0);
  });

  it('reports a lost response as unavailable although Pipedrive did the work', async () => {
    fake.fault({ kind: 'lose-response', times: 1 });

    const error = await crmFailure(client.createPerson({ name: 'Ada', email: 'ada@example.com', phone: null }));

    expect(error.kind).toBe('unavailable');
    expect([...fake.persons.values()]).toEqual([expect.objectContaining({ name: 'Ada', emails: [expect.objectContaining({ value: 'ada@example.com' })] })]);
    await expect(client.findPerson('email', 'ada@example.com')).resolves.toMatchObject({ name: 'Ada' });
  });

  it('applies a fault only to the requests it matches, as many times as asked', async () => {
    const { id } = fake.seedPerson({ name: 'Ada' });
    fake.fault({ kind: 'status', status: 503, times: 1, match: { method: 'GET', path: /^\/api\/v2\/persons\/\d+$/ } });

    await client.findPerson('name', 'Ada');
    await expect(crmFailure(client.getPerson(id))).resolves.toMatchObject({ kind: 'unavailable', status: 503 });
    await client.getPerson(id);

    expect(outcomes).toEqual(['ok', 'unavailable', 'ok']);
  });

  it('reports a refused connection as unavailable', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const unreachable = new PipedriveClient({ apiToken: 'secret', baseUrl: `http://127.0.0.1:${port}`, timeoutMs: TIMEOUT_MS });
    try {
      const error = await crmFailure(unreachable.getPerson(1));
      expect(error).toMatchObject({ kind: 'unavailable', message: expect.stringContaining('ECONNREFUSED') });
    } finally {
      await unreachable.close();
    }
  });
});

describe('PipedriveClient token hygiene', () => {
  it('sends the token only in the x-api-token header: not in URLs, error messages, logs or the client itself', async () => {
    const { id } = fake.seedPerson({ name: 'Ada', email: 'ada@example.com' });
    const messages: string[] = [];
    await client.findPerson('email', 'ada@example.com');
    await client.getPerson(id);
    await client.addNote(id, 'hello');
    for (const status of [401, 422, 500]) {
      fake.fault({ kind: 'status', status, times: 1 });
      messages.push((await crmFailure(client.updatePerson(id, { name: 'Ada K' }))).message);
    }
    fake.fault({ kind: 'hang', times: 1 });
    messages.push((await crmFailure(client.getPerson(id))).message);

    expect(fake.requests.every((request) => request.headers['x-api-token'] === fake.token)).toBe(true);
    const urls = fake.requests.map((request) => `${request.path}?${new URLSearchParams(request.query).toString()}`);
    expect(urls.join('\n')).not.toContain(fake.token);
    expect(messages.join('\n')).not.toContain(fake.token);
    expect(logLines.length).toBeGreaterThanOrEqual(fake.requests.length);
    expect(logLines.join('')).not.toContain(fake.token);
    expect(inspect(client, { depth: 6 })).not.toContain(fake.token);
  });

  it('keeps search terms (e-mail addresses, phone numbers) out of error messages and logs', async () => {
    fake.fault({ kind: 'status', status: 500 });

    const error = await crmFailure(client.findPerson('email', 'private@example.com'));

    expect(error.message).toBe('Pipedrive GET /api/v2/persons/search: 500 Internal Server Error (Please check developers.pipedrive.com for more information about Pipedrive API.)');
    expect(logLines.join('')).not.toContain('private@example.com');
  });
});

describe('PipedriveClient under a burst limit', () => {
  let limited: FakePipedrive;
  beforeAll(async () => {
    limited = await FakePipedrive.start({ rateLimit: { limit: 5, windowMs: 1000 } });
  });
  beforeEach(() => limited.reset());
  afterAll(() => limited.close());

  /** `total` getPerson calls through `target`, `concurrency` at a time; their outcomes land in `outcomes`. */
  async function burst(target: PipedriveClient, id: number, total: number, concurrency: number): Promise<void> {
    let started = 0;
    const worker = async () => {
      while (started < total) {
        started += 1;
        await target.getPerson(id).catch(() => undefined);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }

  it('meets 429s without a rate limiter (the fake enforces the limit)', async () => {
    const { id } = limited.seedPerson({ name: 'Ada' });
    const unlimited = clientFor(limited);
    try {
      await burst(unlimited, id, 12, 4);
      expect(outcomes).toContain('rate_limited');
      const rejections = [...limited.rejectionsPerWindow().values()].reduce((sum, count) => sum + count, 0);
      expect(rejections).toBe(outcomes.filter((outcome) => outcome === 'rate_limited').length);
    } finally {
      await unlimited.close();
    }
  });
});

describe('PipedriveClient and the daily token budget', () => {
  it('reports each call’s token cost and the tokens Pipedrive says are left, and tells a spent budget from the burst limit', async () => {
    const limited = await FakePipedrive.start({ token: fake.token, dailyTokens: 6 });
    const reports: CallReport[] = [];
    const budgeted = clientFor(limited, { onOutcome: (_outcome, call) => reports.push(call) });
    try {
      await budgeted.createPerson({ name: 'Ada', email: null, phone: null });
      await budgeted.getPerson(1);
      const error = await crmFailure(budgeted.getPerson(1));

      expect(error).toMatchObject({ kind: 'rate_limited', status: 429, dailyBudgetSpent: true, retryAfterMs: undefined });
      expect(error.message).toMatch(/the daily token budget is spent/);
      expect(reports.map(({ path, tokenCost, tokens }) => ({ path, tokenCost, tokens }))).toEqual([
        { path: '/api/v2/persons', tokenCost: 5, tokens: { limit: 6, left: 1 } },
        { path: '/api/v2/persons/1', tokenCost: 1, tokens: { limit: 6, left: 0 } },
        { path: '/api/v2/persons/1', tokenCost: 0, tokens: { limit: 6, left: 0 } },
      ]);
    } finally {
      await budgeted.close();
      await limited.close();
    }
  });

  it('charges each call the x-token-cost of its operation in Pipedrive’s documents', async () => {
    const reports: CallReport[] = [];
    const counted = clientFor(fake, { onOutcome: (_outcome, call) => reports.push(call) });
    try {
      const person = await counted.createPerson({ name: 'Ada', email: 'ada@example.com', phone: null });
      await counted.updatePerson(person.id, { name: 'Ada King' });
      await counted.getPerson(person.id);
      await counted.findPerson('email', 'ada@example.com');
      await counted.addNote(person.id, 'Called');
      await counted.findNotes(person.id, 'Called');
      await counted.listPersons({ limit: 500 });
    } finally {
      await counted.close();
    }
    for (const report of reports) {
      const found = findOperation(report.method, report.path);
      expect({ call: `${report.method} ${report.path}`, cost: report.tokenCost }).toEqual({ call: `${report.method} ${report.path}`, cost: found?.operation.tokenCost });
    }
    expect(reports).toHaveLength(7);
  });
});
