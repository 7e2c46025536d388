/**
 * Checks n8n workflow files (n8n 1.x export format) against this API without running n8n:
 * their structure, each HTTP Request node against the API's own routes and zod schemas, and
 * their behaviour, by running them through a small simulator of the node types they use with
 * the API's answers stubbed (and the stubs checked against the API's response schemas).
 *
 * Expressions (`={{ ... }}`) are evaluated as n8n does: the parameter is split into text and
 * `{{ code }}` chunks; a lone chunk yields its value as is, several are joined into a string.
 * The code runs as JavaScript in a `node:vm` context that holds only what these workflows may
 * use: `$json`, `$input`, `$('Node name')`, `$node`, `$env.CONTACT_API_URL`, `$workflow.id`,
 * `$execution.id` and the standard built-ins. Anything else (another variable, an n8n-only helper
 * such as `.isEmpty()`) throws, so a workflow that uses it fails here and the evaluator has to be
 * taught it first.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { z } from 'zod';
import { apiRoutes as mountedRoutes } from '../../src/composition';
import type { ContactService } from '../../src/contacts/contact.service';
import { IdempotencyKeyInUseError, IdempotencyKeyReusedError } from '../../src/idempotency/idempotency-errors';
import { RateLimitedError, UnauthorizedError } from '../../src/http/http-errors';
import { type AppError, type ValidationError } from '../../src/errors';
import { isOpenPath } from '../../src/http/api-keys';
import { ErrorResponse } from '../../src/http/error-response';
import type { HealthChecks } from '../../src/http/health.routes';
import type { AnyRoute } from '../../src/http/route';
import { parseIdempotencyKey } from '../../src/idempotency/idempotent-requests';
import type { MirrorRepository } from '../../src/mirror/mirror.repository';

export const WORKFLOW_DIR = path.resolve(__dirname, '../../n8n');

/**
 * The credential every call to the API uses: n8n's Header Auth, sending `x-api-key`. The set-up
 * in the READMEs creates it with this id, so the workflows find it whichever is imported first;
 * an import links a credential of another id by name.
 */
export const API_KEY_CREDENTIAL = {
  type: 'httpHeaderAuth',
  name: 'Contact sync API key',
  id: 'yd8VE1PvDXGZjdwm',
  header: 'x-api-key',
} as const;

/** Every URL starts with this expression; the environment variable holds the API's base URL. */
const API_BASE = /^\{\{\s*\$env\.CONTACT_API_URL\s*\}\}/;
export const API_BASE_VARIABLE = 'CONTACT_API_URL';

/**
 * The API's routes, in the order the app mounts them (src/composition.ts): the first route whose
 * method and path match answers, as in Express. Only the handlers use the services.
 */
export function apiRoutes(): AnyRoute[] {
  return mountedRoutes({ health: {} as HealthChecks, contactService: {} as ContactService, mirrorRepository: {} as MirrorRepository, budgetSettings: { reserve: 0, resetHourUtc: 0 } });
}

// ---------------------------------------------------------------------------------------------
// Workflow files

const Connection = z.object({ node: z.string(), type: z.string(), index: z.number().int().min(0) });

const NodeShape = z.looseObject({
  id: z.string().min(1),
  name: z.string().min(1),
  type: z.string().regex(/^[\w@/-]+\.\w+$/, 'must be a node type such as n8n-nodes-base.webhook'),
  typeVersion: z.number().positive(),
  position: z.tuple([z.number(), z.number()]),
  parameters: z.record(z.string(), z.unknown()),
  credentials: z.record(z.string(), z.unknown()).optional(),
  onError: z.enum(['stopWorkflow', 'continueRegularOutput', 'continueErrorOutput']).optional(),
  retryOnFail: z.boolean().optional(),
  maxTries: z.number().int().optional(),
  waitBetweenTries: z.number().int().optional(),
  disabled: z.boolean().optional(),
});

const WorkflowShape = z.looseObject({
  id: z.string().optional(),
  name: z.string().min(1),
  nodes: z.array(NodeShape).min(1),
  connections: z.record(z.string(), z.record(z.string(), z.array(z.array(Connection).nullable()))),
  settings: z.record(z.string(), z.unknown()).optional(),
  active: z.boolean().optional(),
});

export type N8nNode = z.output<typeof NodeShape>;
export type N8nWorkflow = z.output<typeof WorkflowShape>;

export interface WorkflowFile {
  file: string;
  json: unknown;
}

export function readWorkflowFiles(dir = WORKFLOW_DIR): WorkflowFile[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => ({ file, json: JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as unknown }));
}

/** The parsed workflow, or the reasons it does not have n8n's shape. */
export function parseWorkflow(json: unknown): { workflow?: N8nWorkflow; problems: string[] } {
  const result = WorkflowShape.safeParse(json);
  if (result.success) return { workflow: result.data, problems: [] };
  return { problems: result.error.issues.map((issue) => `${issue.path.join('.') || 'workflow'}: ${issue.message}`) };
}

const WEBHOOK = 'n8n-nodes-base.webhook';
const HTTP_REQUEST = 'n8n-nodes-base.httpRequest';
const SWITCH = 'n8n-nodes-base.switch';
const IF = 'n8n-nodes-base.if';
const RESPOND = 'n8n-nodes-base.respondToWebhook';
const SET = 'n8n-nodes-base.set';
const STICKY_NOTE = 'n8n-nodes-base.stickyNote';

const isTrigger = (node: N8nNode) => node.type === WEBHOOK || /Trigger$/.test(node.type);

