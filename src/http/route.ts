import type { Request, Response, Router } from 'express';
import type { z } from 'zod';
import { ValidationError } from '../errors';
import type { InFlightRequests } from './in-flight';

type Schema = z.ZodType | undefined;
/** Query strings and path parameters are objects of named values. */
type ObjectSchema = z.ZodObject | undefined;
type Parsed<S extends Schema> = S extends z.ZodType ? z.output<S> : undefined;

export interface RouteResult {
  status: number;
  /** Omitted for responses without a body (204). */
  body?: unknown;
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

/** Serves `routes` on `router`; `inFlight`, when given, follows every handler until it is done. */
export function mountRoutes(router: Router, routes: readonly AnyRoute[], inFlight?: InFlightRequests): void {
  for (const route of routes) {
    router[route.method](route.path, async (req: Request, res: Response) => {
      const input = {
        params: parse(route.params, req.params, 'path parameters'),
        query: parse(route.query, req.query, 'query'),
        body: parse(route.body, req.body, 'request body'),
      } as Parameters<AnyRoute['handle']>[0];
      const handling = route.handle(input);
      const result = await (inFlight ? inFlight.track(handling) : handling);
      res.status(result.status);
      if (result.body === undefined) res.end();
      else res.json(result.body);
    });
  }
}
