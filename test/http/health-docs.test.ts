import request from 'supertest';
import { CreateContactBody } from '../../src/contacts/contact.schemas';
import { createTestApp, type TestApp } from '../support/test-app';

let t: TestApp;
beforeAll(() => {
  t = createTestApp({ env: { CORS_ORIGINS: 'https://crm.example.com' } });
});
afterAll(() => t.close());

describe('health', () => {
  it('GET /health answers 200 ok', async () => {
    const res = await request(t.app).get('/health').expect(200);
    expect(res.body).toEqual({ status: 'ok', timestamp: expect.any(String) });
  });

  it('GET /contact/health reports the database up and whether a CRM is configured', async () => {
    const res = await request(t.app).get('/contact/health').expect(200);
    expect(res.body).toEqual({ status: 'ok', timestamp: expect.any(String), crm_configured: false, crm: 'disabled', database: 'up' });
    const withCrm = createTestApp({ env: { PIPEDRIVE_API_KEY: 'token', PIPEDRIVE_BASE_URL: 'http://127.0.0.1:1' } });
    try {
      expect((await request(withCrm.app).get('/contact/health').expect(200)).body.crm_configured).toBe(true);
    } finally {
      await withCrm.close();
    }
  });
});

describe('OpenAPI', () => {
  it('describes every route with its methods', async () => {
    const res = await request(t.app).get('/openapi.json').expect(200);
    expect(res.body.openapi).toBe('3.1.0');
    const operations = Object.entries(res.body.paths as Record<string, object>).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations.sort()).toEqual(
      [
        'GET /health',
        'GET /contact/health',
        'POST /contact',
        'POST /contact/note',
        'POST /contact/{id}/sync',
        'GET /contact/{id}/events',
        'GET /sync/status',
        'PATCH /contact',
        'GET /contacts',
        'GET /contact/{id}',
        'DELETE /contact/{id}',
      ].sort(),
    );
  });

  it('takes its request schemas from the validating zod schemas', async () => {
    const res = await request(t.app).get('/openapi.json').expect(200);
    const schema = res.body.components.schemas.CreateContactBody;
    expect(schema.required).toEqual(['name']);
    expect(Object.keys(schema.properties).sort()).toEqual(Object.keys(CreateContactBody.shape).sort());
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.name.maxLength).toBe(255);
    const post = res.body.paths['/contact'].post;
    expect(post.requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/CreateContactBody' });
    expect(Object.keys(post.responses).sort()).toEqual(['201', '400', '401', '409', '413', '415', '422', '429', '500', '503']);
    const list = res.body.paths['/contacts'].get;
    expect(list.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`).sort()).toEqual(
      ['query:email', 'query:limit', 'query:phone', 'query:search', 'query:skip'],
    );
  });

  it('serves Swagger UI at /docs', async () => {
    const res = await request(t.app).get('/docs/').expect(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.text).toContain('swagger-ui');
  });
});

describe('CORS', () => {
  it('allows the configured origins only', async () => {
    const allowed = await request(t.app).get('/health').set('origin', 'https://crm.example.com').expect(200);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://crm.example.com');
    const other = await request(t.app).get('/health').set('origin', 'https://evil.example.net').expect(200);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('allows no cross-origin access when no origins are configured', async () => {
    const closed = createTestApp();
    try {
      const res = await request(closed.app).get('/health').set('origin', 'https://crm.example.com').expect(200);
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await closed.close();
    }
  });
});