/** How many main outputs a node has; undefined for node types these checks do not know. */
function outputCount(node: N8nNode): number | undefined {
  const errorOutput = node.onError === 'continueErrorOutput' ? 1 : 0;
  switch (node.type) {
    case WEBHOOK:
    case HTTP_REQUEST:
    case RESPOND:
    case SET:
      return 1 + errorOutput;
    case IF:
      return 2 + errorOutput;
    case SWITCH: {
      const { mode, rules, options, numberOutputs } = node.parameters as {
        mode?: string;
        rules?: { values?: unknown[] };
        options?: { fallbackOutput?: unknown };
        numberOutputs?: number;
      };
      if (mode === 'expression') return (numberOutputs ?? 4) + errorOutput;
      return (rules?.values?.length ?? 0) + (options?.fallbackOutput === 'extra' ? 1 : 0) + errorOutput;
    }
    default:
      return undefined;
  }
}

/**
 * The node types and versions these checks understand (their parameters as in n8n-nodes-base
 * 1.x); another version may name or shape its parameters differently.
 */
const KNOWN_VERSIONS: Record<string, number[]> = {
  [WEBHOOK]: [2, 2.1],
  [HTTP_REQUEST]: [4, 4.1, 4.2, 4.3],
  [SWITCH]: [3, 3.1, 3.2, 3.3, 3.4],
  [IF]: [2, 2.1, 2.2, 2.3],
  [RESPOND]: [1, 1.1, 1.2, 1.3, 1.4, 1.5],
  [SET]: [3.3, 3.4],
  [STICKY_NOTE]: [1],
};

/** Every place a secret could sit in parameters: header parameters and keys named like one. */
function embeddedSecrets(value: unknown, at: string): string[] {
  if (Array.isArray(value)) return value.flatMap((item, index) => embeddedSecrets(item, `${at}[${index}]`));
  if (typeof value !== 'object' || value === null) return [];
  const problems: string[] = [];
  const record = value as Record<string, unknown>;
  if (typeof record.name === 'string' && /^(x-api-key|authorization)$/i.test(record.name)) {
    problems.push(`${at} sends the ${record.name} header itself; use the "${API_KEY_CREDENTIAL.name}" credential`);
  }
  for (const [key, item] of Object.entries(record)) {
    if (/(api[-_]?key|password|secret|token)$/i.test(key) && typeof item === 'string' && item !== '') {
      problems.push(`${at}.${key} holds a secret`);
    }
    if (typeof item === 'string' && /x-api-key/i.test(item) && key !== 'name') {
      problems.push(`${at}.${key} mentions x-api-key; the credential sends it`);
    }
    problems.push(...embeddedSecrets(item, `${at}.${key}`));
  }
  return problems;
}

/**
 * What n8n generates: 16 letters and digits. On PostgreSQL some of n8n's own columns holding a
 * workflow id are varchar(16) (insights_metadata."workflowId"): a longer id fails every insights
 * save, for every workflow of the instance. A fixed id makes importing a file again update it.
 */
const WORKFLOW_ID = /^[A-Za-z0-9]{16}$/;

