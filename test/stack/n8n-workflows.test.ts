/**
 * The n8n workflows in n8n/ against this API, without n8n: their structure, every HTTP Request
 * node against the API's real routes and zod schemas, and their behaviour on each answer the API
 * can give (simulated, with stub answers checked against the API's response schemas). The last
 * part feeds deliberately broken copies to the checks, to show that they catch mistakes.
 */
import { PhoneNumbers } from '../../src/contacts/phone-numbers';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import {
  API_KEY_CREDENTIAL,
  apiRoutes,
  checkHttpNodeStatically,
  checkStructure,
  evaluateParameter,
  parseWorkflow,
  readWorkflowFiles,
  resolveRequest,
  simulate,
  type ApiRequest,
  type N8nNode,
  type N8nWorkflow,
  type Simulation,
  type Stubs,
} from './n8n-workflow-checker';

const routes = apiRoutes();
const env = { CONTACT_API_URL: 'http://api:8000' };
const files = readWorkflowFiles();

function load(file: string): N8nWorkflow {
  const found = files.find((candidate) => candidate.file === file);
  if (!found) throw new Error(`n8n/${file} is missing`);
  const { workflow, problems } = parseWorkflow(found.json);
  if (!workflow) throw new Error(`n8n/${file}: ${problems.join('; ')}`);
  return workflow;
}

