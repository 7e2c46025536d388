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

export const bodyErrors: Record<number, ResponseSpec> = {
  400: errorResponse('VALIDATION_ERROR (details per field) or MALFORMED_JSON'),
  413: errorResponse('PAYLOAD_TOO_LARGE'),
  415: errorResponse('UNSUPPORTED_MEDIA_TYPE: send application/json'),
};
