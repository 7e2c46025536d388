import { PassThrough } from 'node:stream';
import { stripVTControlCharacters } from 'node:util';
import request from 'supertest';
import { createLogger, readableLogStream } from '../../src/logger';
import { failInserts } from '../support/database-fault';
import { createTestApp, type TestApp } from '../support/test-app';

const KEY = 'logs-key-0123456789';
const logLines: string[] = [];
let t: TestApp;
beforeAll(() => {
  t = createTestApp({ env: { API_KEYS: KEY }, logLines });
});
beforeEach(async () => {
  await t.reset();
  logLines.length = 0;
});
afterAll(() => t.close());

type Entry = Record<string, unknown> & { req?: { id?: string }; res?: unknown };
const entries = (): Entry[] => logLines.map((line) => JSON.parse(line));
const closingLine = (id: string) => entries().find((entry) => entry.req?.id === id && entry.res !== undefined);

/** What `lines` (pino's JSON) look like on a terminal, without colours. */
async function readable(lines: string[]): Promise<string[]> {
  const terminal = new PassThrough();
  let printed = '';
  terminal.on('data', (chunk: Buffer) => (printed += chunk.toString()));
  const stream = readableLogStream(terminal);
  for (const line of lines) stream.write(`${line}\n`);
  stream.end();
  await new Promise((resolve) => terminal.on('finish', resolve));
  return stripVTControlCharacters(printed).split('\n').filter(Boolean);
}

describe("a request's log line", () => {
  it('holds the request id, method, route pattern, status and duration', async () => {
    const created = await request(t.app).post('/contact').set('x-api-key', KEY).set('x-request-id', 'create-1').send({ name: 'Ada' }).expect(201);
    const id = created.body.contact_id as number;
    await request(t.app).get(`/contact/${id}`).set('x-api-key', KEY).set('x-request-id', 'read-1').expect(200);

    expect(closingLine('create-1')).toMatchObject({ req: { method: 'POST' }, route: '/contact', res: { statusCode: 201 } });
    const line = closingLine('read-1');
    expect(line).toEqual(
      expect.objectContaining({
        msg: 'request completed',
        req: { id: 'read-1', method: 'GET', url: `/contact/${id}` },
        route: '/contact/:id',
        res: { statusCode: 200 },
        responseTime: expect.any(Number),
      }),
    );
  });

  it('carries no headers, nor the query string', async () => {
    await request(t.app).get('/contacts?email=ada@example.com').set('x-api-key', KEY).set('x-request-id', 'list-1').expect(200);
    await request(t.app).get('/nowhere').set('x-request-id', 'unknown-1').expect(401);
    expect(closingLine('list-1')).toMatchObject({ req: { url: '/contacts' }, route: '/contacts' });
    expect(closingLine('unknown-1')).toMatchObject({ req: { url: '/nowhere' }, res: { statusCode: 401 } });
    expect(closingLine('unknown-1')).not.toHaveProperty('route');
    const everything = logLines.join('\n');
    expect(everything).not.toMatch(/headers|content-security-policy|x-api-key|ada@example\.com/i);
  });

  it('of a 500 keeps the route, the real error being on the line of the error handler', async () => {
    const failing = createTestApp({ logLines });
    const fault = await failInserts(failing.prisma, 'contacts', 'contacts store exploded');
    try {
      await request(failing.app).post('/contact').set('x-request-id', 'fail-1').send({ name: 'Ada' }).expect(500);
    } finally {
      await fault.remove();
      await failing.close();
    }
    const lines = entries().filter((entry) => entry.req?.id === 'fail-1');
    expect(lines).toEqual([
      expect.objectContaining({ msg: 'request failed', err: expect.objectContaining({ message: expect.stringContaining('contacts store exploded') }) }),
      expect.objectContaining({ msg: 'request errored', route: '/contact', res: { statusCode: 500 }, responseTime: expect.any(Number) }),
    ]);
    expect(lines[1]).not.toHaveProperty('err');
  });
});

describe('above info', () => {
  it('writes no request lines, and an error line still names its request', async () => {
    const failing = createTestApp({ logLines });
    failing.logger.level = 'warn';
    const fault = await failInserts(failing.prisma, 'contacts', 'contacts store exploded');
    try {
      await request(failing.app).get('/contacts').set('x-request-id', 'quiet-1').expect(200);
      await request(failing.app).post('/contact?source=form').set('x-request-id', 'fail-2').send({ name: 'Ada' }).expect(500);
    } finally {
      await fault.remove();
      await failing.close();
    }
    expect(entries()).toEqual([
      expect.objectContaining({
        level: 50,
        msg: 'request failed',
        req: { id: 'fail-2', method: 'POST', url: '/contact' },
        err: expect.objectContaining({ message: expect.stringContaining('contacts store exploded') }),
      }),
    ]);
  });
});

describe('readable lines', () => {
  it('print one line per event: the request line says method, route, status, duration and request id', async () => {
    await request(t.app).get('/contacts').set('x-api-key', KEY).set('x-request-id', 'pretty-1').expect(200);
    await request(t.app).post('/contact').set('x-api-key', KEY).set('x-request-id', 'pretty-2').send({ name: 7 }).expect(400);
    const printed = await readable(logLines);
    expect(printed).toHaveLength(logLines.length);
    expect(printed).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: request completed GET \/contacts 200 \d+ms req=pretty-1$/),
        expect.stringMatching(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: request completed POST \/contact 400 \d+ms req=pretty-2$/),
      ]),
    );
  });

  it("keep an error's type and message, and other fields (redacted as in JSON), on the event's line", async () => {
    const lines: string[] = [];
    const logger = createLogger('info', { write: (line: string) => void lines.push(line) });
    logger.warn({ err: new TypeError('no such thing'), error: 'Pipedrive said 502', jobId: 7 }, 'mirror job failed');
    logger.info({ pipedrive: { apiKey: 'secret-key' } }, 'configured');
    expect(await readable(lines)).toEqual([
      expect.stringMatching(/WARN: mirror job failed \(TypeError: no such thing\) \{"error":"Pipedrive said 502","jobId":7\}$/),
      expect.stringMatching(/INFO: configured \{"pipedrive":\{"apiKey":"\[redacted\]"\}\}$/),
    ]);
  });
});
