import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { ValidationError } from '../errors';
import { commonErrors, errorResponse } from '../http/error-response';
import { UnauthorizedError } from '../http/http-errors';
import { defineRoute, type AnyRoute } from '../http/route';
import type { Logger } from '../logger';
import type { InboundSync } from './inbound-sync';
import { PipedriveWebhookDelivery, toPersonEvent } from './person-event';

const WebhookReceipt = z
  .object({
    received: z.literal(true),
    duplicate: z.boolean().meta({ description: 'The delivery id was received before: nothing more is done' }),
  })
  .meta({ id: 'WebhookReceipt' });

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * HTTP Basic credentials, compared as SHA-256 digests in constant time: Pipedrive signs nothing,
 * so they are all that tells its deliveries from anyone else's requests.
 */
export function basicCredentials(credentials: { user: string; password: string }): (header: (name: string) => string | undefined) => void {
  const expected = digest(`${credentials.user}:${credentials.password}`);
  return (header) => {
    const encoded = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header('authorization') ?? '')?.[1];
    if (!encoded) throw new UnauthorizedError('Pipedrive webhook credentials are required (HTTP Basic)');
    if (!timingSafeEqual(digest(Buffer.from(encoded, 'base64').toString('utf8')), expected)) {
      throw new UnauthorizedError('The Pipedrive webhook credentials are not valid');
    }
  };
}

/**
 * POST /webhooks/pipedrive: Pipedrive's webhook v2 deliveries for persons. The answer comes as soon
 * as the delivery is recorded (Pipedrive bans a webhook that keeps failing or answering late); the
 * change is taken in in the background (InboundSync).
 */
export function webhookRoutes(inbound: InboundSync, credentials: { user: string; password: string }, logger: Logger): AnyRoute[] {
  const authenticate = basicCredentials(credentials);
  return [
    defineRoute({
      method: 'post',
      path: '/webhooks/pipedrive',
      summary: 'Receives Pipedrive webhook v2 deliveries for persons (HTTP Basic: PIPEDRIVE_WEBHOOK_USER / PIPEDRIVE_WEBHOOK_PASSWORD)',
      tag: 'Two-way sync',
      body: PipedriveWebhookDelivery,
      authenticate: (header) => {
        try {
          authenticate(header);
        } catch (error) {
          logger.warn({ reason: (error as Error).message }, 'refused a Pipedrive webhook delivery: bad credentials');
          throw error;
        }
      },
      onInvalidInput: (error) => logger.warn({ issues: error.issues }, 'refused a Pipedrive webhook delivery: not a webhook v2 person delivery'),
      responses: {
        200: { description: 'Recorded (or recognised as a duplicate); processed in the background', schema: WebhookReceipt },
        400: errorResponse('VALIDATION_ERROR: not a webhook v2 delivery for a person'),
        401: errorResponse('UNAUTHORIZED: missing or wrong Basic credentials'),
        ...commonErrors,
      },
      handle: async ({ body }) => {
        const event = toPersonEvent(body);
        if (typeof event === 'string') {
          logger.warn({ problem: event, deliveryId: body.meta.id }, 'refused a Pipedrive webhook delivery');
          throw new ValidationError('Invalid Pipedrive webhook delivery', [{ field: 'body', message: event }]);
        }
        const fresh = await inbound.receive(event, body);
        return { status: 200, body: { received: true, duplicate: !fresh } };
      },
    }),
  ];
}
