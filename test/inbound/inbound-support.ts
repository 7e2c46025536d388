import request from 'supertest';
import { startHttpServer, type HttpServer } from '../../src/http/http-server';
import type { FakePipedrive } from '../../testkit/fake-pipedrive';
import { fastMirrorEnv } from '../mirror/mirror-support';
import { createTestApp, type TestApp } from '../support/test-app';
import { waitFor } from '../support/wait-for';

export const WEBHOOK_USER = 'pipedrive';
export const WEBHOOK_PASSWORD = 'webhook-secret-0123456789';

/** Pipedrive's retries (3 s, 30 s, 150 s), scaled down. */
export const FAKE_WEBHOOKS = { retryDelaysMs: [200, 400, 800], timeoutMs: 5_000 };

export interface SyncedApp {
  t: TestApp;
  http: HttpServer;
  /** Where Pipedrive delivers: the app's POST /webhooks/pipedrive. */
  receiverUrl: string;
  close(): Promise<void>;
}

/**
 * The app with its mirror worker, served over HTTP on 127.0.0.1 so that the fake can deliver
 * webhooks to it, and subscribed to every person change as `pipedrive webhooks install` does.
 */
export async function startSyncedApp(fake: FakePipedrive, env: Record<string, string> = {}, subscribe = true, logLines?: string[]): Promise<SyncedApp> {
  const t = createTestApp({
    env: fastMirrorEnv(fake, { PIPEDRIVE_WEBHOOK_USER: WEBHOOK_USER, PIPEDRIVE_WEBHOOK_PASSWORD: WEBHOOK_PASSWORD, ...env }),
    logLines,
  });
  await t.reset();
  await t.startWorker();
  const http = await startHttpServer(t.app, { port: 0, host: '127.0.0.1', inFlight: t.inFlight, logger: t.logger });
  const receiverUrl = `http://127.0.0.1:${http.port}/webhooks/pipedrive`;
  if (subscribe) {
    await t.services.pipedrive!.client.createWebhook({ url: receiverUrl, action: '*', object: 'person', name: 'contact-sync', user: WEBHOOK_USER, password: WEBHOOK_PASSWORD });
  }
  return {
    t,
    http,
    receiverUrl,
    close: async () => {
      await http.stop(1_000);
      await t.close();
    },
  };
}

/** Every delivery made, retried or given up, and every recorded one processed. */
export async function settled(fake: FakePipedrive, t: TestApp): Promise<void> {
  await fake.webhooksSettled();
  await waitFor(
    'every recorded delivery to be processed',
    async () => (await t.prisma.pipedriveWebhookDelivery.count({ where: { processedAt: null } })) === 0,
    10_000,
  );
  await t.services.inbound.settled();
}

export const contactRow = (t: TestApp, id: number) => t.prisma.contact.findUniqueOrThrow({ where: { id } });

export async function eventsOf(t: TestApp, id: number): Promise<{ type: string; source: string; payload: Record<string, unknown> }[]> {
  return (await request(t.app).get(`/contact/${id}/events`).expect(200)).body.items;
}

export const deliveryOutcomes = async (t: TestApp) =>
  (await t.prisma.pipedriveWebhookDelivery.findMany({ orderBy: { receivedAt: 'asc' } })).map((d) => `${d.action} ${d.entityId}: ${d.outcome}`);
