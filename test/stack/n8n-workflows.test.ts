/**
 * The n8n workflows in n8n/ against this API, without n8n: their structure, every HTTP Request
 * node against the API's real routes and zod schemas, and their behaviour on each answer the API
 * can give (simulated, with stub answers checked against the API's response schemas). The last
 * part feeds deliberately broken copies to the checks, to show that they catch mistakes.
 */
import {
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
const contactJson = (id: number, fields: { name?: string; email?: string | null; phone?: string | null } = {}) => ({
  id,
  name: fields.name ?? 'Ada Lovelace',
  email: fields.email === undefined ? 'ada@example.com' : fields.email,
  phone: fields.phone === undefined ? '+44 20 7946 0000' : fields.phone,
  crm_id: 9001,
  sync_status: 'synced' as const,
  crm_synced_at: timestamp,
  crm_last_error: null,
  created_at: timestamp,
  updated_at: timestamp,
});
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

// ---- Scenarios: one webhook call each, the API's answers, and what the caller must get ----

interface Scenario {
  name: string;
  webhookBody: unknown;
  stubs: Stubs;
  /** Requests the API would reject (400), as expected by the scenario; none unless given. */
  rejected?: RegExp[];
  check(run: Simulation): void;
}

const ada = { name: 'Ada Lovelace', email: 'Ada@Example.com', phone: '+44 20 7946 0000' };

const scenarios: Record<string, Scenario[]> = {
  'create-contact.json': [
    {
      name: 'a new contact: the API answers 201, the caller gets 201 with the contact',
      webhookBody: ada,
      stubs: { 'POST /contact': created },
      check(run) {
        expect(run.calls).toEqual(['POST /contact']);
        expect(run.requests[0]?.body).toEqual(ada);
        expect(run.response?.status).toBe(201);
        expect(run.response?.body).toMatchObject({ success: true, created: true, contact_id: 7, contact: { id: 7, email: 'ada@example.com' } });
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
      name: 'the email is taken: 409 CONTACT_EXISTS, the contact is read by its id and returned with 200',
      webhookBody: ada,
      stubs: {
        'POST /contact': exists(42),
        'GET /contact/:id': (request) => ({ status: 200, body: contactJson(Number(request.params.id)) }),
      },
      check(run) {
        expect(run.calls).toEqual(['POST /contact', 'GET /contact/42']);
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
      name: 'the API does not answer: 502 CONTACT_API_UNREACHABLE',
      webhookBody: ada,
      stubs: { 'POST /contact': down },
      check(run) {
        expect(run.response?.status).toBe(502);
        expect(run.response?.body).toEqual({
          success: false,
          error: { code: 'CONTACT_API_UNREACHABLE', message: 'The contact API did not answer: connect ECONNREFUSED' },
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
      name: 'the lookup after a 409 does not get an answer: 502',
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
      stubs: {
        'POST /contact/note': { status: 201, body: { success: true, message: 'Note added', note_id: 3, crm_note_id: null, sync_status: 'pending' } },
      },
      check(run) {
        expect(run.requests[0]?.body).toEqual({ contact_id: 7, content: 'Wants a demo on Tuesday' });
        expect(run.response).toEqual({
          status: 201,
          body: { success: true, message: 'Note added', note_id: 3, crm_note_id: null, sync_status: 'pending' },
        });
      },
    },
    {
      name: 'a contact id sent as text (a form): sent to the API as a number',
      webhookBody: { contact_id: '7', content: 'Called back' },
      stubs: {
        'POST /contact/note': { status: 201, body: { success: true, message: 'Note added', note_id: 4, crm_note_id: 77, sync_status: 'synced' } },
      },
      check(run) {
        expect(run.requests[0]?.body).toEqual({ contact_id: 7, content: 'Called back' });
        expect(run.response?.status).toBe(201);
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
      rejected: [/contact_id: Invalid input: expected number, received null/],
      check(run) {
        expect(run.response?.status).toBe(400);
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
      name: 'the API does not answer: 502',
      webhookBody: { contact_id: 7, name: 'Ada King' },
      stubs: { 'PATCH /contact': down },
      check(run) {
        expect(run.response?.status).toBe(502);
      },
    },
  ],
};

const run = (workflow: N8nWorkflow, scenario: Pick<Scenario, 'webhookBody' | 'stubs'>) =>
  simulate(workflow, { webhookBody: scenario.webhookBody, stubs: scenario.stubs, env, routes });

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

  describe.each(files.map(({ file, json }) => ({ file, json })))('n8n/$file', ({ file, json }) => {
    const { workflow, problems } = parseWorkflow(json);

    it('has the shape of an n8n 1.x export', () => {
      expect(problems).toEqual([]);
    });

    it('is one graph from one trigger, with credentials referenced by name only', () => {
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

describe('n8n workflow checks catch mistakes', () => {
  const createContact = load('create-contact.json');
  const CREATE = 'POST /contact';
  const LOOKUP = 'GET /contact/:id (existing)';
  const staticProblems = (workflow: N8nWorkflow, name: string) => checkHttpNodeStatically(node(workflow, name), routes);
  const scenario = (start: string) => {
    const found = scenarios['create-contact.json']?.find(({ name }) => name.startsWith(start));
    if (!found) throw new Error(`no create-contact scenario "${start}…"`);
    return found;
  };
  const newContact = scenario('a new contact');
  const taken = scenario('the email is taken');

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
    tooManyOutputs.connections['Found?']?.main?.push([{ node: 'Respond: API error', type: 'main', index: 0 }]);
    expect(checkStructure(tooManyOutputs)).toEqual(['"Found?" has 2 output(s) but connections for 3']);

    const oldIf = copy(createContact);
    node(oldIf, 'Found?').typeVersion = 1;
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
  });
});

describe('n8n expression evaluation (as the checks do it)', () => {
  const scope = { json: { body: { name: 'Ada', id: 7 } }, env, outputs: new Map<string, unknown>() };

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
    expect(() => evaluateParameter("={{ $('Nowhere').item.json }}", scope)).toThrow(/has not run/);
    expect(() => evaluateParameter('=id: {{ $json.body }}', scope)).toThrow(/object inside text/);
    // n8n ends the code at the first "}}": objects inside need a space between their braces.
    expect(() => evaluateParameter('={{ JSON.stringify({ a: { b: 1 }}) }}', scope)).toThrow();
  });
});
