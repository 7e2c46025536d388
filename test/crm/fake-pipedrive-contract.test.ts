import { FakePipedrive } from '../../testkit/fake-pipedrive';
import { findOperation, PIPEDRIVE_OPERATIONS } from '../../testkit/pipedrive-contract';

/** The fake keeps Pipedrive's published contract (testkit/pipedrive-openapi/operations.json). */
let fake: FakePipedrive;
beforeAll(async () => {
  fake = await FakePipedrive.start();
});
afterAll(() => fake.close());
beforeEach(() => fake.reset());

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(`${fake.url}${path}`, {
    method,
    headers: { 'x-api-token': fake.token, ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { success: boolean; error?: string } };
}

/** Takes the violations recorded so far, so that the suite's after-each check sees none. */
const takeViolations = () => fake.contractViolations.splice(0);

describe('requests the documents reject', () => {
  it('are answered 400 and recorded, so that the test that sent them fails', async () => {
    const search = await call('GET', '/api/v2/persons/search?term=ada&exact_match=yes&fields=mail');
    expect(search.status).toBe(400);
    expect(search.body.error).toMatch(/fields must be one of .*exact_match must be true or false/);

    const update = await call('PATCH', '/api/v2/persons/abc', { name: 7, emails: 'ada@example.com' });
    expect(update.status).toBe(400);

    expect(takeViolations()).toEqual([
      'GET /api/v2/persons/search: query parameter fields must be one of custom_fields, email, notes, phone, name, got "mail"',
      'GET /api/v2/persons/search: query parameter exact_match must be true or false, got "yes"',
      'PATCH /api/v2/persons/abc: path parameter id must be an integer, got "abc"',
      'PATCH /api/v2/persons/abc: body/name must be string',
      'PATCH /api/v2/persons/abc: body/emails must be array',
    ]);
  });

  it('include calls to an operation the mirror has no business calling', async () => {
    expect((await call('GET', '/v1/persons')).status).toBe(404);
    expect(takeViolations()).toEqual(["GET /v1/persons: no such operation in Pipedrive's documents"]);
  });

  it('do not include requests that keep the contract', async () => {
    const created = await call('POST', '/api/v2/persons', { name: 'Ada', emails: [{ value: 'ada@example.com', primary: true, label: 'work' }] });
    expect(created.status).toBe(200);
    expect((await call('GET', '/api/v2/persons/search?term=ada%40example.com&fields=email&exact_match=true')).status).toBe(200);
    expect((await call('GET', '/v1/notes?person_id=1&sort=add_time%20DESC&limit=100')).status).toBe(200);
    expect(takeViolations()).toEqual([]);
  });
});

describe('the contract itself', () => {
  it('has every operation the mirror calls, with its token cost from x-token-cost', () => {
    expect(Object.fromEntries(PIPEDRIVE_OPERATIONS.map((op) => [`${op.method} ${op.path}`, op.tokenCost]))).toEqual({
      'GET /api/v2/persons': 10,
      'POST /api/v2/persons': 5,
      'GET /api/v2/persons/search': 20,
      'GET /api/v2/persons/{id}': 1,
      'PATCH /api/v2/persons/{id}': 5,
      'DELETE /api/v2/persons/{id}': 3,
      'PUT /v1/persons/{id}/merge': 40,
      'GET /v1/notes': 20,
      'POST /v1/notes': 10,
      'GET /v1/webhooks': 10,
      'POST /v1/webhooks': 10,
      'DELETE /v1/webhooks/{id}': 6,
    });
  });

  it('finds what an answer of the fake gets wrong, except the nulls Pipedrive is known to send', () => {
    const { operation } = findOperation('GET', '/api/v2/persons/search')!;
    expect(operation.responseProblems({ success: true, data: { items: [] }, additional_data: { next_cursor: null } })).toEqual([]);
    expect(operation.responseProblems({ success: 'yes', data: { items: [{ item: { id: 'one' } }] } })).toEqual([
      'response/success must be boolean',
      'response/data/items/0/item/id must be integer',
    ]);
  });
});

describe('limits and tokens', () => {
  const started: FakePipedrive[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((other) => other.close()));
  });
  async function limited(options: Parameters<typeof FakePipedrive.start>[0]) {
    const other = await FakePipedrive.start({ token: fake.token, ...options });
    started.push(other);
    return (method: string, path: string, body?: unknown) =>
      fetch(`${other.url}${path}`, {
        method,
        headers: { 'x-api-token': other.token, ...(body !== undefined && { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      }).then(async (res) => ({ status: res.status, headers: res.headers, body: (await res.json()) as { error?: string } }));
  }

  it('counts search in its own bucket of 10 per 2 s, apart from other calls', async () => {
    const send = await limited({ searchLimit: { limit: 10, windowMs: 60_000 } });
    const searches = [];
    for (let i = 0; i < 11; i += 1) searches.push((await send('GET', '/api/v2/persons/search?term=ada&fields=name')).status);
    expect(searches).toEqual([...Array(10).fill(200), 429]);
    expect((await send('GET', '/api/v2/persons/1')).status).toBe(404);
  });

  it('spends each operation’s tokens from the daily budget, then answers 429 until the day ends, with the token headers', async () => {
    const dayStartedBy = Date.now();
    const send = await limited({ dailyTokens: 30, dayMs: 4_000 });
    const create = await send('POST', '/api/v2/persons', { name: 'Ada' });
    expect(create.status).toBe(200);
    expect(create.headers.get('x-daily-ratelimit-token-remaining')).toBe('25');
    expect(create.headers.get('x-daily-ratelimit-token-limit')).toBe('30');
    expect((await send('GET', '/api/v2/persons/search?term=ada&fields=name')).status).toBe(200); // 20
    expect((await send('POST', '/api/v2/persons', { name: 'Grace' })).status).toBe(200); // 5: 30 spent
    const spent = await send('GET', '/api/v2/persons/1');
    expect(spent.status).toBe(429);
    expect(spent.body.error).toBe('Daily token budget exceeded');
    expect(spent.headers.get('x-daily-ratelimit-token-remaining')).toBe('0');

    await new Promise((resolve) => setTimeout(resolve, Math.max(0, dayStartedBy + 4_100 - Date.now())));
    expect((await send('GET', '/api/v2/persons/1')).status).toBe(200);
  });

  it('leaves the undocumented token headers out when told to, as Pipedrive is reported to do', async () => {
    const never = await limited({ tokenHeaders: 'never' });
    expect((await never('GET', '/api/v2/persons/1')).headers.get('x-daily-ratelimit-token-remaining')).toBeNull();
    const sometimes = await limited({ tokenHeaders: 'sometimes' });
    const seen = [];
    for (let i = 0; i < 4; i += 1) seen.push((await sometimes('GET', '/api/v2/persons/1')).headers.has('x-daily-ratelimit-token-remaining'));
    expect(seen).toEqual([true, false, true, false]);
  });

  it('answers a block with a 403 HTML page', async () => {
    fake.fault({ kind: 'blocked', times: 1 });
    const res = await fetch(`${fake.url}/api/v2/persons/1`, { headers: { 'x-api-token': fake.token } });
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(await res.text()).toMatch(/^<!DOCTYPE html>/);
  });
});
