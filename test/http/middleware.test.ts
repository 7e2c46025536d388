import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import helmet from 'helmet';
import request from 'supertest';
import { inSequence } from '../../src/http/app';
import { createTestApp, type TestApp } from '../support/test-app';

describe('security headers', () => {
  let t: TestApp;
  beforeAll(() => {
    t = createTestApp({ env: { API_KEYS: 'headers-key-0123456789' } });
  });
  afterAll(() => t.close());

  /** What helmet() adds to a response: the headers of a bare app with it, less those of one without it. */
  async function helmetHeaders(): Promise<Record<string, string>> {
    const bare = (app: express.Express) => app.get('/', (_req, res) => void res.json({}));
    const [withHelmet, without] = await Promise.all([request(bare(express().use(helmet()))).get('/'), request(bare(express())).get('/')]);
    const added = Object.entries(withHelmet.headers as Record<string, string>).filter(([name]) => !(name in without.headers) && name !== 'date');
    expect(added.length).toBeGreaterThan(5);
    return Object.fromEntries(added);
  }

  it.each([
    ['an answer', '/health', 200],
    ['an error', '/nowhere', 401],
  ])('are those helmet() sets, on %s', async (_what, path, status) => {
    const expected = await helmetHeaders();
    const res = await request(t.app).get(path).expect(status);
    expect(res.headers).toMatchObject(expected);
    expect(res.headers).not.toHaveProperty('x-powered-by');
  });
});

describe('inSequence', () => {
  /** An app running `handlers` as one middleware, then a route, with an error handler naming the error. */
  function appWith(handlers: RequestHandler[]): express.Express {
    const onError: ErrorRequestHandler = (error: Error, _req, res, _next) => void res.status(500).json({ error: error.message, ran: res.locals.ran });
    return express()
      .use(inSequence(handlers))
      .get('/', (_req, res) => void res.json({ ran: res.locals.ran }))
      .use(onError);
  }
  const mark =
    (name: string): RequestHandler =>
    (_req, res, next) => {
      res.locals.ran = [...((res.locals.ran as string[] | undefined) ?? []), name];
      next();
    };

  it('runs the handlers in order, then what follows', async () => {
    const res = await request(appWith([mark('a'), mark('b'), mark('c')])).get('/').expect(200);
    expect(res.body).toEqual({ ran: ['a', 'b', 'c'] });
  });

  const later: RequestHandler = (_req, _res, next) => void setImmediate(next);
  const fail =
    (message: string): RequestHandler =>
    () => {
      throw new Error(message);
    };

  it('runs those that call next later, as body parsers do', async () => {
    const res = await request(appWith([mark('a'), later, mark('b')])).get('/').expect(200);
    expect(res.body).toEqual({ ran: ['a', 'b'] });
  });

  it.each<[string, RequestHandler[], string]>([
    ['passed to next', [(_req, _res, next) => next(new Error('passed'))], 'passed'],
    ['thrown', [fail('thrown')], 'thrown'],
    ['thrown after a handler that called next later', [later, fail('thrown later')], 'thrown later'],
    [
      'of a rejected promise',
      [
        async () => {
          throw new Error('rejected');
        },
      ],
      'rejected',
    ],
    ['of a promise rejected with nothing', [() => Promise.reject(undefined)], 'Rejected promise'],
  ])('hands an error %s to the error handler, skipping the rest', async (_what, failing, message) => {
    const res = await request(appWith([mark('a'), ...failing, mark('b')])).get('/').expect(500);
    expect(res.body).toEqual({ error: message, ran: ['a'] });
  });
});