const copy = (workflow: N8nWorkflow): N8nWorkflow => structuredClone(workflow);
function node(workflow: N8nWorkflow, name: string): N8nNode {
  const found = workflow.nodes.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no node "${name}"`);
  return found;
}
const httpNodes = (workflow: N8nWorkflow) => workflow.nodes.filter((candidate) => candidate.type === 'n8n-nodes-base.httpRequest');

// ---- API answers, in the API's own shapes (the simulator checks them against its schemas) ----

const timestamp = '2025-03-01T09:30:00.000Z';
/** The API's reading of a phone (no DEFAULT_PHONE_REGION), for the contacts the stub answers with. */
const PHONE_NUMBERS = new PhoneNumbers();
const contactJson = (id: number, fields: { name?: string; email?: string | null; phone?: string | null } = {}) => {
  const phone = fields.phone === undefined ? '+44 20 7946 0000' : fields.phone;
  return {
    id,
    name: fields.name ?? 'Ada Lovelace',
    email: fields.email === undefined ? 'ada@example.com' : fields.email,
    phone,
    phone_e164: phone && PHONE_NUMBERS.toE164(phone),
    crm_id: 9001,
    crm_deleted: false,
    sync_status: 'synced' as const,
    crm_synced_at: timestamp,
    crm_last_error: null,
    created_at: timestamp,
    updated_at: timestamp,
  };
};
const created = (request: ApiRequest) => {
  const body = request.body as { name: string; email?: string; phone?: string };
  const contact = contactJson(7, { name: body.name, email: body.email?.toLowerCase() ?? null, phone: body.phone ?? null });
  return { status: 201, body: { success: true, contact_id: 7, crm_id: 9001, sync_status: 'synced', contact } };
};
const apiError = (status: number, code: string, message: string, extra: Record<string, unknown> = {}) => ({
  status,
  body: { success: false, error: { code, message, ...extra } },
});
const validationError = apiError(400, 'VALIDATION_ERROR', 'Invalid request body', {
  details: [{ field: 'name', message: 'must not be empty' }],
});
const exists = (contactId: number) =>
  apiError(409, 'CONTACT_EXISTS', `A contact with this email already exists (contact ${contactId})`, { contact_id: contactId });
const down: Stubs[string] = { transportError: 'ECONNREFUSED' };
const rateLimitHeaders = { 'Retry-After': '42', RateLimit: '"600-in-1min"; r=0; t=42', 'RateLimit-Policy': '"600-in-1min"; q=600; w=60' };
const rateLimited = { ...apiError(429, 'RATE_LIMITED', 'Too many requests; retry after 42 seconds'), headers: rateLimitHeaders };
const keyInUse = apiError(409, 'IDEMPOTENCY_KEY_IN_USE', 'A request with this Idempotency-Key is still running');
const keyReused = apiError(422, 'IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used for another request');
const noteAdded = { status: 201, body: { success: true, message: 'Note added', note_id: 3, crm_note_id: null, sync_status: 'pending' } };
const updated = (request: ApiRequest) => {
  const { contact_id: id, fields } = request.body as { contact_id: number; fields: { name?: string } };
  return { status: 200, body: { success: true, message: 'Contact updated', contact: contactJson(id, fields) } };
};
/** The first call reaches the API but its answer is lost (reset); the next one, with the same key, gets it replayed. */
const answerLostOnce = (stub: Stubs[string]): Stubs[string] => {
  let calls = 0;
  return (request) => {
    if (++calls === 1) return { transportError: 'ECONNRESET' };
    return { ...(typeof stub === 'function' ? stub(request) : stub), headers: { 'Idempotent-Replayed': 'true' } };
  };
};
const NO_CREDENTIAL = 'Found credential with no ID.';

// ---- Scenarios: one webhook call each, the API's answers, and what the caller must get ----

interface Scenario {
  name: string;
  webhookBody: unknown;
  webhookHeaders?: Record<string, string>;
  /** A function for stubs that keep state (a fresh set for each run). */
  stubs: Stubs | (() => Stubs);
  credentialError?: string;
  /** Requests the API would reject (400), as expected by the scenario; none unless given. */
  rejected?: RegExp[];
  check(run: Simulation): void;
}

const ada = { name: 'Ada Lovelace', email: 'Ada@Example.com', phone: '+44 20 7946 0000' };
const EXECUTION_ID = '1001';
/** The key a workflow makes when its caller gives none: once per run, so the same on each try. */
const ownKey = (file: string) => new RegExp(`^n8n-${String(load(file).id)}-${EXECUTION_ID}-[a-z0-9]+$`);
const keysSent = (run: Simulation) => run.requests.map((request) => request.headers['idempotency-key']);

const scenarios: Record<string, Scenario[]> = {
  'create-contact.json': [
    {
      name: 'a new contact: the API answers 201, the caller gets 201 with the contact',
      webhookBody: ada,
      stubs: { 'POST /contact': created },
      check(run) {
        expect(run.calls).toEqual(['POST /contact']);
        expect(run.requests[0]?.body).toEqual(ada);
        expect(run.requests[0]?.headers).toEqual({ 'idempotency-key': expect.stringMatching(ownKey('create-contact.json')) });
        expect(run.response?.status).toBe(201);
        expect(run.response?.body).toMatchObject({ success: true, created: true, contact_id: 7, contact: { id: 7, email: 'ada@example.com' } });
      },
    },
    {
      name: "the caller's Idempotency-Key is the one sent",
      webhookBody: ada,
      webhookHeaders: { 'Idempotency-Key': 'form-4711' },
      stubs: { 'POST /contact': created },
      check(run) {
        expect(run.requests[0]?.headers).toEqual({ 'idempotency-key': 'form-4711' });
        expect(run.response?.status).toBe(201);
      },
    },
    {
      name: "a caller's Idempotency-Key the API refuses: passed on as it came, and the API's 400 with it",
      webhookBody: ada,
      webhookHeaders: { 'Idempotency-Key': 'form 4711' },
      stubs: { 'POST /contact': validationError },
      rejected: [/Idempotency-Key "form 4711": must be 1 to 255 visible ASCII characters/],
      check(run) {
        expect(run.response).toEqual({ status: 400, body: validationError.body });
      },
    },
    {
      name: 'only a name: email and phone are left out of the body',
      webhookBody: { name: 'Grace Hopper' },
      stubs: { 'POST /contact': created },
      check(run) {
        expect(run.requests[0]?.body).toEqual({ name: 'Grace Hopper' });
        expect(run.response?.status).toBe(201);
      },
    },
    {
      name: 'a form with blank email and phone: sent as "", which the API takes as none',
      webhookBody: { name: 'Grace Hopper', email: '', phone: '' },
      stubs: { 'POST /contact': created },
      check(run) {
        expect(run.requests[0]?.body).toEqual({ name: 'Grace Hopper', email: '', phone: '' });
        expect(run.response?.status).toBe(201);
      },
    },
    {
      name: 'the email is taken: 409 CONTACT_EXISTS, the contact is read by its id (without the key) and returned with 200',
      webhookBody: ada,
      stubs: {
        'POST /contact': exists(42),
        'GET /contact/:id': (request) => ({ status: 200, body: contactJson(Number(request.params.id)) }),
      },
      check(run) {
        expect(run.calls).toEqual(['POST /contact', 'GET /contact/42']);
        expect(run.requests[1]?.headers).toEqual({});
        expect(run.response?.status).toBe(200);
        expect(run.response?.body).toMatchObject({ success: true, created: false, contact_id: 42, crm_id: 9001, contact: { id: 42 } });
      },
    },
    {
      name: 'the existing contact was deleted meanwhile: the 404 is passed on',
      webhookBody: ada,
      stubs: { 'POST /contact': exists(42), 'GET /contact/:id': apiError(404, 'NOT_FOUND', 'Contact 42 not found') },
      check(run) {
        expect(run.calls).toEqual(['POST /contact', 'GET /contact/42']);
        expect(run.response).toEqual({ status: 404, body: { success: false, error: { code: 'NOT_FOUND', message: 'Contact 42 not found' } } });
      },
    },
    {
      name: 'the same key while its first request still runs: 409 IDEMPOTENCY_KEY_IN_USE is passed on, not taken for CONTACT_EXISTS',
      webhookBody: ada,
      webhookHeaders: { 'Idempotency-Key': 'form-4711' },
      stubs: { 'POST /contact': keyInUse },
      check(run) {
        expect(run.calls).toEqual(['POST /contact']);
        expect(run.response).toEqual({ status: 409, body: keyInUse.body });
      },
    },
    {
      name: 'the same key with another body: 422 IDEMPOTENCY_KEY_REUSED is passed on',
      webhookBody: ada,
      webhookHeaders: { 'Idempotency-Key': 'form-4711' },
      stubs: { 'POST /contact': keyReused },
      check(run) {
        expect(run.response).toEqual({ status: 422, body: keyReused.body });
      },
    },
    {
      name: 'the answer is lost: the retry sends the same key and the replayed 201 reaches the caller',
      webhookBody: ada,
      stubs: () => ({ 'POST /contact': answerLostOnce(created) }),
      check(run) {
        expect(run.calls).toEqual(['POST /contact', 'POST /contact']);
        const [first, second] = keysSent(run);
        expect(first).toMatch(ownKey('create-contact.json'));
        expect(second).toBe(first);
        expect(run.response?.status).toBe(201);
        expect(run.response?.body).toMatchObject({ created: true, contact_id: 7 });
      },
    },
    {
      name: 'rate limited: 429 with the API\'s Retry-After and RateLimit headers',
      webhookBody: ada,
      stubs: { 'POST /contact': rateLimited },
      check(run) {
        expect(run.response).toEqual({
          status: 429,
          body: rateLimited.body,
          headers: { 'retry-after': '42', ratelimit: rateLimitHeaders.RateLimit, 'ratelimit-policy': rateLimitHeaders['RateLimit-Policy'] },
        });
      },
    },
    {
      name: 'rate limited on the lookup after a 409: the same 429',
      webhookBody: ada,
      stubs: { 'POST /contact': exists(42), 'GET /contact/:id': rateLimited },
      check(run) {
        expect(run.calls).toEqual(['POST /contact', 'GET /contact/42']);
        expect(run.response?.status).toBe(429);
        expect(run.response?.headers).toMatchObject({ 'retry-after': '42' });
      },
    },
    {
      name: "invalid input: the API's 400 is passed on",
      webhookBody: { name: '', email: 'not-an-email' },
      stubs: { 'POST /contact': validationError },
      rejected: [/body .*: name: must not be empty; email: Invalid email address$/],
      check(run) {
        expect(run.calls).toEqual(['POST /contact']);
        expect(run.response).toEqual({ status: 400, body: validationError.body });
      },
    },
    {
      name: 'the API does not answer: three tries with one key, then 502 CONTACT_API_UNREACHABLE',
      webhookBody: ada,
      stubs: { 'POST /contact': down },
      check(run) {
        expect(run.calls).toEqual(['POST /contact', 'POST /contact', 'POST /contact']);
        expect(new Set(keysSent(run)).size).toBe(1);
        expect(run.response?.status).toBe(502);
        expect(run.response?.body).toEqual({
          success: false,
          error: { code: 'CONTACT_API_UNREACHABLE', message: 'The contact API did not answer: connect ECONNREFUSED' },
        });
      },
    },
    {
      name: 'no usable credential: 500 N8N_SETUP_ERROR with n8n\'s reason, not an unreachable API',
      webhookBody: ada,
      stubs: {},
      credentialError: NO_CREDENTIAL,
      check(run) {
        expect(run.calls).toEqual([]);
        expect(run.response).toEqual({
          status: 500,
          body: { success: false, error: { code: 'N8N_SETUP_ERROR', message: `n8n could not send the request to the contact API: ${NO_CREDENTIAL}` } },
        });
      },
    },
    {
      name: 'a proxy answers instead, without JSON: its status is passed on with an error body',
      webhookBody: ada,
      stubs: { 'POST /contact': { status: 503, body: '<html>Service Unavailable</html>', contentType: 'text/html' } },
      check(run) {
        expect(run.response).toEqual({
          status: 503,
          body: { success: false, error: { code: 'CONTACT_API_ERROR', message: 'The contact API answered HTTP 503' } },
        });
      },
    },
    {
      name: 'the lookup after a 409 does not get an answer: 502 (a lookup is not retried)',
      webhookBody: ada,
      stubs: { 'POST /contact': exists(42), 'GET /contact/:id': down },
      check(run) {
        expect(run.calls).toEqual(['POST /contact', 'GET /contact/42']);
        expect(run.response?.status).toBe(502);
      },
    },
  ],
  'add-note.json': [
    {
      name: 'a note: the API answers 201, and so does the webhook',
      webhookBody: { contact_id: 7, content: 'Wants a demo on Tuesday' },
      stubs: { 'POST /contact/note': noteAdded },
      check(run) {
        expect(run.requests[0]?.body).toEqual({ contact_id: 7, content: 'Wants a demo on Tuesday' });
        expect(run.requests[0]?.headers).toEqual({ 'idempotency-key': expect.stringMatching(ownKey('add-note.json')) });
        expect(run.response).toEqual(noteAdded);
      },
    },
    {
      name: "the caller's Idempotency-Key is the one sent",
      webhookBody: { contact_id: 7, content: 'Called back' },
      webhookHeaders: { 'idempotency-key': 'crm-call-88' },
      stubs: { 'POST /contact/note': noteAdded },
      check(run) {
        expect(run.requests[0]?.headers).toEqual({ 'idempotency-key': 'crm-call-88' });
      },
    },
    {
      name: 'the answer is lost: the retry sends the same key, and the note is not added twice',
      webhookBody: { contact_id: 7, content: 'Wants a demo on Tuesday' },
      stubs: () => ({ 'POST /contact/note': answerLostOnce(noteAdded) }),
      check(run) {
        const [first, second] = keysSent(run);
        expect(first).toMatch(ownKey('add-note.json'));
        expect(second).toBe(first);
        expect(run.response).toEqual(noteAdded);
      },
    },
    {
      name: 'the same key while its first request still runs: the 409 is passed on',
      webhookBody: { contact_id: 7, content: 'Hello' },
      webhookHeaders: { 'idempotency-key': 'crm-call-88' },
      stubs: { 'POST /contact/note': keyInUse },
      check(run) {
        expect(run.response).toEqual({ status: 409, body: keyInUse.body });
      },
    },
    {
      name: "a key the API does not know in the credential: the API's 401 is passed on",
      webhookBody: { contact_id: 7, content: 'Hello' },
      stubs: { 'POST /contact/note': apiError(401, 'UNAUTHORIZED', 'Missing or invalid API key') },
      check(run) {
        expect(run.response).toEqual({ status: 401, body: { success: false, error: { code: 'UNAUTHORIZED', message: 'Missing or invalid API key' } } });
      },
    },
    {
      name: 'no such contact: the 404 is passed on',
      webhookBody: { contact_id: 999, content: 'Hello' },
      stubs: { 'POST /contact/note': apiError(404, 'NOT_FOUND', 'Contact 999 not found') },
      check(run) {
        expect(run.response?.status).toBe(404);
        expect(run.response?.body).toMatchObject({ error: { code: 'NOT_FOUND' } });
      },
    },
    {
      name: 'no contact id: the API rejects it and its 400 is passed on',
      webhookBody: { content: 'Hello' },
      stubs: { 'POST /contact/note': apiError(400, 'VALIDATION_ERROR', 'Invalid request body') },
      rejected: [/contact_id: Invalid input: expected number, received undefined/],
      check(run) {
        expect(run.requests[0]?.body).toEqual({ content: 'Hello' });
        expect(run.response?.status).toBe(400);
      },
    },
    {
      name: 'rate limited: 429 with the Retry-After header',
      webhookBody: { contact_id: 7, content: 'Hello' },
      stubs: { 'POST /contact/note': rateLimited },
      check(run) {
        expect(run.response).toMatchObject({ status: 429, body: rateLimited.body, headers: { 'retry-after': '42' } });
      },
    },
    {
      name: 'the API does not answer: 502',
      webhookBody: { contact_id: 7, content: 'Hello' },
      stubs: { 'POST /contact/note': down },
      check(run) {
        expect(run.response?.status).toBe(502);
        expect(run.response?.body).toMatchObject({ error: { code: 'CONTACT_API_UNREACHABLE' } });
      },
    },
    {
      name: 'the credential was deleted: 500 N8N_SETUP_ERROR naming it',
      webhookBody: { contact_id: 7, content: 'Hello' },
      stubs: {},
      credentialError: 'Credential with ID "x" does not exist for type "httpHeaderAuth".',
      check(run) {
        expect(run.response?.status).toBe(500);
        expect(run.response?.body).toMatchObject({ error: { code: 'N8N_SETUP_ERROR', message: expect.stringMatching(/Credential with ID "x" does not exist/) } });
      },
    },
  ],
  'update-contact.json': [
    {
      name: 'changed fields: only those given are sent; null clears; the API answers 200, and so does the webhook',
      webhookBody: { contact_id: 7, name: 'Ada King', phone: null },
      stubs: {
        'PATCH /contact': {
          status: 200,
          body: { success: true, message: 'Contact updated', contact: contactJson(7, { name: 'Ada King', phone: null }) },
        },
      },
      check(run) {
        expect(run.calls).toEqual(['PATCH /contact']);
        expect(run.requests[0]?.body).toEqual({ contact_id: 7, fields: { name: 'Ada King', phone: null } });
        expect(run.requests[0]?.headers).toEqual({});
        expect(run.response?.status).toBe(200);
        expect(run.response?.body).toMatchObject({ success: true, contact: { name: 'Ada King', phone: null } });
      },
    },
    {
      name: "the new email belongs to another contact: the API's 409 is passed on",
      webhookBody: { contact_id: 7, email: 'grace@example.com' },
      stubs: { 'PATCH /contact': exists(8) },
      check(run) {
        expect(run.requests[0]?.body).toEqual({ contact_id: 7, fields: { email: 'grace@example.com' } });
        expect(run.response?.status).toBe(409);
        expect(run.response?.body).toMatchObject({ error: { code: 'CONTACT_EXISTS', contact_id: 8 } });
      },
    },
    {
      name: 'nothing to change: the API rejects it and its 400 is passed on',
      webhookBody: { contact_id: 7 },
      stubs: { 'PATCH /contact': apiError(400, 'VALIDATION_ERROR', 'Invalid request body') },
      rejected: [/fields: must name at least one of name, email, phone/],
      check(run) {
        expect(run.response?.status).toBe(400);
      },
    },
    {
      name: 'rate limited: 429 with the Retry-After header',
      webhookBody: { contact_id: 7, name: 'Ada King' },
      stubs: { 'PATCH /contact': rateLimited },
      check(run) {
        expect(run.response).toMatchObject({ status: 429, body: rateLimited.body, headers: { 'retry-after': '42' } });
      },
    },
    {
      name: 'the API does not answer: 502',
      webhookBody: { contact_id: 7, name: 'Ada King' },
      stubs: { 'PATCH /contact': down },
      check(run) {
        expect(run.calls).toEqual(['PATCH /contact']);
        expect(run.response?.status).toBe(502);
      },
    },
    {
      name: 'no usable credential: 500 N8N_SETUP_ERROR',
      webhookBody: { contact_id: 7, name: 'Ada King' },
      stubs: {},
      credentialError: NO_CREDENTIAL,
      check(run) {
        expect(run.response?.status).toBe(500);
        expect(run.response?.body).toMatchObject({ error: { code: 'N8N_SETUP_ERROR' } });
      },
    },
  ],
};

const run = (workflow: N8nWorkflow, scenario: Omit<Scenario, 'name' | 'check'>) =>
  simulate(workflow, {
    webhookBody: scenario.webhookBody,
    webhookHeaders: scenario.webhookHeaders,
    stubs: typeof scenario.stubs === 'function' ? scenario.stubs() : scenario.stubs,
    credentialError: scenario.credentialError,
    env,
    routes,
    executionId: EXECUTION_ID,
  });

function expectScenario(workflow: N8nWorkflow, scenario: Scenario): Simulation {
  const result = run(workflow, scenario);
  expect(result.problems).toEqual([]);
  expect(result.workflowError).toBeUndefined();
  const expected = scenario.rejected ?? [];
  expect(result.rejected).toHaveLength(expected.length);
  expected.forEach((pattern, index) => expect(result.rejected[index]).toMatch(pattern));
  scenario.check(result);
  return result;
}

describe('n8n workflows', () => {
  it('cover creating (with the 409 fallback), adding a note and updating', () => {
    expect(files.map(({ file }) => file)).toEqual(expect.arrayContaining(['create-contact.json', 'add-note.json', 'update-contact.json']));
  });

  it('have one id each (importing one file must not replace another workflow)', () => {
    const ids = files.map(({ json }) => parseWorkflow(json).workflow?.id);
    expect(new Set(ids).size).toBe(files.length);
  });

  describe.each(files.map(({ file, json }) => ({ file, json })))('n8n/$file', ({ file, json }) => {
    const { workflow, problems } = parseWorkflow(json);

    it('has the shape of an n8n 1.x export', () => {
      expect(problems).toEqual([]);
    });

    it('has an id as n8n makes them, and is one graph from one trigger, with credentials referenced, not included', () => {
      expect(checkStructure(workflow as N8nWorkflow)).toEqual([]);
    });

    it('calls only API routes, under $env.CONTACT_API_URL, with the API key credential', () => {
      const nodes = httpNodes(workflow as N8nWorkflow);
      expect(nodes.length).toBeGreaterThan(0);
      for (const httpNode of nodes) expect(checkHttpNodeStatically(httpNode, routes)).toEqual([]);
    });

    const own = scenarios[file] ?? [];
    if (own.length > 0) {
      it.each(own)('$name', (scenario) => {
        expectScenario(workflow as N8nWorkflow, scenario);
      });
    }

    it('has scenarios that run every node (so every request is checked against the API with data)', () => {
      const ran = new Set<string>();
      for (const scenario of own) for (const name of run(workflow as N8nWorkflow, scenario).ran) ran.add(name);
      const notRun = (workflow as N8nWorkflow).nodes.map(({ name }) => name).filter((name) => !ran.has(name));
      expect(notRun).toEqual([]);
    });
  });
});

// Forms send numbers as text; anything but digits must reach the API as it came, so that the API
// refuses it (Number() would make "0x1", true and [1] contact 1).
const takingContactId: { file: string; stubs: Stubs }[] = [
  { file: 'add-note.json', stubs: { 'POST /contact/note': noteAdded } },
  { file: 'update-contact.json', stubs: { 'PATCH /contact': updated } },
];
describe.each(takingContactId)('n8n/$file: the contact_id of the webhook', ({ file, stubs }) => {
  const workflow = load(file);
  const webhookBody = (contactId: unknown) => ({ contact_id: contactId, content: 'Called back', name: 'Ada King' });

  it.each([
    ['7', 7],
    ['007', 7],
    [7, 7],
  ])('%j is sent as %j', (given, expected) => {
    const result = run(workflow, { webhookBody: webhookBody(given), stubs });
    expect(result.problems).toEqual([]);
    expect(result.rejected).toEqual([]);
    expect(result.requests[0]?.body).toMatchObject({ contact_id: expected });
  });

  it.each(['0x1', '1e3', ' 7', '7.0', '-1', '', true, [1], null, { id: 7 }])('%j is sent unchanged, and the API refuses it', (given) => {
    const refusing = Object.fromEntries(Object.keys(stubs).map((key) => [key, validationError]));
    const result = run(workflow, { webhookBody: webhookBody(given), stubs: refusing });
    expect(result.problems).toEqual([]);
    expect(result.requests[0]?.body).toMatchObject({ contact_id: given });
    expect(result.rejected).toEqual([expect.stringMatching(/ contact_id: /)]);
    expect(result.response).toEqual({ status: 400, body: validationError.body });
  });
});

// Execution ids start again in a new n8n database (or another n8n instance): the key n8n makes must
// not repeat with them, or the API would replay an earlier call's answer instead of writing.
describe.each([
  { file: 'create-contact.json', webhookBody: ada, stubs: { 'POST /contact': created } },
  { file: 'add-note.json', webhookBody: { contact_id: 7, content: 'Called back' }, stubs: { 'POST /contact/note': noteAdded } },
] as { file: string; webhookBody: unknown; stubs: Stubs }[])('n8n/$file: the Idempotency-Key it makes', ({ file, ...call }) => {
  it('differs between two runs with the same execution id', () => {
    const [first, second] = [1, 2].map(() => run(load(file), call).requests[0]?.headers['idempotency-key']);
    expect(first).toMatch(ownKey(file));
    expect(second).toMatch(ownKey(file));
    expect(second).not.toBe(first);
  });
});

// The steps work only in this order: a workflow activated before its credential exists answers
// every call with an error, and activation from the command line needs a restart.
describe.each([
  {
    file: 'README.md',
    // The quick start builds the credential from the api container's API_KEYS.
    credential(text: string) {
      const code = /node -e '([^']*)'/.exec(text)?.[1] ?? '';
      const printed: string[] = [];
      vm.runInNewContext(code, { console: { log: (line: string) => printed.push(line) }, process: { env: { API_KEYS: ' key-one ,key-two' } } });
      return { credentials: JSON.parse(printed.join('')) as unknown, key: 'key-one' };
    },
  },
  {
    file: 'n8n/README.md',
    credential(text: string) {
      const json = /credential\.json <<'EOF'\n([\s\S]*?)\nEOF/.exec(text)?.[1] ?? '';
      return { credentials: JSON.parse(json) as unknown, key: "<one of the API's API_KEYS>" };
    },
  },
])('$file: the n8n set-up', ({ file, credential }) => {
  const text = readFileSync(path.resolve(__dirname, '../..', file), 'utf8');

  it('creates the credential (before the workflows) as the workflows refer to it', () => {
    const { credentials, key } = credential(text.slice(0, text.indexOf('import:credentials')));
    const { id, name, type, header } = API_KEY_CREDENTIAL;
    expect(credentials).toEqual([{ id, name, type, data: { name: header, value: key } }]);
  });

  it('imports the workflows after the credential, then activates each of them and restarts n8n', () => {
    const credentialStep = text.indexOf('import:credentials');
    const importStep = text.indexOf('import:workflow', credentialStep);
    const activation = /^for id in ([\w ]+); do .*update:workflow --id=\$id --active=true; done$/m.exec(text.slice(importStep));
    expect(credentialStep).toBeGreaterThan(-1);
    expect(importStep).toBeGreaterThan(credentialStep);
    expect(activation?.[1]?.split(' ').sort()).toEqual(files.map(({ json }) => parseWorkflow(json).workflow?.id).sort());
    expect(text.slice(importStep + (activation?.index ?? 0))).toMatch(/restart/);
  });
});

describe('n8n workflow checks catch mistakes', () => {
  const createContact = load('create-contact.json');
  const CREATE = 'POST /contact';
  const LOOKUP = 'GET /contact/:id (existing)';
  const SETUP_ERROR = 'n8n set-up error?';
  const staticProblems = (workflow: N8nWorkflow, name: string) => checkHttpNodeStatically(node(workflow, name), routes);
  const scenario = (start: string) => {
    const found = scenarios['create-contact.json']?.find(({ name }) => name.startsWith(start));
    if (!found) throw new Error(`no create-contact scenario "${start}…"`);
    return found;
  };
  const newContact = scenario('a new contact');
  const taken = scenario('the email is taken');

  it('a workflow id n8n would not make (too long for its varchar(16) columns), or none', () => {
    const broken = copy(createContact);
    broken.id = 'contactSyncCreate';
    expect(checkStructure(broken)).toEqual(['the workflow id "contactSyncCreate" must be 16 letters and digits, as n8n makes them']);
    delete broken.id;
    expect(checkStructure(broken)).toEqual([expect.stringMatching(/^the workflow id undefined must be/)]);
  });

  it('a creation without an Idempotency-Key, a lookup with one, and a key the API refuses', () => {
    const broken = copy(createContact);
    const create = node(broken, CREATE);
    const keyHeader = create.parameters.headerParameters;
    create.parameters.sendHeaders = false;
    expect(staticProblems(broken, CREATE)).toEqual([expect.stringMatching(/POST \/contact takes an Idempotency-Key header; send one/)]);
    Object.assign(node(broken, LOOKUP).parameters, { sendHeaders: true, headerParameters: keyHeader });
    expect(staticProblems(broken, LOOKUP)).toEqual([expect.stringMatching(/GET \/contact\/:id ignores Idempotency-Key; do not send one/)]);

    create.parameters.sendHeaders = true;
    create.parameters.headerParameters = { parameters: [{ name: 'Idempotency-Key', value: "={{ 'n8n run ' + $execution.id }}" }] };
    expect(run(broken, newContact).rejected).toEqual([expect.stringMatching(/Idempotency-Key "n8n run 1001": must be 1 to 255 visible ASCII/)]);
  });

  it('a 409 taken for CONTACT_EXISTS whatever its code', () => {
    const broken = copy(createContact);
    const exists = (node(broken, 'Created or exists?').parameters.rules as { values: { conditions: { conditions: unknown[] } }[] }).values[1];
    exists?.conditions.conditions.splice(1);
    const inUse = scenario('the same key while its first request still runs');
    const result = run(broken, inUse);
    // The lookup follows, with no contact id to look up.
    expect(result.problems).toEqual([expect.stringMatching(/no API route matches GET \/contact\/$/)]);
    expect(() => inUse.check(result)).toThrow();
  });

  it('a response header the API did not send (n8n would send "undefined")', () => {
    const broken = copy(createContact);
    const respond = node(broken, 'Respond: created (201)');
    (respond.parameters.options as Record<string, unknown>).responseHeaders = {
      entries: [{ name: 'Retry-After', value: "={{ $json.headers['retry-after'] }}" }],
    };
    expect(run(broken, newContact).problems).toEqual(['"Respond: created (201)" sends the retry-after header without a value']);
  });

  it('a path the API does not have', () => {
    const broken = copy(createContact);
    node(broken, CREATE).parameters.url = '={{ $env.CONTACT_API_URL }}/contacts';
    expect(staticProblems(broken, CREATE)).toEqual([expect.stringMatching(/no POST route for \/contacts; the API has GET there/)]);
    node(broken, CREATE).parameters.url = '={{ $env.CONTACT_API_URL }}/contacts/new';
    expect(staticProblems(broken, CREATE)).toEqual([expect.stringMatching(/no API route matches POST \/contacts\/new/)]);
    expect(run(broken, newContact).problems).toEqual([expect.stringMatching(/no API route matches POST \/contacts\/new/)]);
  });

  it('a wrong method', () => {
    const broken = copy(createContact);
    node(broken, CREATE).parameters.method = 'PUT';
    expect(staticProblems(broken, CREATE)).toEqual([expect.stringMatching(/no PUT route for \/contact; the API has POST, PATCH there/)]);
    node(broken, LOOKUP).parameters.method = 'POST';
    expect(staticProblems(broken, LOOKUP)).toEqual([expect.stringMatching(/no POST route for \/contact\/\{\{…\}\}; the API has GET, DELETE there/)]);
  });

  it('an unknown body field', () => {
    const broken = copy(createContact);
    node(broken, CREATE).parameters.jsonBody = "={{ JSON.stringify({ name: $json.body.name, email: $json.body.email, source: 'n8n' }) }}";
    expect(run(broken, newContact).rejected).toEqual([expect.stringMatching(/Unrecognized key: "source"/)]);
  });

  it('a body that is not valid JSON once the expressions are filled in', () => {
    const broken = copy(createContact);
    // Unquoted: fine while the template is read, not once a name is in it.
    node(broken, CREATE).parameters.jsonBody = '={ "name": {{ $json.body.name }} }';
    expect(run(broken, newContact).rejected).toEqual([expect.stringMatching(/not valid JSON once evaluated: \{ "name": Ada Lovelace \}/)]);
  });

  it('a body without a required field, and a body where none is taken', () => {
    const broken = copy(createContact);
    node(broken, CREATE).parameters.jsonBody = '={{ JSON.stringify({ email: $json.body.email }) }}';
    expect(run(broken, newContact).rejected).toEqual([expect.stringMatching(/name: Invalid input: expected string, received undefined/)]);
    Object.assign(node(broken, LOOKUP).parameters, { sendBody: true, specifyBody: 'json', jsonBody: '={}' });
    expect(staticProblems(broken, LOOKUP)).toEqual([expect.stringMatching(/GET \/contact\/:id takes no body/)]);
  });

  it('a path value that is not what the route takes', () => {
    const broken = copy(createContact);
    node(broken, LOOKUP).parameters.url = '={{ $env.CONTACT_API_URL }}/contact/{{ $json.body.error.code }}';
    expect(staticProblems(broken, LOOKUP)).toEqual([]);
    expect(run(broken, taken).rejected).toEqual([expect.stringMatching(/path \/contact\/CONTACT_EXISTS: id: must be a positive integer/)]);
    // A missing value leaves an empty segment, which names no route at all.
    node(broken, LOOKUP).parameters.url = '={{ $env.CONTACT_API_URL }}/contact/{{ $json.body.error.id }}';
    expect(run(broken, taken).problems).toEqual([expect.stringMatching(/no API route matches GET \/contact\//)]);
  });

  it('query parameters, checked by the route’s query schema', () => {
    const broken = copy(createContact);
    const lookup = node(broken, LOOKUP);
    const byEmail = (limit: string) =>
      Object.assign(lookup.parameters, {
        url: '={{ $env.CONTACT_API_URL }}/contacts',
        sendQuery: true,
        queryParameters: {
          parameters: [
            { name: 'email', value: "={{ $('Webhook: create contact').item.json.body.email }}" },
            { name: 'limit', value: limit },
          ],
        },
      });
    const webhookItem = { body: ada };
    const scope = { json: {}, env, outputs: new Map([['Webhook: create contact', webhookItem]]) };
    byEmail('1');
    expect(staticProblems(broken, LOOKUP)).toEqual([]);
    const { request, problems } = resolveRequest(lookup, scope, routes);
    expect(problems).toEqual([]);
    expect(request?.query).toEqual({ email: 'Ada@Example.com', limit: '1' });
    byEmail('500');
    expect(resolveRequest(lookup, scope, routes).problems).toEqual([expect.stringMatching(/limit: Too big/)]);
    // A route without a query schema takes no query at all.
    lookup.parameters.url = '={{ $env.CONTACT_API_URL }}/contact/{{ $json.body.error.contact_id }}';
    expect(staticProblems(broken, LOOKUP)).toEqual([expect.stringMatching(/takes no query parameters/)]);
  });

  it('a URL that does not come from CONTACT_API_URL', () => {
    const broken = copy(createContact);
    node(broken, CREATE).parameters.url = 'http://localhost:8000/contact';
    expect(staticProblems(broken, CREATE)).toEqual([expect.stringMatching(/URL must start with =\{\{ \$env.CONTACT_API_URL \}\}/)]);
  });

  it('a missing credential, another credential, and an API key in the workflow', () => {
    const broken = copy(createContact);
    const create = node(broken, CREATE);
    create.parameters.authentication = 'none';
    expect(staticProblems(broken, CREATE)).toEqual([expect.stringMatching(/must authenticate with the Header Auth credential/)]);
    create.parameters.authentication = 'genericCredentialType';
    create.credentials = { httpHeaderAuth: { id: null, name: 'Someone else' } };
    expect(staticProblems(broken, CREATE)).toEqual([expect.stringMatching(/uses the credential "Someone else"/)]);
    create.credentials = { httpHeaderAuth: { id: null, name: 'Contact sync API key' } };
    expect(staticProblems(broken, CREATE)).toEqual([expect.stringMatching(/refers to the credential by the id null; expected "yd8VE1PvDXGZjdwm"/)]);

    create.credentials = { httpHeaderAuth: { id: null, name: 'Contact sync API key', data: { name: 'x-api-key', value: 'secret' } } };
    expect(checkStructure(broken)).toEqual([expect.stringMatching(/credential httpHeaderAuth must be a reference \{ id, name \}/)]);
    create.credentials = { httpHeaderAuth: { id: null, name: 'Contact sync API key' } };
    Object.assign(create.parameters, { sendHeaders: true, headerParameters: { parameters: [{ name: 'x-api-key', value: 'k-123' }] } });
    expect(checkStructure(broken)).toEqual([expect.stringMatching(/sends the x-api-key header itself/)]);
  });

  it('broken structure: duplicate names, dangling connections, two triggers, extra outputs, unknown versions, missing fields', () => {
    const duplicate = copy(createContact);
    node(duplicate, 'Found?').name = 'Respond: API error';
    expect(checkStructure(duplicate)).toContainEqual('two nodes are named "Respond: API error"');

    const dangling = copy(createContact);
    dangling.connections['Found?'] = { main: [[{ node: 'Nowhere', type: 'main', index: 0 }], []] };
    expect(checkStructure(dangling)).toEqual(
      expect.arrayContaining(['"Found?" connects to "Nowhere", which is not a node', '"Respond: existing contact (200)" is not reachable from the trigger']),
    );

    const twoTriggers = copy(createContact);
    twoTriggers.nodes.push({ ...node(twoTriggers, 'Webhook: create contact'), id: 'another', name: 'Another webhook' });
    expect(checkStructure(twoTriggers)).toEqual(expect.arrayContaining([expect.stringMatching(/exactly one trigger node; found 2/)]));

    const tooManyOutputs = copy(createContact);
    tooManyOutputs.connections[SETUP_ERROR]?.main?.push([{ node: 'Respond: API error', type: 'main', index: 0 }]);
    expect(checkStructure(tooManyOutputs)).toEqual([`"${SETUP_ERROR}" has 2 output(s) but connections for 3`]);

    const oldIf = copy(createContact);
    node(oldIf, SETUP_ERROR).typeVersion = 1;
    expect(checkStructure(oldIf)).toEqual([expect.stringMatching(/n8n-nodes-base.if version 1 is not one these checks know/)]);

    const noTypeVersion = structuredClone(files.find(({ file }) => file === 'create-contact.json')?.json) as { nodes: Record<string, unknown>[] };
    delete noTypeVersion.nodes[1]?.typeVersion;
    expect(parseWorkflow(noTypeVersion).problems).toEqual([expect.stringMatching(/^nodes\.1\.typeVersion: /)]);
  });

  it('a 409 that does not lead to the lookup (outputs swapped)', () => {
    const broken = copy(createContact);
    const outputs = broken.connections['Created or exists?']?.main;
    if (!outputs) throw new Error('no switch connections');
    [outputs[0], outputs[1]] = [outputs[1] ?? [], outputs[0] ?? []];
    const result = run(broken, taken);
    expect(result.calls).toEqual(['POST /contact']);
    expect(() => taken.check(result)).toThrow();
  });

  it('stubs that do not match the API (so that scenarios cannot drift from it)', () => {
    const result = run(createContact, { webhookBody: ada, stubs: { 'POST /contact': { status: 201, body: { success: true, id: 7 } } } });
    expect(result.problems).toEqual([expect.stringMatching(/^stub: POST \/contact 201 body: contact_id: /)]);
    const undeclared = run(createContact, { webhookBody: ada, stubs: { 'POST /contact': apiError(418, 'TEAPOT', 'no') } });
    expect(undeclared.problems).toEqual([expect.stringMatching(/stub: POST \/contact does not answer 418/)]);
    const withoutHeaders = run(createContact, { webhookBody: ada, stubs: { 'POST /contact': { ...rateLimited, headers: {} } } });
    expect(withoutHeaders.problems).toContainEqual('stub: POST /contact 429 comes with the retry-after, ratelimit, ratelimit-policy headers');
    const addNote = load('add-note.json');
    const note = { webhookBody: { contact_id: 7, content: 'Hello' }, stubs: { 'POST /contact/note': exists(7) } };
    expect(run(addNote, note).problems).toEqual(['stub: POST /contact/note 409 is IDEMPOTENCY_KEY_IN_USE, not CONTACT_EXISTS']);
  });
});

describe('n8n expression evaluation (as the checks do it)', () => {
  const scope = { json: { body: { name: 'Ada', id: 7 } }, env, outputs: new Map<string, unknown>() };
  const inRun = { ...scope, run: { workflowId: 'AbCdEfGh12345678', executionId: '77' } };

  it('knows the run: $workflow.id and $execution.id', () => {
    expect(evaluateParameter("={{ 'n8n-' + $workflow.id + '-' + $execution.id }}", inRun)).toBe('n8n-AbCdEfGh12345678-77');
  });

  it('gives a lone expression its value, and joins text with expressions into a string', () => {
    expect(evaluateParameter('={{ $json.body.id }}', scope)).toBe(7);
    expect(evaluateParameter('={{ $env.CONTACT_API_URL }}/contact/{{ $json.body.id }}', scope)).toBe('http://api:8000/contact/7');
    expect(evaluateParameter('=/contact/{{ $json.body.missing }}', scope)).toBe('/contact/');
    expect(evaluateParameter('plain', scope)).toBe('plain');
  });

  it('refuses what the workflows may not use', () => {
    expect(() => evaluateParameter('={{ $env.PIPEDRIVE_API_KEY }}', scope)).toThrow(/read only \$env.CONTACT_API_URL/);
    expect(() => evaluateParameter('={{ $json.body.name.isEmpty() }}', scope)).toThrow(/isEmpty is not a function/);
    expect(() => evaluateParameter('={{ $workflow.id }}', scope)).toThrow(/\$workflow is not defined/);
    expect(() => evaluateParameter('={{ $execution.mode }}', inRun)).toThrow(/\$execution.mode is not available/);
    expect(() => evaluateParameter("={{ $('Nowhere').item.json }}", scope)).toThrow(/has not run/);
    expect(() => evaluateParameter('=id: {{ $json.body }}', scope)).toThrow(/object inside text/);
    // n8n ends the code at the first "}}": objects inside need a space between their braces.
    expect(() => evaluateParameter('={{ JSON.stringify({ a: { b: 1 }}) }}', scope)).toThrow();
  });
});
