import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import vendored from './pipedrive-openapi/operations.json';

/**
 * Pipedrive's published contract for the operations the mirror calls (vendored from the official
 * OpenAPI documents: pipedrive-openapi/operations.json): what a request may carry, what its answers
 * look like, and what each call costs in tokens.
 */

interface Parameter {
  in: 'query' | 'path' | 'header';
  name: string;
  required?: boolean;
  schema: { type?: string; enum?: unknown[] };
}

interface VendoredOperation {
  version: 'v1' | 'v2';
  path: string;
  method: string;
  operation: {
    operationId: string;
    'x-token-cost': number;
    parameters?: Parameter[];
    requestBody?: { required?: boolean; content: { 'application/json'?: { schema: object } } };
    responses: Partial<Record<string, { content?: { 'application/json'?: { schema: object } } }>>;
  };
}

export interface Operation {
  id: string;
  method: string;
  /** The path as the fake serves it, e.g. /api/v2/persons/{id}. */
  path: string;
  tokenCost: number;
  /** Counted in the separate search bucket (10 requests per 2 s). */
  search: boolean;
  matches(method: string, pathname: string): Record<string, string> | null;
  /** What the documents reject in this request; empty when it keeps the contract. */
  requestProblems(request: { query: Record<string, string>; params: Record<string, string>; body: unknown }): string[];
  /**
   * What the documents reject in this answer's body, against the schema of the status answered (200
   * unless told); a success status the documents do not list is itself a problem.
   */
  responseProblems(body: unknown, status?: number): string[];
}

const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);

const PREFIX = { v1: '/v1', v2: '/api/v2' } as const;

const describeErrors = (where: string, errors: ValidateFunction['errors']) =>
  (errors ?? []).map((error) => `${where}${error.instancePath || ''} ${error.message ?? 'is invalid'}`);

/**
 * Where Pipedrive answers null although its schema says otherwise, as its developer documentation
 * and its clients attest: the fake answers as Pipedrive does, and these nulls are not violations.
 */
const DOCUMENTED_NULLS: { operationId?: string; path: RegExp; why: string }[] = [
  { path: /^\/additional_data\/next_cursor$/, why: 'v2 lists and searches answer next_cursor null on their last page' },
  { operationId: 'getNotes', path: /^\/data$/, why: 'v1 lists answer data null when nothing matches' },
];

/** The value at a JSON pointer (ajv's instancePath) of `data`. */
function valueAt(data: unknown, pointer: string): unknown {
  return pointer
    .split('/')
    .slice(1)
    .reduce<unknown>((value, key) => (value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), data);
}

/** A query or path value (always a string on the wire) against its parameter's schema. */
function parameterProblem(parameter: Parameter, value: string): string | undefined {
  const { type, enum: allowed } = parameter.schema;
  const where = `${parameter.in} parameter ${parameter.name}`;
  if (type === 'integer' && !/^-?\d+$/.test(value)) return `${where} must be an integer, got ${JSON.stringify(value)}`;
  if (type === 'number' && (value.trim() === '' || !Number.isFinite(Number(value)))) return `${where} must be a number`;
  if (type === 'boolean' && value !== 'true' && value !== 'false') return `${where} must be true or false, got ${JSON.stringify(value)}`;
  const typed = type === 'integer' || type === 'number' ? Number(value) : type === 'boolean' ? value === 'true' : value;
  if (allowed && !allowed.includes(typed)) return `${where} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`;
  return undefined;
}

function toOperation(vendoredOperation: VendoredOperation): Operation {
  const { operation } = vendoredOperation;
  const path = `${PREFIX[vendoredOperation.version]}${vendoredOperation.path}`;
  const names: string[] = [];
  const pattern = new RegExp(
    `^${path.replace(/\{(\w+)\}/g, (_, name: string) => {
      names.push(name);
      return '([^/]+)';
    })}$`,
  );
  const bodySchema = operation.requestBody?.content['application/json']?.schema;
  const validateBody = bodySchema ? ajv.compile(bodySchema) : undefined;
  const validateResponses = new Map(
    Object.entries(operation.responses).flatMap(([status, response]) => {
      const schema = response?.content?.['application/json']?.schema;
      return schema ? [[Number(status), ajv.compile(schema)] as const] : [];
    }),
  );
  const parameters = operation.parameters ?? [];
  return {
    id: operation.operationId,
    method: vendoredOperation.method.toUpperCase(),
    path,
    tokenCost: operation['x-token-cost'],
    search: vendoredOperation.path.endsWith('/search'),
    matches(method, pathname) {
      if (method !== this.method) return null;
      const found = pattern.exec(pathname);
      return found ? Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(found[i + 1]!)])) : null;
    },
    requestProblems({ query, params, body }) {
      const problems: string[] = [];
      for (const parameter of parameters) {
        const source = parameter.in === 'query' ? query : parameter.in === 'path' ? params : undefined;
        if (!source) continue;
        const value = source[parameter.name];
        if (value === undefined) {
          if (parameter.required) problems.push(`${parameter.in} parameter ${parameter.name} is required`);
          continue;
        }
        const problem = parameterProblem(parameter, value);
        if (problem) problems.push(problem);
      }
      if (validateBody && body === undefined && operation.requestBody?.required) problems.push('a JSON body is required');
      if (validateBody && body !== undefined && !validateBody(body)) problems.push(...describeErrors('body', validateBody.errors));
      if (!validateBody && body !== undefined) problems.push('this operation takes no body');
      return problems;
    },
    responseProblems(body, status = 200) {
      if (status >= 200 && status < 300 && !(String(status) in operation.responses)) return [`status ${status} is not documented`];
      const validateResponse = validateResponses.get(status);
      if (!validateResponse || validateResponse(body)) return [];
      const errors = (validateResponse.errors ?? []).filter(
        (error) =>
          !(
            error.keyword === 'type' &&
            valueAt(body, error.instancePath) === null &&
            DOCUMENTED_NULLS.some((allowed) => (allowed.operationId ?? operation.operationId) === operation.operationId && allowed.path.test(error.instancePath))
          ),
      );
      return describeErrors('response', errors);
    },
  };
}

export const PIPEDRIVE_OPERATIONS: readonly Operation[] = (vendored.operations as VendoredOperation[]).map(toOperation);

/** The operation a request is for, with its path parameters; undefined when the mirror has no business calling it. */
export function findOperation(method: string, pathname: string): { operation: Operation; params: Record<string, string> } | undefined {
  for (const operation of PIPEDRIVE_OPERATIONS) {
    const params = operation.matches(method, pathname);
    if (params) return { operation, params };
  }
  return undefined;
}