/** Structure: the id, names, node ids, one trigger, connections, reachability, credentials by reference only. */
export function checkStructure(workflow: N8nWorkflow): string[] {
  const problems: string[] = [];
  if (workflow.id === undefined || !WORKFLOW_ID.test(workflow.id)) {
    problems.push(`the workflow id ${JSON.stringify(workflow.id)} must be 16 letters and digits, as n8n makes them`);
  }
  const byName = new Map<string, N8nNode>();
  const ids = new Set<string>();
  for (const node of workflow.nodes) {
    if (byName.has(node.name)) problems.push(`two nodes are named "${node.name}"`);
    if (ids.has(node.id)) problems.push(`two nodes have the id ${node.id}`);
    byName.set(node.name, node);
    ids.add(node.id);
    const versions = KNOWN_VERSIONS[node.type];
    if (!versions) problems.push(`"${node.name}": node type ${node.type} is not one these checks know`);
    else if (!versions.includes(node.typeVersion)) {
      problems.push(`"${node.name}": ${node.type} version ${node.typeVersion} is not one these checks know (${versions.join(', ')})`);
    }
  }
  if (workflow.active === true) problems.push('the workflow is exported active; export it inactive (active: false)');

  const triggers = workflow.nodes.filter(isTrigger);
  if (triggers.length !== 1) {
    problems.push(`a workflow needs exactly one trigger node; found ${triggers.length} (${triggers.map((node) => node.name).join(', ')})`);
  }

  // Connections: sources and targets exist, output indexes exist, targets take one main input.
  const next = new Map<string, string[]>();
  for (const [source, byType] of Object.entries(workflow.connections)) {
    const sourceNode = byName.get(source);
    if (!sourceNode) problems.push(`a connection starts at "${source}", which is not a node`);
    for (const [type, outputs] of Object.entries(byType)) {
      if (type !== 'main') problems.push(`"${source}": connection type ${type} is not supported here`);
      const count = sourceNode && outputCount(sourceNode);
      if (count !== undefined && outputs.length > count) {
        problems.push(`"${source}" has ${count} output(s) but connections for ${outputs.length}`);
      }
      outputs.forEach((targets) => {
        for (const target of targets ?? []) {
          const targetNode = byName.get(target.node);
          if (!targetNode) problems.push(`"${source}" connects to "${target.node}", which is not a node`);
          else if (isTrigger(targetNode)) problems.push(`"${source}" connects into the trigger "${target.node}"`);
          if (target.type !== 'main' || target.index !== 0) {
            problems.push(`"${source}" connects to input ${target.type}/${target.index} of "${target.node}"; only main/0 exists`);
          }
          next.set(source, [...(next.get(source) ?? []), target.node]);
        }
      });
    }
  }

  // Every node but the trigger (and sticky notes) is reached from the trigger.
  const trigger = triggers[0];
  if (trigger) {
    const reached = new Set([trigger.name]);
    const queue = [trigger.name];
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      for (const target of next.get(name) ?? []) {
        if (!reached.has(target)) {
          reached.add(target);
          queue.push(target);
        }
      }
    }
    for (const node of workflow.nodes) {
      if (node.type !== STICKY_NOTE && !reached.has(node.name)) problems.push(`"${node.name}" is not reachable from the trigger`);
    }
  }

  // Credentials are references ({ id, name }) to credentials created in n8n, never their data.
  for (const node of workflow.nodes) {
    for (const [type, reference] of Object.entries(node.credentials ?? {})) {
      // id null: n8n links the credential of that name and type at import.
      const { id, name, ...other } = (typeof reference === 'object' && reference !== null ? reference : {}) as Record<string, unknown>;
      const ok = typeof name === 'string' && name !== '' && (typeof id === 'string' || id === null) && Object.keys(other).length === 0;
      if (!ok) problems.push(`"${node.name}": credential ${type} must be a reference { id, name }, not ${JSON.stringify(reference)}`);
    }
    problems.push(...embeddedSecrets(node.parameters, `"${node.name}".parameters`));
  }

  // A workflow that answers through Respond to Webhook nodes must say so on its webhook, and back.
  const responders = workflow.nodes.filter((node) => node.type === RESPOND);
  const responseMode = trigger?.type === WEBHOOK ? trigger.parameters.responseMode : undefined;
  if (responders.length > 0 && responseMode !== 'responseNode') {
    problems.push('the workflow has Respond to Webhook nodes, so its webhook needs responseMode "responseNode"');
  }
  if (responseMode === 'responseNode' && responders.length === 0) {
    problems.push('the webhook waits for a Respond to Webhook node, and there is none');
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Expressions

interface Chunk {
  type: 'text' | 'code';
  text: string;
}

/** n8n's splitting of an expression into text and `{{ code }}` (the code ends at the first `}}`). */
export function splitExpression(expression: string): Chunk[] {
  const chunks: Chunk[] = [];
  let rest = expression;
  for (;;) {
    const open = rest.indexOf('{{');
    if (open === -1) {
      chunks.push({ type: 'text', text: rest });
      return chunks;
    }
    chunks.push({ type: 'text', text: rest.slice(0, open) });
    const close = rest.indexOf('}}', open + 2);
    if (close === -1) throw new Error(`unclosed {{ in ${JSON.stringify(expression)}`);
    chunks.push({ type: 'code', text: rest.slice(open + 2, close) });
    rest = rest.slice(close + 2);
    if (rest === '') return chunks;
  }
}

export interface ExpressionScope {
  /** The item the node is running for. */
  json: unknown;
  /** Environment variables n8n exposes as `$env`. */
  env: Readonly<Record<string, string>>;
  /** The first output item of each node that has run, by name, for `$('Name')`. */
  outputs: ReadonlyMap<string, unknown>;
  /** The run, for `$workflow.id` and `$execution.id`; outside a run they are not defined. */
  run?: { workflowId: string; executionId: string };
}

/** An object of which expressions may read only the given keys. */
function only(name: string, values: Record<string, unknown>): object {
  return new Proxy(values, {
    get(target, key) {
      if (typeof key !== 'string' || !(key in target)) throw new Error(`${name}.${String(key)} is not available to the workflows here`);
      return target[key];
    },
  });
}

function sandbox(scope: ExpressionScope): vm.Context {
  const itemOf = (json: unknown) => ({ json });
  const nodeData = (name: string) => {
    if (!scope.outputs.has(name)) throw new Error(`$('${name}'): that node has not run (or does not exist)`);
    const json = scope.outputs.get(name);
    return { item: itemOf(json), first: () => itemOf(json), last: () => itemOf(json), all: () => [itemOf(json)], isExecuted: true };
  };
  const env = new Proxy(
    {},
    {
      get(_target, key) {
        if (key !== API_BASE_VARIABLE) throw new Error(`$env.${String(key)}: the workflows read only $env.${API_BASE_VARIABLE}`);
        return scope.env[key];
      },
    },
  );
  return vm.createContext({
    $json: scope.json,
    $input: { item: itemOf(scope.json), first: () => itemOf(scope.json), all: () => [itemOf(scope.json)] },
    $: nodeData,
    $node: new Proxy({}, { get: (_target, key) => ({ json: nodeData(String(key)).item.json }) }),
    $env: env,
    ...(scope.run && {
      $workflow: only('$workflow', { id: scope.run.workflowId }),
      $execution: only('$execution', { id: scope.run.executionId }),
    }),
    // As in n8n's expression sandbox: isNaN and isFinite are the strict Number versions.
    isNaN: Number.isNaN,
    isFinite: Number.isFinite,
  });
}

function runCode(code: string, scope: ExpressionScope): unknown {
  if (/\.\s*constructor/.test(code)) throw new Error('n8n refuses expressions that touch .constructor');
  try {
    // Parenthesised, so that the code must be a single expression, as n8n requires.
    return vm.runInContext(`(${code}\n)`, sandbox(scope), { timeout: 1000 });
  } catch (error) {
    throw new Error(`{{${code}}}: ${(error as Error).message}`);
  }
}

/** The value of a node parameter: as is, or, for `=...`, its expression evaluated. */
export function evaluateParameter(value: unknown, scope: ExpressionScope): unknown {
  if (typeof value !== 'string' || !value.startsWith('=')) return value;
  const chunks = splitExpression(value.slice(1));
  const [first, second] = chunks;
  if (chunks.length === 2 && first?.text === '' && second?.type === 'code') return runCode(second.text, scope);
  return chunks
    .map((chunk) => {
      if (chunk.type === 'text') return chunk.text;
      const result = runCode(chunk.text, scope);
      if (typeof result === 'object' && result !== null) {
        throw new Error(`{{${chunk.text}}} yields an object inside text; n8n would insert [object Object]`);
      }
      // n8n's rule for values inside text: falsy ones other than 0 and false become "".
      return result || result === 0 || result === false ? String(result) : '';
    })
    .join('');
}

/** A JSON value as the other side of an HTTP exchange sees it. */
const overTheWire = (value: unknown): unknown => {
  const text = JSON.stringify(value);
  return text === undefined ? undefined : JSON.parse(text);
};

// ---------------------------------------------------------------------------------------------
// HTTP Request nodes against the API's routes

type Segment = { literal: string } | { dynamic: true };

/** A route path as segments; only literal and `:param` segments are expected in this API. */
function routeSegments(route: AnyRoute): string[] {
  if (!/^(\/(:?[A-Za-z0-9_-]+))+$/.test(route.path)) throw new Error(`route path ${route.path} uses syntax these checks do not handle`);
  return route.path.split('/').slice(1);
}

const segmentsMatch = (pattern: string[], segments: Segment[]) =>
  pattern.length === segments.length &&
  pattern.every((part, index) => {
    const segment = segments[index];
    if (!segment) return false;
    if (part.startsWith(':')) return !('literal' in segment) || segment.literal !== '';
    return 'literal' in segment && segment.literal === part;
  });

function findRoute(
  routes: readonly AnyRoute[],
  method: string,
  segments: Segment[],
  shown: string,
): { route?: AnyRoute; problem?: string } {
  const samePath = routes.filter((route) => segmentsMatch(routeSegments(route), segments));
  const route = samePath.find((candidate) => candidate.method.toUpperCase() === method);
  if (route) return { route };
  if (samePath.length > 0) {
    const methods = [...new Set(samePath.map((candidate) => candidate.method.toUpperCase()))].join(', ');
    return { problem: `no ${method} route for ${shown}; the API has ${methods} there` };
  }
  return { problem: `no API route matches ${method} ${shown}` };
}

const httpMethod = (node: N8nNode) => String(node.parameters.method ?? 'GET').toUpperCase();

const IDEMPOTENCY_KEY = 'idempotency-key';

type Field = { name?: unknown; value?: unknown };

/** The header fields a node sends (none without sendHeaders), unevaluated. */
function headerFields(node: N8nNode): Field[] {
  if (node.parameters.sendHeaders !== true) return [];
  return (node.parameters.headerParameters as { parameters?: Field[] } | undefined)?.parameters ?? [];
}

/**
 * What can be checked without data: the URL's base and the route it names (an expression standing
 * for a whole path segment matches a `:param`), the credential, and body/query against the route.
 */
export function checkHttpNodeStatically(node: N8nNode, routes: readonly AnyRoute[]): string[] {
  const problems: string[] = [];
  const at = `"${node.name}"`;
  const { url, authentication, genericAuthType } = node.parameters;
  const reference = node.credentials?.[API_KEY_CREDENTIAL.type] as { id?: unknown; name?: unknown } | undefined;
  if (authentication !== 'genericCredentialType' || genericAuthType !== API_KEY_CREDENTIAL.type || !reference) {
    problems.push(`${at} must authenticate with the Header Auth credential (genericCredentialType / httpHeaderAuth)`);
  } else if (reference.name !== API_KEY_CREDENTIAL.name) {
    problems.push(`${at} uses the credential "${String(reference.name)}"; expected "${API_KEY_CREDENTIAL.name}"`);
  } else if (reference.id !== API_KEY_CREDENTIAL.id) {
    problems.push(`${at} refers to the credential by the id ${JSON.stringify(reference.id)}; expected "${API_KEY_CREDENTIAL.id}"`);
  }

  const base = typeof url === 'string' && url.startsWith('=') ? API_BASE.exec(url.slice(1)) : null;
  if (typeof url !== 'string' || !base) {
    problems.push(`${at}: the URL must start with ={{ $env.${API_BASE_VARIABLE} }}, not ${JSON.stringify(url)}`);
    return problems;
  }
  const rest = url.slice(1 + base[0].length);
  if (!rest.startsWith('/')) {
    problems.push(`${at}: the URL must continue with a path after the base URL`);
    return problems;
  }
  // Replace each {{ code }} by a marker, so that slashes inside code do not split segments.
  const MARK = '\u0000';
  let template: string;
  try {
    template = splitExpression(rest)
      .map((chunk) => (chunk.type === 'code' ? MARK : chunk.text))
      .join('');
  } catch (error) {
    problems.push(`${at}: ${(error as Error).message}`);
    return problems;
  }
  const [pathPart = '', queryPart] = template.split('?');
  const segments: Segment[] = pathPart
    .split('/')
    .slice(1)
    .map((part) => (part.includes(MARK) ? { dynamic: true } : { literal: part }));
  const method = httpMethod(node);
  const shown = pathPart.split(MARK).join('{{…}}');
  const { route, problem } = findRoute(routes, method, segments, shown);
  if (!route) {
    problems.push(`${at}: ${problem}`);
    return problems;
  }

  // A route that honours Idempotency-Key gets one, so that the node's retries replay instead of
  // writing twice; other routes ignore it, and a lookup must not reuse the creation's key.
  const { sendHeaders, specifyHeaders = 'keypair' } = node.parameters;
  if (sendHeaders === true && specifyHeaders !== 'keypair') problems.push(`${at}: give headers as fields (specifyHeaders keypair)`);
  const sendsKey = headerFields(node).some(({ name }) => typeof name === 'string' && name.toLowerCase() === IDEMPOTENCY_KEY);
  if (route.idempotent && !sendsKey) {
    problems.push(`${at}: ${method} ${route.path} takes an Idempotency-Key header; send one, so that retries replay instead of writing twice`);
  } else if (!route.idempotent && sendsKey) {
    problems.push(`${at}: ${method} ${route.path} ignores Idempotency-Key; do not send one`);
  }

  const { sendBody, contentType = 'json', specifyBody, jsonBody, sendQuery } = node.parameters;
  if (route.body) {
    if (sendBody !== true) problems.push(`${at}: ${method} ${route.path} takes a JSON body; set sendBody`);
    else if (contentType !== 'json' || specifyBody !== 'json' || typeof jsonBody !== 'string') {
      problems.push(`${at}: send the body as JSON (contentType json, specifyBody json, jsonBody)`);
    }
  } else if (sendBody === true) {
    problems.push(`${at}: ${method} ${route.path} takes no body`);
  }
  if (!route.query && (sendQuery === true || queryPart !== undefined)) {
    problems.push(`${at}: ${method} ${route.path} takes no query parameters`);
  }
  return problems;
}

export interface ApiRequest {
  method: string;
  /** The path with its values, e.g. /contact/7. */
  path: string;
  route: AnyRoute;
  params: Record<string, string>;
  query: Record<string, string | string[]>;
  /** Headers the node sets itself, by lower-case name (the credential's x-api-key aside). */
  headers: Record<string, string>;
  body: unknown;
}

const describeIssues = (error: z.ZodError) =>
  error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');

function addQuery(query: Record<string, string | string[]>, name: string, value: string) {
  const existing = query[name];
  query[name] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
}

/**
 * The request a node would send for the given item, checked as the API would check it: route,
 * path parameters, query and body each through the route's own zod schema. Without a request
 * (no URL, no route), `problems` says why; with one, `problems` lists what the API would reject.
 */
export function resolveRequest(
  node: N8nNode,
  scope: ExpressionScope,
  routes: readonly AnyRoute[],
): { request?: ApiRequest; problems: string[] } {
  const at = `"${node.name}"`;
  const fail = (problem: string) => ({ problems: [`${at}: ${problem}`] });
  const base = scope.env[API_BASE_VARIABLE];
  if (!base) return fail(`$env.${API_BASE_VARIABLE} is not set in the scope`);
  let url: URL;
  try {
    const value = evaluateParameter(node.parameters.url, scope);
    if (typeof value !== 'string' || !value.startsWith(`${base}/`)) return fail(`URL ${JSON.stringify(value)} is not under ${base}`);
    url = new URL(value);
  } catch (error) {
    return fail((error as Error).message);
  }

  const method = httpMethod(node);
  const segments = url.pathname.split('/').slice(1).map((part) => ({ literal: decodeURIComponent(part) }));
  const { route, problem } = findRoute(routes, method, segments, url.pathname);
  if (!route) return fail(problem ?? 'no route');

  const problems: string[] = [];
  const params: Record<string, string> = {};
  routeSegments(route).forEach((part, index) => {
    const segment = segments[index];
    if (part.startsWith(':') && segment) params[part.slice(1)] = segment.literal;
  });
  if (route.params) {
    const parsed = route.params.safeParse(params);
    if (!parsed.success) problems.push(`${at}: path ${url.pathname}: ${describeIssues(parsed.error)}`);
  }

  const query: Record<string, string | string[]> = {};
  url.searchParams.forEach((value, name) => addQuery(query, name, value));
  try {
    if (node.parameters.sendQuery === true) {
      if ((node.parameters.specifyQuery ?? 'keypair') === 'keypair') {
        const pairs = (node.parameters.queryParameters as { parameters?: { name?: unknown; value?: unknown }[] } | undefined)
          ?.parameters;
        for (const pair of pairs ?? []) {
          addQuery(query, String(evaluateParameter(pair.name, scope)), String(evaluateParameter(pair.value, scope) ?? ''));
        }
      } else {
        problems.push(`${at}: give query parameters as fields (specifyQuery keypair)`);
      }
    }
  } catch (error) {
    problems.push(`${at}: query: ${(error as Error).message}`);
  }
  if (route.query) {
    const parsed = route.query.safeParse(query);
    if (!parsed.success) problems.push(`${at}: query ${JSON.stringify(query)}: ${describeIssues(parsed.error)}`);
  } else if (Object.keys(query).length > 0) {
    problems.push(`${at}: ${method} ${route.path} takes no query parameters`);
  }

  const headers: Record<string, string> = {};
  for (const field of headerFields(node)) {
    try {
      const name = String(evaluateParameter(field.name, scope));
      const value = evaluateParameter(field.value, scope);
      if (typeof value === 'string' || typeof value === 'number') headers[name.toLowerCase()] = String(value);
      else problems.push(`${at}: header ${name}: ${JSON.stringify(value)} is not a header value`);
    } catch (error) {
      problems.push(`${at}: header: ${(error as Error).message}`);
    }
  }
  if (route.idempotent) {
    try {
      parseIdempotencyKey(headers[IDEMPOTENCY_KEY]);
    } catch (error) {
      const issues = (error as ValidationError).issues.map((issue) => issue.message).join('; ');
      problems.push(`${at}: Idempotency-Key ${JSON.stringify(headers[IDEMPOTENCY_KEY])}: ${issues}`);
    }
  }

  let body: unknown;
  let bodyEvaluated = true;
  if (node.parameters.sendBody === true) {
    try {
      const value = evaluateParameter(node.parameters.jsonBody, scope);
      if (typeof value === 'string') {
        try {
          body = JSON.parse(value);
        } catch {
          // The HTTP Request node's own check: "JSON parameter needs to be valid JSON".
          throw new Error(`the JSON body is not valid JSON once evaluated: ${value}`);
        }
      } else {
        body = overTheWire(value);
      }
    } catch (error) {
      bodyEvaluated = false;
      problems.push(`${at}: ${(error as Error).message}`);
    }
  }
  if (route.body && bodyEvaluated) {
    const parsed = route.body.safeParse(body);
    if (!parsed.success) problems.push(`${at}: body ${JSON.stringify(body)}: ${describeIssues(parsed.error)}`);
  } else if (!route.body && node.parameters.sendBody === true) {
    problems.push(`${at}: ${method} ${route.path} takes no body`);
  }

  return { request: { method, path: url.pathname, route, params, query, headers, body }, problems };
}

// ---------------------------------------------------------------------------------------------
// Simulation

/** What the stubbed API answers: a status, JSON body and headers, or no answer at all. */
export type StubAnswer =
  | { status: number; body?: unknown; contentType?: string; headers?: Record<string, string> }
  | { transportError: string };
/** Answers by "METHOD /route/:pattern", e.g. "GET /contact/:id". */
export type Stubs = Record<string, StubAnswer | ((request: ApiRequest) => StubAnswer)>;

export interface WebhookResponse {
  status: number;
  body: unknown;
  /** The headers the Respond to Webhook node sets, by lower-case name; absent when it sets none. */
  headers?: Record<string, string>;
}

export interface Simulation {
  /** What the webhook's caller receives; n8n's own 500 when the workflow failed first. */
  response?: WebhookResponse;
  /** Why the run failed inside n8n (a node error nothing catches), if it did. */
  workflowError?: string;
  /** Requests sent to the API, as "METHOD /path". */
  calls: string[];
  requests: ApiRequest[];
  /** Nodes that ran. */
  ran: Set<string>;
  /** What the API would reject in the requests sent (it would answer 400): path, query, body. */
  rejected: string[];
  /** Mistakes: URLs that name no route, stubs that do not match the API, unsupported nodes. */
  problems: string[];
}

interface FilterCondition {
  leftValue?: unknown;
  rightValue?: unknown;
  operator?: { type?: string; operation?: string };
}

interface Filter {
  options?: { caseSensitive?: boolean; typeValidation?: string };
  conditions?: FilterCondition[];
  combinator?: string;
}

/** The conditions of If (v2) and Switch (v3) nodes, for the operators these workflows use. */
function evaluateFilter(filter: Filter, scope: ExpressionScope): boolean {
  const strict = filter.options?.typeValidation === 'strict';
  const caseSensitive = filter.options?.caseSensitive !== false;
  const results = (filter.conditions ?? []).map((condition) => {
    const type = condition.operator?.type;
    const operation = condition.operator?.operation;
    const convert = (value: unknown): unknown => {
      if (value === undefined || value === null) return value;
      if (type === 'number') {
        if (typeof value === 'number') return value;
        if (strict) throw new Error(`wrong type: ${JSON.stringify(value)} is not a number (strict type validation)`);
        return Number(value);
      }
      if (type === 'string') {
        if (typeof value === 'string') return caseSensitive ? value : value.toLowerCase();
        if (strict) throw new Error(`wrong type: ${JSON.stringify(value)} is not a string (strict type validation)`);
        return caseSensitive ? String(value) : String(value).toLowerCase();
      }
      throw new Error(`filter operator type ${String(type)} is not simulated`);
    };
    const left = convert(evaluateParameter(condition.leftValue, scope));
    const right = convert(evaluateParameter(condition.rightValue, scope));
    switch (operation) {
      case 'equals':
        return left === right;
      case 'notEquals':
        return left !== right;
      case 'gt':
      case 'gte':
      case 'lt':
      case 'lte': {
        if (typeof left !== 'number' || typeof right !== 'number') return false;
        return { gt: left > right, gte: left >= right, lt: left < right, lte: left <= right }[operation];
      }
      default:
        throw new Error(`filter operation ${String(operation)} is not simulated`);
    }
  });
  if (filter.combinator === 'or') return results.some(Boolean);
  if (filter.combinator === 'and') return results.every(Boolean);
  throw new Error(`filter combinator ${String(filter.combinator)} is not simulated`);
}

const statusText: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  400: 'Bad Request',
  404: 'Not Found',
  409: 'Conflict',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
};

