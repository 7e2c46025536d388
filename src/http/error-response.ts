import { z } from 'zod';
import type { ResponseSpec } from './route';

export const ErrorResponse = z
  .object({
    success: z.literal(false),
    error: z
      .object({
        code: z.string().meta({ example: 'VALIDATION_ERROR' }),
        message: z.string(),
        details: z.unknown().optional(),
        contact_id: z.number().int().optional().meta({ description: 'The existing contact, on CONTACT_EXISTS' }),
      })
      .meta({ id: 'Error' }),
  })
  .meta({ id: 'ErrorResponse' });

export const errorResponse = (description: string): ResponseSpec => ({ description, schema: ErrorResponse });

/** Responses every route can give. */
export const commonErrors: Record<number, ResponseSpec> = {
  500: errorResponse('INTERNAL_ERROR: unexpected failure (details are logged, not returned)'),
  503: errorResponse('SERVICE_UNAVAILABLE: the database is unreachable'),
};

/** 413 and 415 can answer any request: the OpenAPI document declares them on every route. */
export const bodyErrors: Record<number, ResponseSpec> = {
  400: errorResponse('VALIDATION_ERROR (details per field), MALFORMED_JSON or MALFORMED_REQUEST'),
};
