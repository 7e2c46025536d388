import SwaggerParser from '@apidevtools/swagger-parser';
import request from 'supertest';
import { createTestApp, type TestApp } from '../support/test-app';

interface Operation {
  security?: Record<string, string[]>[];
  parameters?: { in: string; name: string; required?: boolean; schema: { pattern?: string } }[];
  responses: Record<string, { description: string; content?: Record<string, { schema: unknown }>; headers?: Record<string, unknown> }>;
}
type Document = { components: Record<string, Record<string, unknown>>; paths: Record<string, Record<string, Operation>> };

const KEY = 'docs-key-0123456789';
/** The probes, which src/http/api-keys.ts leaves open. */
const OPEN_OPERATIONS = ['GET /health', 'GET /contact/health'];
const ERROR_SCHEMA = { $ref: '#/components/schemas/ErrorResponse' };

// No keys configured here: the document describes the contract all the same.
let t: TestApp;
let doc: Document;
beforeAll(async () => {
  t = createTestApp();
  doc = (await request(t.app).get('/openapi.json').expect(200)).body;
});
afterAll(() => t.close());

const operations = () =>
  Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ name: `${method.toUpperCase()} ${path}`, path, method, operation })),
  );
const guarded = () => operations().filter(({ name }) => !OPEN_OPERATIONS.includes(name));
const open = () => operations().filter(({ name }) => OPEN_OPERATIONS.includes(name));

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document, its references resolved', async () => {
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeDefined();
  });

  it('declares the x-api-key header and the Bearer scheme', () => {
    expect(doc.components.securitySchemes).toEqual({
      apiKey: expect.objectContaining({ type: 'apiKey', in: 'header', name: 'x-api-key' }),
      bearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
    });
  });

  it('requires either scheme on every route but the probes', () => {
    expect(open()).toHaveLength(OPEN_OPERATIONS.length);
    for (const { operation } of open()) expect(operation.security).toBeUndefined();
    expect(guarded().length).toBeGreaterThan(0);
    for (const { operation } of guarded()) expect(operation.security).toEqual([{ apiKey: [] }, { bearer: [] }]);
  });

  it('declares on every route the errors the middleware can answer, in the error shape', () => {
    for (const { name, operation } of operations()) {
      for (const status of ['400', '413', '415']) {
        expect([name, status, operation.responses[status]?.content?.['application/json']?.schema]).toEqual([name, status, ERROR_SCHEMA]);
      }
    }
    for (const { name, operation } of guarded()) {
      for (const status of ['401', '429', '503']) {
        expect([name, status, operation.responses[status]?.content?.['application/json']?.schema]).toEqual([name, status, ERROR_SCHEMA]);
      }
      expect(Object.keys(operation.responses['429']?.headers ?? {}).sort()).toEqual(['RateLimit', 'RateLimit-Policy', 'Retry-After']);
    }
    for (const { operation } of open()) {
      expect(operation.responses['401']).toBeUndefined();
      expect(operation.responses['429']).toBeUndefined();
    }
    expect(doc.paths['/contact/health']?.get?.responses['503']).toBeDefined();
  });
});

describe('what the document says about access, against a service with keys', () => {
  let keyed: TestApp;
  beforeAll(() => {
    keyed = createTestApp({ env: { API_KEYS: KEY } });
  });
  afterAll(() => keyed.close());

  const call = (method: string, path: string) =>
    request(keyed.app)[method as 'get' | 'post' | 'patch' | 'delete'](path.replace(/\{[^}]+\}/g, '1'));

  it('answers 401 without a key on every route the document guards, and not on the others', async () => {
    for (const { name, method, path, operation } of operations()) {
      const res = await call(method, path);
      if (operation.security) expect([name, res.status, res.body.error?.code]).toEqual([name, 401, 'UNAUTHORIZED']);
      else expect([name, res.status]).toEqual([name, 200]);
    }
  });
});

describe('Idempotency-Key in the OpenAPI document', () => {
  const IDEMPOTENT = ['POST /contact', 'POST /contact/note'];

  it('is an optional header of the two creations, and of no other route', () => {
    for (const { name, operation } of operations()) {
      const header = operation.parameters?.find((parameter) => parameter.in === 'header' && parameter.name === 'Idempotency-Key');
      if (IDEMPOTENT.includes(name)) expect([name, header?.required, header?.schema.pattern]).toEqual([name, false, expect.any(String)]);
      else expect([name, header]).toEqual([name, undefined]);
    }
  });

  it('declares the replay header and the 409 and 422 answers of the creations', () => {
    for (const name of IDEMPOTENT) {
      const operation = operations().find((op) => op.name === name)!.operation;
      expect(operation.responses['201']?.headers).toHaveProperty('Idempotent-Replayed');
      expect(operation.responses['409']?.description).toMatch(/IDEMPOTENCY_KEY_IN_USE/);
      expect(operation.responses['422']?.description).toMatch(/IDEMPOTENCY_KEY_REUSED/);
    }
    // The creation's own 409 is still described beside it.
    expect(operations().find((op) => op.name === 'POST /contact')!.operation.responses['409']?.description).toMatch(/CONTACT_EXISTS/);
  });
});
