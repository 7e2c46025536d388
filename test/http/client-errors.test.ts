import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerClientErrorsWithJson } from '../../src/http/client-errors';
import { createLogger } from '../../src/logger';
import { exchangeBytes } from '../fuzz/fuzz-support';
import { createTestApp, type TestApp } from '../support/test-app';

/**
 * Requests Node's HTTP parser refuses before Express sees them, sent as raw bytes: the answer must
 * still be the service's JSON error shape, and the server must go on serving.
 */

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Writes `bytes`, collects what comes back until the server closes or `timeoutMs`, and parses every response in it. */
async function exchange(port: number, bytes: string, timeoutMs = 3_000): Promise<{ responses: RawResponse[]; timedOut: boolean }> {
  const { raw, timedOut } = await exchangeBytes(port, bytes, { timeoutMs });
  return { responses: parseResponses(Buffer.from(raw, 'latin1')), timedOut };
}

function parseResponses(raw: Buffer): RawResponse[] {
  const responses: RawResponse[] = [];
  let rest = raw;
  for (;;) {
    const headEnd = rest.indexOf('\r\n\r\n');
    if (headEnd < 0) return responses;
    const [statusLine = '', ...lines] = rest.subarray(0, headEnd).toString('latin1').split('\r\n');
    const headers = Object.fromEntries(
      lines.map((line) => [line.slice(0, line.indexOf(':')).trim().toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
    );
    const length = Number(headers['content-length'] ?? rest.length - headEnd - 4);
    const body = rest.subarray(headEnd + 4, headEnd + 4 + length);
    responses.push({ status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine)?.[1] ?? 0), headers, body: body.toString('utf8') });
    rest = rest.subarray(headEnd + 4 + length);
  }
}

async function listen(server: http.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

async function close(server: http.Server | undefined): Promise<void> {
  if (!server?.listening) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Exactly one JSON error in our shape, on a connection the server closed. */
function expectJsonError(result: { responses: RawResponse[]; timedOut: boolean }, status: number, code: string): void {
  expect(result.timedOut).toBe(false);
  expect(result.responses).toHaveLength(1);
  const [response] = result.responses as [RawResponse];
  expect(response.status).toBe(status);
  expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
  expect(response.headers.connection).toBe('close');
  expect(Number(response.headers['content-length'])).toBe(Buffer.byteLength(response.body));
  expect(JSON.parse(response.body)).toEqual({ success: false, error: { code, message: expect.any(String) } });
}

const SECRET = 'key-that-must-not-be-logged';
const request = (lines: string[], body = '') => `${lines.join('\r\n')}\r\n\r\n${body}`;
const post = (headers: string[], body: string) =>
  request(['POST /contact HTTP/1.1', 'Host: localhost', 'Content-Type: application/json', `X-Api-Key: ${SECRET}`, ...headers], body);
const BODY = '{"name":"Raw"}';
const HEALTH = request(['GET /health HTTP/1.1', 'Host: localhost']);

let t: TestApp;
let server: http.Server;
let port: number;
const logLines: string[] = [];

beforeAll(async () => {
  t = createTestApp();
  server = http.createServer(t.app);
  answerClientErrorsWithJson(server, createLogger('debug', { write: (line: string) => void logLines.push(line) }));
  port = await listen(server);
});
afterAll(async () => {
  await close(server);
  await t.close();
});

describe('requests the HTTP parser refuses', () => {
  it.each<[string, string, number, string]>([
    ['a non-numeric Content-Length', post(['Content-Length: abc'], BODY), 400, 'MALFORMED_REQUEST'],
    ['two conflicting Content-Lengths', post(['Content-Length: 14', 'Content-Length: 15'], BODY), 400, 'MALFORMED_REQUEST'],
    ['a 20 kB header', post(['Content-Length: 14', `X-Big: ${'a'.repeat(20_000)}`], BODY), 431, 'HEADERS_TOO_LARGE'],
    ['a space in a header name', post(['Content-Length: 14', 'Bad Header: 1'], BODY), 400, 'MALFORMED_REQUEST'],
    ['a chunk size that is not hex', post(['Transfer-Encoding: chunked'], `zz\r\n${BODY}\r\n0\r\n\r\n`), 400, 'MALFORMED_REQUEST'],
  ])('answers %s with a JSON error and closes', async (_label, bytes, status, code) => {
    expectJsonError(await exchange(port, bytes), status, code);
  }, 10_000);

  it('still serves a well-formed request normally', async () => {
    const { responses, timedOut } = await exchange(port, request(['GET /health HTTP/1.1', 'Host: localhost', 'Connection: close']));
    expect(timedOut).toBe(false);
    expect(responses).toHaveLength(1);
    expect(responses[0]?.status).toBe(200);
    expect(JSON.parse(responses[0]?.body ?? '')).toEqual({ status: 'ok', timestamp: expect.any(String) });
  }, 10_000);

  it('answers a bad request pipelined after a good one after the good one’s answer', async () => {
    const { responses, timedOut } = await exchange(port, HEALTH + post(['Content-Length: abc'], BODY));
    expect(timedOut).toBe(false);
    expect(responses.map((response) => response.status)).toEqual([200, 400]);
    expect(JSON.parse(responses[0]?.body ?? '')).toMatchObject({ status: 'ok' });
    expect(JSON.parse(responses[1]?.body ?? '')).toEqual({ success: false, error: { code: 'MALFORMED_REQUEST', message: expect.any(String) } });
  }, 10_000);

  it('logs the refusal without the request bytes', async () => {
    logLines.length = 0;
    expectJsonError(await exchange(port, post(['Content-Length: abc'], BODY)), 400, 'MALFORMED_REQUEST');
    expect(logLines.some((line) => line.includes('malformed HTTP request refused'))).toBe(true);
    expect(logLines.join('\n')).not.toContain(SECRET);
  }, 10_000);
});

describe('a request that does not arrive in time', () => {
  let slow: http.Server | undefined;
  afterAll(() => close(slow));

  it('is answered 408 REQUEST_TIMEOUT in JSON', async () => {
    slow = http.createServer({ headersTimeout: 200, requestTimeout: 300, connectionsCheckingInterval: 50 }, t.app);
    answerClientErrorsWithJson(slow, createLogger('silent'));
    const slowPort = await listen(slow);
    // Headers that never end.
    expectJsonError(await exchange(slowPort, 'GET /health HTTP/1.1\r\nHost: localhost\r\n'), 408, 'REQUEST_TIMEOUT');
  }, 10_000);
});
