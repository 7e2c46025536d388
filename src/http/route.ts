import type { Request, Response, Router } from 'express';
import type { z } from 'zod';
import { ValidationError } from '../errors';
import {
  parseIdempotencyKey,
  requestHash,
  type IdempotentAnswer,
  type IdempotentRequests,
} from '../idempotency/idempotent-requests';
import { callerScope } from './api-keys';
import type { InFlightRequests } from './in-flight';

type Schema = z.ZodType | undefined;
/** Query strings and path parameters are objects of named values. */
type ObjectSchema = z.ZodObject | undefined;
type Parsed<S extends Schema> = S extends z.ZodType ? z.output<S> : undefined;

export interface RouteResult {
  status: number;
  /** Omitted for responses without a body (204). */
  body?: unknown;
  /**
   * The answer to send once the write is committed, when it differs: a creation waits for its
   * mirror (CRM_SYNC_WAIT_MS). Runs after the commit, outside an Idempotency-Key's transaction.
   */
  settle?: () => Promise<RouteResult>;
}

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
}

/**
 * One route of the API, declared once: Express serves it and the OpenAPI
 * document describes it from the same schemas, so the two cannot drift.
 */
export interface Route<B extends Schema = undefined, Q extends ObjectSchema = undefined, P extends ObjectSchema = undefined> {
  method: 'get' | 'post' | 'patch' | 'delete';
  /** Express syntax: `/contact/:id`. */
  path: string;
  summary: string;
  tag: string;
  body?: B;
  query?: Q;
  params?: P;
  responses: Record<number, ResponseSpec>;
  /** Honours the Idempotency-Key header: `handle` then runs in the transaction that stores the answer. */
  idempotent?: boolean;
  /**
   * The route's own authentication (instead of the API keys: see api-keys.ts, OWN_AUTH_PATHS),
   * checked before the input is read; throws UnauthorizedError.
   */
  authenticate?: (header: (name: string) => string | undefined) => void;
  /** Told of input the route's schemas refuse (400), e.g. to log what a machine caller sent wrong. */
  onInvalidInput?: (error: ValidationError) => void;
  handle(input: { body: Parsed<B>; query: Parsed<Q>; params: Parsed<P> }): Promise<RouteResult>;
}

export type AnyRoute = Route<Schema, ObjectSchema, ObjectSchema>;

export const defineRoute = <B extends Schema = undefined, Q extends ObjectSchema = undefined, P extends ObjectSchema = undefined>(
  route: Route<B, Q, P>,
): AnyRoute => route as AnyRoute;

function parse(schema: Schema, value: unknown, what: string): unknown {
  if (!schema) return undefined;
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.flatMap((issue) => {
    const field = (key: PropertyKey[]) => key.map(String).join('.') || what;
    // An unknown key is an issue of its parent object; report it against the key itself.
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ field: field([...issue.path, key]), message: 'is not a known field' }));
    }
    return [{ field: field(issue.path), message: issue.message }];
  });
  throw new ValidationError(`Invalid ${what}`, issues);
}

export interface MountOptions {
  /** Follows every handler until it is done. */
  inFlight?: InFlightRequests;
  /** Serves Idempotency-Key on the routes that declare `idempotent`; without it the header is ignored. */
  idempotency?: IdempotentRequests;
}

const firstAnswer = (result: RouteResult): IdempotentAnswer => ({ status: result.status, body: result.body, replayed: false });

/** The route's answer, or its `settle`'s once the write is committed. */
const settled = (result: RouteResult): IdempotentAnswer | Promise<IdempotentAnswer> =>
  result.settle ? result.settle().then(firstAnswer) : firstAnswer(result);

function send(res: Response, answer: IdempotentAnswer): void {
  if (answer.replayed) res.setHeader('idempotent-replayed', 'true');
  res.status(answer.status);
  if (answer.body === undefined) res.end();
  else res.json(answer.body);
}

/**
 * Serves `routes` on `router`. Handlers chain their promises rather than await them: each await
 * (and each async function) is one more promise and turn of the microtask queue per request. A
 * rejection, or an error thrown while parsing, goes to the error handler all the same.
 */
export function mountRoutes(router: Router, routes: readonly AnyRoute[], options: MountOptions = {}): void {
  const { inFlight, idempotency } = options;
  for (const route of routes) {
    router[route.method](route.path, (req: Request, res: Response) => {
      route.authenticate?.((name) => req.get(name));
      let input: Parameters<AnyRoute['handle']>[0];
      try {
        input = {
          params: parse(route.params, req.params, 'path parameters'),
          query: parse(route.query, req.query, 'query'),
          body: parse(route.body, req.body, 'request body'),
        } as Parameters<AnyRoute['handle']>[0];
      } catch (error) {
        if (error instanceof ValidationError) route.onInvalidInput?.(error);
        throw error;
      }
      const key = route.idempotent && idempotency ? parseIdempotencyKey(req.get('idempotency-key')) : undefined;
      const handling =
        key !== undefined && idempotency
          ? idempotency.answer(
              { caller: callerScope(res), key, requestHash: requestHash(req.method, req.path, req.body) },
              () => route.handle(input),
            )
          : route.handle(input).then(settled);
      return (inFlight ? inFlight.track(handling) : handling).then((answer) => send(res, answer));
    });
  }
}