const isJsonAnswer = (answer: { contentType?: string }) => (answer.contentType ?? 'application/json').includes('json');

const lowerCaseKeys = (headers: Record<string, string> = {}) =>
  Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));

/**
 * What the API answers on a route beside what the route declares: the key check and the rate
 * limit in front of every route that needs a key (src/http/app.ts), and Idempotency-Key's
 * answers on the routes that honour it.
 */
function undeclaredAnswers(route: AnyRoute): AppError[] {
  return [
    ...(isOpenPath(route.path) ? [] : [new UnauthorizedError(''), new RateLimitedError('')]),
    ...(route.idempotent ? [new IdempotencyKeyInUseError(''), new IdempotencyKeyReusedError('')] : []),
  ];
}

/** The headers the API's rate limit (express-rate-limit, draft-8 headers) sends with its 429. */
const RATE_LIMIT_HEADERS = ['retry-after', 'ratelimit', 'ratelimit-policy'] as const;

/** A stub stands for the API: its answers must be ones the API gives on that route (a proxy's error page need not). */
function checkStub(key: string, route: AnyRoute, answer: StubAnswer): string[] {
  if ('transportError' in answer || !isJsonAnswer(answer)) return [];
  const problems: string[] = [];
  const declared = route.responses[answer.status];
  if (declared) {
    const parsed = declared.schema?.safeParse(answer.body);
    if (parsed && !parsed.success) problems.push(`stub: ${key} ${answer.status} body: ${describeIssues(parsed.error)}`);
  } else {
    const codes = undeclaredAnswers(route)
      .filter((error) => error.status === answer.status)
      .map((error) => error.code);
    if (codes.length === 0) return [`stub: ${key} does not answer ${answer.status} (the route declares ${Object.keys(route.responses).join(', ')})`];
    const parsed = ErrorResponse.safeParse(answer.body);
    if (!parsed.success) problems.push(`stub: ${key} ${answer.status} body: ${describeIssues(parsed.error)}`);
    else if (!codes.includes(parsed.data.error.code)) problems.push(`stub: ${key} ${answer.status} is ${codes.join(' or ')}, not ${parsed.data.error.code}`);
  }
  const headers = lowerCaseKeys(answer.headers);
  const missing = answer.status === 429 ? RATE_LIMIT_HEADERS.filter((name) => headers[name] === undefined) : [];
  if (missing.length > 0) problems.push(`stub: ${key} 429 comes with the ${missing.join(', ')} headers`);
  return problems;
}

/**
 * What the HTTP Request node (v4) makes of an answer: with fullResponse `{ body, headers,
 * statusCode, statusMessage }` (a body that is not JSON lands in `data`); without neverError a
 * non-2xx status is an error, like no answer at all. An error is an object; one raised before
 * the request is sent (a credential n8n cannot find) is only its message, a string.
 */
function httpAttempt(node: N8nNode, answer: StubAnswer): { json: unknown } | { error: { message: string; code?: string } } {
  const response = (node.parameters.options as { response?: { response?: Record<string, unknown> } } | undefined)?.response
    ?.response;
  if ('transportError' in answer) return { error: { message: `connect ${answer.transportError}`, code: answer.transportError } };
  if ((answer.status >= 200 && answer.status < 300) || response?.neverError === true) {
    const data = isJsonAnswer(answer) ? { body: overTheWire(answer.body) } : { data: String(answer.body ?? '') };
    if (response?.fullResponse !== true) return { json: 'body' in data ? data.body : data };
    const headers = { 'content-type': answer.contentType ?? 'application/json; charset=utf-8', ...lowerCaseKeys(answer.headers) };
    return { json: { ...data, headers, statusCode: answer.status, statusMessage: statusText[answer.status] ?? '' } };
  }
  return { error: { message: `Request failed with status code ${answer.status}` } };
}

/** n8n's tries of a node: with retryOnFail, maxTries (3 by default) bounded to 2..5. */
const triesOf = (node: N8nNode) => (node.retryOnFail === true ? Math.min(5, Math.max(2, node.maxTries ?? 3)) : 1);

export interface SimulationOptions {
  webhookBody: unknown;
  /** Headers of the webhook call (content-type is application/json). */
  webhookHeaders?: Record<string, string>;
  stubs: Stubs;
  env: Record<string, string>;
  routes: readonly AnyRoute[];
  /** n8n's id of this run, for `$execution.id`. */
  executionId: string;
  /** Set: the nodes' credential is missing or unusable, and n8n fails them with this message. */
  credentialError?: string;
}

/**
 * Runs a workflow on one webhook call: each node as n8n 1.x would for the parameters used here,
 * with the API answered by stubs. Requests are resolved and checked with `resolveRequest`; stub
 * answers are checked against the statuses and response schemas the API gives on the route.
 */
export function simulate(workflow: N8nWorkflow, options: SimulationOptions): Simulation {
  const result: Simulation = { calls: [], requests: [], ran: new Set(), rejected: [], problems: [] };
  const byName = new Map(workflow.nodes.map((node) => [node.name, node]));
  const outputs = new Map<string, unknown>();
  const trigger = workflow.nodes.find(isTrigger);
  if (!trigger || trigger.type !== WEBHOOK) {
    result.problems.push('the simulation starts at a webhook trigger');
    return result;
  }
  const queue: { node: N8nNode; json: unknown }[] = [];
  const emit = (node: N8nNode, outputIndex: number, json: unknown) => {
    outputs.set(node.name, json);
    const targets = workflow.connections[node.name]?.main?.[outputIndex] ?? [];
    for (const target of targets) {
      const targetNode = byName.get(target.node);
      if (targetNode) queue.push({ node: targetNode, json });
    }
  };
  const failWorkflow = (message: string) => {
    result.workflowError = message;
    // n8n answers a webhook waiting for a Respond node this way when the workflow fails first.
    result.response ??= { status: 500, body: { message: 'Error in workflow' } };
  };

  result.ran.add(trigger.name);
  emit(trigger, 0, {
    headers: { 'content-type': 'application/json', ...lowerCaseKeys(options.webhookHeaders) },
    params: {},
    query: {},
    body: options.webhookBody,
    webhookUrl: `http://localhost:5678/webhook/${String(trigger.parameters.path)}`,
    executionMode: 'production',
  });

  for (let steps = 0, job = queue.shift(); job !== undefined; job = queue.shift()) {
    if (++steps > 100) {
      result.problems.push('more than 100 node runs: a loop?');
      break;
    }
    const { node, json } = job;
    const scope: ExpressionScope = { json, env: options.env, outputs, run: { workflowId: workflow.id ?? '', executionId: options.executionId } };
    result.ran.add(node.name);
    try {
      switch (node.type) {
        case HTTP_REQUEST: {
          // n8n tries again, after waitBetweenTries, while the node fails: no answer, or no credential.
          let attempt: { json: unknown } | { error: unknown };
          let tries = triesOf(node);
          do {
            if (options.credentialError !== undefined && node.credentials) {
              attempt = { error: options.credentialError };
              continue;
            }
            const { request, problems } = resolveRequest(node, scope, options.routes);
            if (!request) {
              result.problems.push(...problems);
              return result;
            }
            result.rejected.push(...problems);
            result.requests.push(request);
            result.calls.push(`${request.method} ${request.path}`);
            const key = `${request.method} ${request.route.path}`;
            const stub = options.stubs[key];
            if (!stub) {
              result.problems.push(`"${node.name}": no stub answers ${key}`);
              return result;
            }
            const answer = typeof stub === 'function' ? stub(request) : stub;
            result.problems.push(...checkStub(key, request.route, answer));
            attempt = httpAttempt(node, answer);
          } while ('error' in attempt && --tries > 0);
          if ('json' in attempt) emit(node, 0, attempt.json);
          // With onError continueErrorOutput the error goes to the error output (the input item plus `error`).
          else if (node.onError === 'continueErrorOutput') emit(node, 1, { ...(json as object), error: attempt.error });
          else if (node.onError === 'continueRegularOutput') emit(node, 0, { error: attempt.error });
          else {
            const { error } = attempt;
            failWorkflow(`"${node.name}": ${typeof error === 'string' ? error : (error as { message: string }).message}`);
            return result;
          }
          break;
        }
        case SWITCH: {
          const { mode = 'rules', rules, options: switchOptions } = node.parameters as {
            mode?: string;
            rules?: { values?: { conditions: Filter }[] };
            options?: { fallbackOutput?: unknown; allMatchingOutputs?: boolean };
          };
          if (mode !== 'rules' || switchOptions?.allMatchingOutputs) throw new Error('only Switch rules, first match, are simulated');
          const values = rules?.values ?? [];
          const matched = values.findIndex((rule) => evaluateFilter(rule.conditions, scope));
          const fallback = switchOptions?.fallbackOutput;
          if (matched >= 0) emit(node, matched, json);
          else if (fallback === 'extra') emit(node, values.length, json);
          else if (typeof fallback === 'number') emit(node, fallback, json);
          break;
        }
        case IF:
          emit(node, evaluateFilter(node.parameters.conditions as Filter, scope) ? 0 : 1, json);
          break;
        case SET: {
          // Edit Fields, "Manual Mapping": each field's expression is evaluated once, for the item.
          const { mode = 'manual', assignments, includeOtherFields, include = 'all' } = node.parameters as {
            mode?: string;
            assignments?: { assignments?: { name: string; value: unknown; type: string }[] };
            includeOtherFields?: boolean;
            include?: string;
          };
          if (mode !== 'manual' || include !== 'all') throw new Error('only manual fields, with all other fields or none, are simulated');
          const output: Record<string, unknown> = includeOtherFields === true ? { ...(json as object) } : {};
          for (const { name, value, type } of assignments?.assignments ?? []) {
            if (name.includes('.') || type !== 'string') throw new Error(`field ${name}: only string fields without dots are simulated`);
            const evaluated = evaluateParameter(value, scope);
            if (typeof evaluated !== 'string') throw new Error(`field ${name}: ${JSON.stringify(evaluated)} is not a string`);
            output[name] = evaluated;
          }
          emit(node, 0, output);
          break;
        }
        case RESPOND: {
          const { respondWith, responseBody, options: respondOptions } = node.parameters as {
            respondWith?: string;
            responseBody?: unknown;
            options?: { responseCode?: unknown; responseHeaders?: { entries?: Field[] } };
          };
          if (respondWith !== 'json') throw new Error(`respondWith ${String(respondWith)} is not simulated`);
          const status = evaluateParameter(respondOptions?.responseCode ?? 200, scope);
          if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
            throw new Error(`response code ${JSON.stringify(status)} is not an HTTP status`);
          }
          const value = evaluateParameter(responseBody, scope);
          let body: unknown;
          try {
            body = typeof value === 'string' ? JSON.parse(value) : overTheWire(value);
          } catch {
            throw new Error(`the response body is not valid JSON once evaluated: ${String(value)}`);
          }
          const entries = respondOptions?.responseHeaders?.entries ?? [];
          const headers: Record<string, string> = {};
          for (const entry of entries) {
            const name = String(evaluateParameter(entry.name, scope)).toLowerCase();
            const value = evaluateParameter(entry.value, scope);
            // n8n sends String(value): "undefined" for a header the API did not send.
            if (value === undefined || value === null || value === '') result.problems.push(`"${node.name}" sends the ${name} header without a value`);
            headers[name] = String(value);
          }
          if (result.response) result.problems.push(`"${node.name}" responds a second time; the caller already had an answer`);
          else result.response = { status, body, ...(entries.length > 0 && { headers }) };
          emit(node, 0, json);
          break;
        }
        default:
          result.problems.push(`"${node.name}": node type ${node.type} is not simulated`);
          return result;
      }
    } catch (error) {
      failWorkflow(`"${node.name}": ${(error as Error).message}`);
      return result;
    }
  }
  if (!result.response) result.problems.push('the workflow ended without answering the webhook');
  return result;
}
