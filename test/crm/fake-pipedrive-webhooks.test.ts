import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakePipedrive } from '../../testkit/fake-pipedrive';
import { waitFor } from '../support/wait-for';

/** The fake delivers Pipedrive's webhooks v2 for persons, with faults a test can switch on. */

interface Payload {
  meta: Record<string, unknown> & { action: string; id: string; attempt: number; entity_id: string };
  data: Record<string, unknown>;
  previous: Record<string, unknown> | null;
}

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  payload: Payload;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const RFC3339_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const RFC3339_S = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const RETRY_DELAYS_MS = [30, 60];

/** A subscriber on 127.0.0.1: records what it receives and answers what `respond` says. */
let receiver: Server;
let receiverUrl: string;
let received: Received[] = [];
let respond: (payload: Payload) => number | 'hang';
let fake: FakePipedrive;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const payload = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Payload;
      received.push({ path: req.url ?? '', headers: req.headers, payload });
      const status = respond(payload);
      if (status !== 'hang') res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  fake = await FakePipedrive.start({ webhooks: { retryDelaysMs: RETRY_DELAYS_MS, timeoutMs: 2_000 } });
});
beforeEach(() => {
  fake.reset();
  received = [];
  respond = () => 200;
});
afterAll(async () => {
  await fake.close();
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
});

async function call(method: string, path: string, body?: unknown, target = fake) {
  const res = await fetch(`${target.url}${path}`, {
    method,
    headers: { 'x-api-token': target.token, ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { data?: Record<string, unknown> } };
}

async function subscribe(fields: Record<string, unknown> = {}, target = fake): Promise<number> {
  const created = await call('POST', '/v1/webhooks', { subscription_url: `${receiverUrl}/hooks`, event_action: '*', event_object: 'person', name: 'mirror', ...fields }, target);
  expect(created.status).toBe(201);
  return created.body.data!.id as number;
}

/** What the receiver got for `action` (one delivery expected). */
function only(action: string): Received {
  const matching = received.filter((delivery) => delivery.payload.meta.action === action);
  expect(matching).toHaveLength(1);
  return matching[0]!;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('subscriptions', () => {
  it('are created (201, a BaseWebhook), listed and deleted, each call spending its x-token-cost', async () => {
    const created = await call('POST', '/v1/webhooks', {
      subscription_url: `${receiverUrl}/hooks`,
      event_action: '*',
      event_object: 'person',
      name: 'mirror',
      http_auth_user: 'mirror',
      http_auth_password: 'secret',
    });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      status: 'ok',
      success: true,
      data: {
        id: expect.any(Number),
        company_id: 1,
        owner_id: 1,
        user_id: 1,
        event_action: '*',
        event_object: 'person',
        subscription_url: `${receiverUrl}/hooks`,
        version: '2.0',
        is_active: 1,
        add_time: expect.stringMatching(RFC3339_MS),
        remove_time: null,
        type: 'general',
        http_auth_user: 'mirror',
        http_auth_password: 'secret',
        remove_reason: null,
        last_delivery_time: null,
        last_http_status: null,
        admin_id: 1,
        name: 'mirror',
      },
    });
    const id = created.body.data!.id as number;
    expect(fake.webhooks.get(id)).toEqual(created.body.data);

    expect(await call('GET', '/v1/webhooks')).toEqual({ status: 200, body: { status: 'ok', success: true, data: [created.body.data] } });
    expect(await call('DELETE', `/v1/webhooks/${id}`)).toEqual({ status: 200, body: { status: 'ok', success: true } });
    expect(await call('DELETE', `/v1/webhooks/${id}`)).toEqual({ status: 404, body: { status: 'error', success: false, errors: { id: ['not found'] } } });
    expect(fake.webhooks.size).toBe(0);
    expect(fake.tokensSpent).toBe(10 + 10 + 6 + 6);
  });

  it('refuse a subscription_url that is not an http(s) URL the fake can reach, as the document’s example answers', async () => {
    for (const url of ['not a url', 'ftp://127.0.0.1/hooks', 'http://example.org/hooks', `${fake.url}/v1/notes`]) {
      expect(await call('POST', '/v1/webhooks', { subscription_url: url, event_action: '*', event_object: 'person', name: 'mirror' })).toEqual({
        status: 400,
        body: { status: 'error', success: false, errors: { subscription_url: ['invalid or non-reachable URL'] } },
      });
    }
    expect(fake.webhooks.size).toBe(0);
  });

  it('refuse what the document rejects with a 400 by field, recorded as a contract violation', async () => {
    const refused = await call('POST', '/v1/webhooks', { subscription_url: `${receiverUrl}/hooks`, event_action: 'updated', event_object: 'person' });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ status: 'error', success: false, errors: { name: [expect.any(String)], event_action: [expect.any(String)] } });
    expect(fake.contractViolations.splice(0)).toEqual([
      "POST /v1/webhooks: body must have required property 'name'",
      'POST /v1/webhooks: body/event_action must be equal to one of the allowed values',
    ]);
  });
});

describe('deliveries', () => {
  it('tell of API creates, changes and deletes in webhooks v2 form, with the person as v2 answers it and Basic credentials', async () => {
    const webhookId = await subscribe({ http_auth_user: 'mirror', http_auth_password: 'secret' });
    const created = await call('POST', '/api/v2/persons', { name: 'Ada', emails: [{ value: 'ada@example.com', primary: true, label: 'work' }] });
    const id = created.body.data!.id as number;
    const changed = await call('PATCH', `/api/v2/persons/${id}`, { name: 'Ada Lovelace' });
    expect((await call('DELETE', `/api/v2/persons/${id}`)).status).toBe(200);
    await fake.webhooksSettled();

    expect(received).toHaveLength(3);
    for (const { path, headers, payload } of received) {
      expect(path).toBe('/hooks');
      expect(headers).toMatchObject({
        'content-type': 'application/json',
        'user-agent': 'Pipedrive-Webhook',
        authorization: `Basic ${Buffer.from('mirror:secret').toString('base64')}`,
      });
      expect(payload.meta).toEqual({
        action: expect.any(String),
        entity: 'person',
        entity_id: String(id),
        id: expect.stringMatching(UUID),
        version: '2.0',
        company_id: 1,
        user_id: 1,
        timestamp: expect.stringMatching(RFC3339_MS),
        correlation_id: expect.stringMatching(UUID),
        change_source: 'api',
        attempt: 1,
        webhook_id: String(webhookId),
        webhook_owner_id: 1,
        is_bulk_edit: false,
        host: 'fake.pipedrive.com',
        permitted_user_ids: [1],
      });
    }
    expect(new Set(received.map(({ payload }) => payload.meta.id)).size).toBe(3);
    expect(only('create').payload).toMatchObject({ data: created.body.data, previous: null });
    expect(only('change').payload).toMatchObject({ data: changed.body.data, previous: { name: 'Ada' } });
    expect(only('delete').payload).toMatchObject({ data: { ...changed.body.data, is_deleted: false }, previous: null });
    expect(fake.deliveries.map(({ action, entityId, attempt, status }) => ({ action, entityId, attempt, status }))).toEqual(
      expect.arrayContaining(['create', 'change', 'delete'].map((action) => ({ action, entityId: id, attempt: 1, status: 200 }))),
    );
  });

  it('tell of nothing for a PATCH that changes nothing', async () => {
    await subscribe();
    const created = await call('POST', '/api/v2/persons', { name: 'Ada', emails: [{ value: 'ada@example.com', primary: true, label: 'work' }] });
    const id = created.body.data!.id as number;
    expect((await call('PATCH', `/api/v2/persons/${id}`, { name: 'Ada', emails: [{ value: 'ada@example.com' }] })).status).toBe(200);
    await fake.webhooksSettled();
    expect(received.map(({ payload }) => payload.meta.action)).toEqual(['create']);
    expect(fake.deliveries).toHaveLength(1);
  });

  it('tell of a user’s seed, edit and delete as change_source app, with only what changed in previous', async () => {
    await subscribe();
    const ada = fake.seedPerson({ name: 'Ada', email: 'ada@example.com', phone: '+15550001' });
    fake.editPerson(ada.id, (person) => {
      person.emails = [{ value: 'lovelace@example.com', primary: true, label: 'home' }];
    });
    fake.deletePerson(ada.id);
    await fake.webhooksSettled();

    expect(received.map(({ payload }) => payload.meta.change_source)).toEqual(['app', 'app', 'app']);
    expect(received.every(({ headers }) => headers.authorization === undefined)).toBe(true);
    expect(only('create').payload.previous).toBeNull();
    expect(only('change').payload).toMatchObject({
      data: { id: ada.id, name: 'Ada', emails: [{ value: 'lovelace@example.com', primary: true, label: 'home' }], owner_id: 1, visible_to: 3 },
      previous: { emails: [{ value: 'ada@example.com', primary: true, label: 'work' }] },
    });
    expect(Object.keys(only('change').payload.previous!)).toEqual(['emails']);
    expect(only('delete').payload.data).toMatchObject({ id: ada.id, is_deleted: false });
  });

  it('tell of a merge with a delete naming the survivor in merged_to_id and a change of the survivor', async () => {
    await subscribe();
    const ada = fake.seedPerson({ name: 'Ada', email: 'ada@example.com' });
    const survivor = fake.seedPerson({ name: 'Ada Lovelace', email: 'lovelace@example.com' });
    await fake.webhooksSettled();
    received = [];

    fake.mergePersons(ada.id, survivor.id);
    await fake.webhooksSettled();
    const deleted = only('delete').payload;
    const changed = only('change').payload;
    expect(deleted.meta).toMatchObject({ entity_id: String(ada.id), merged_to_id: String(survivor.id), change_source: 'app' });
    expect(deleted.data).toMatchObject({ id: ada.id, name: 'Ada' });
    expect(changed.meta).toMatchObject({ entity_id: String(survivor.id), change_source: 'app', correlation_id: deleted.meta.correlation_id });
    expect(changed.meta).not.toHaveProperty('merged_to_id');
    expect(changed.data.emails).toHaveLength(2);
    expect(changed.previous).toEqual({ emails: [{ value: 'lovelace@example.com', primary: true, label: 'work' }] });

    received = [];
    const grace = fake.seedPerson({ name: 'Grace' });
    expect((await call('PUT', `/v1/persons/${grace.id}/merge`, { merge_with_id: survivor.id })).status).toBe(200);
    await fake.webhooksSettled();
    expect(received.map(({ payload }) => [payload.meta.action, payload.meta.change_source, payload.meta.merged_to_id])).toEqual(
      expect.arrayContaining([
        ['delete', 'api', String(survivor.id)],
        ['change', 'api', undefined],
      ]),
    );
  });

  it('go only to active subscriptions whose event_action and event_object match', async () => {
    const deletes = await subscribe({ event_action: 'delete' });
    await subscribe({ event_object: 'note' });
    const inactive = await subscribe();
    fake.webhooks.get(inactive)!.is_active = 0;
    const ada = fake.seedPerson({ name: 'Ada' });
    fake.editPerson(ada.id, (person) => {
      person.name = 'Ada Lovelace';
    });
    fake.deletePerson(ada.id);
    await fake.webhooksSettled();
    expect(received.map(({ payload }) => [payload.meta.webhook_id, payload.meta.action])).toEqual([[String(deletes), 'delete']]);
  });
});

describe('delivery failures', () => {
  it('retry a delivery answered 500 after the first delay, with the same id and attempt 2', async () => {
    await subscribe();
    respond = (payload) => (payload.meta.attempt === 1 ? 500 : 200);
    const ada = fake.seedPerson({ name: 'Ada' });
    await fake.webhooksSettled();

    expect(received.map(({ payload }) => payload.meta.attempt)).toEqual([1, 2]);
    expect(received[1]!.payload.meta.id).toBe(received[0]!.payload.meta.id);
    expect(received[1]!.payload.meta.timestamp).toBe(received[0]!.payload.meta.timestamp);
    const [first, second] = fake.deliveries;
    expect(fake.deliveries).toEqual([
      { webhookId: expect.any(Number), deliveryId: received[0]!.payload.meta.id, action: 'create', entityId: ada.id, attempt: 1, status: 500, at: expect.any(Number) },
      { webhookId: expect.any(Number), deliveryId: received[0]!.payload.meta.id, action: 'create', entityId: ada.id, attempt: 2, status: 200, at: expect.any(Number) },
    ]);
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(RETRY_DELAYS_MS[0]! - 5);
  });

  it('retry after timeouts and connection errors, and give up after the last delay', async () => {
    const patient = await FakePipedrive.start({ webhooks: { retryDelaysMs: [20, 40], timeoutMs: 400 } });
    try {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const closedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/hooks`;
      await new Promise((resolve) => closed.close(resolve));
      const hanging = await subscribe({}, patient);
      const unreachable = await subscribe({ subscription_url: closedUrl }, patient);
      respond = () => 'hang';

      const started = Date.now();
      patient.seedPerson({ name: 'Ada' });
      await expect(patient.webhooksSettled(50)).rejects.toThrow(/after 50 ms/);
      await patient.webhooksSettled();
      expect(Date.now() - started).toBeGreaterThanOrEqual(3 * 400 + 20 + 40 - 10);

      const attempts = (webhookId: number) => patient.deliveries.filter((delivery) => delivery.webhookId === webhookId).map(({ attempt, status }) => [attempt, status]);
      expect(attempts(hanging)).toEqual([
        [1, 'timeout'],
        [2, 'timeout'],
        [3, 'timeout'],
      ]);
      expect(attempts(unreachable)).toEqual([
        [1, 'error'],
        [2, 'error'],
        [3, 'error'],
      ]);
      expect(new Set(patient.deliveries.filter((delivery) => delivery.webhookId === hanging).map((delivery) => delivery.deliveryId)).size).toBe(1);
      await sleep(150);
      expect(patient.deliveries).toHaveLength(6);
      expect(received).toHaveLength(3);
    } finally {
      await patient.close();
    }
  });

  it('lose a delivery with a drop fault', async () => {
    await subscribe();
    const ada = fake.seedPerson({ name: 'Ada' });
    fake.webhookFault({ kind: 'drop', times: 1, match: { action: 'change', entityId: ada.id } });
    const grace = fake.seedPerson({ name: 'Grace' });
    for (const person of [ada, grace, ada]) {
      fake.editPerson(person.id, (edited) => {
        edited.name += '!';
      });
    }
    await fake.webhooksSettled();
    expect(received.map(({ payload }) => [payload.meta.action, payload.meta.entity_id, payload.data.name]).sort()).toEqual(
      [
        ['create', String(ada.id), 'Ada'],
        ['create', String(grace.id), 'Grace'],
        ['change', String(grace.id), 'Grace!'],
        ['change', String(ada.id), 'Ada!!'],
      ].sort(),
    );
  });

  it('deliver twice with a duplicate fault: the same id, both attempt 1', async () => {
    await subscribe();
    fake.webhookFault({ kind: 'duplicate', times: 1 });
    fake.seedPerson({ name: 'Ada' });
    await fake.webhooksSettled();
    expect(received).toHaveLength(2);
    expect(received[0]!.payload).toEqual(received[1]!.payload);
    expect(received[0]!.payload.meta.attempt).toBe(1);
    expect(fake.deliveries.map(({ attempt, status }) => [attempt, status])).toEqual([
      [1, 200],
      [1, 200],
    ]);
  });

  it('hold a delivery back until releaseHeld(), so that later events overtake it', async () => {
    await subscribe();
    fake.webhookFault({ kind: 'hold', match: { action: 'create' } });
    const ada = fake.seedPerson({ name: 'Ada' });
    fake.editPerson(ada.id, (person) => {
      person.name = 'Ada Lovelace';
    });
    await fake.webhooksSettled();
    expect(received.map(({ payload }) => payload.meta.action)).toEqual(['change']);

    fake.clearFaults();
    fake.releaseHeld();
    await fake.webhooksSettled();
    expect(received.map(({ payload }) => [payload.meta.action, payload.data.name])).toEqual([
      ['change', 'Ada Lovelace'],
      ['create', 'Ada'],
    ]);
  });
});

describe('the clock and the fake’s lifetime', () => {
  it('advanceClock moves update_time and meta.timestamp forward without sleeping', async () => {
    await subscribe();
    const ada = fake.seedPerson({ name: 'Ada' });
    const seeded = ada.update_time;
    fake.advanceClock(60_000);
    const before = Date.now();
    fake.editPerson(ada.id, (person) => {
      person.name = 'Ada Lovelace';
    });
    expect(ada.update_time).toMatch(RFC3339_S);
    expect(Date.parse(ada.update_time) - Date.parse(seeded)).toBeGreaterThanOrEqual(59_000);
    expect(Date.parse(ada.update_time) - Date.parse(seeded)).toBeLessThan(65_000);

    fake.advanceClock(2_000);
    const patched = await call('PATCH', `/api/v2/persons/${ada.id}`, { name: 'Countess' });
    expect(Date.parse(patched.body.data!.update_time as string) - Date.parse(ada.add_time)).toBeGreaterThanOrEqual(61_000);
    await fake.webhooksSettled();
    expect(Date.parse(only('create').payload.meta.timestamp as string)).toBeLessThan(before + 1_000);
    const changes = received.filter(({ payload }) => payload.meta.action === 'change').map(({ payload }) => Date.parse(payload.meta.timestamp as string));
    expect(changes).toHaveLength(2);
    expect(changes.every((at) => at >= before + 60_000)).toBe(true);
  });

  it('reset() forgets subscriptions and deliveries and cancels pending retries', async () => {
    await subscribe();
    respond = () => 500;
    fake.seedPerson({ name: 'Ada' });
    await waitFor('the first attempt', () => fake.deliveries.length === 1, 5_000, 5);
    fake.reset();
    expect(fake.webhooks.size).toBe(0);
    expect(fake.deliveries).toEqual([]);
    await fake.webhooksSettled(0);
    await sleep(RETRY_DELAYS_MS[0]! + 100);
    expect(received).toHaveLength(1);
  });

  it('close() cancels pending retries', async () => {
    const closing = await FakePipedrive.start({ webhooks: { retryDelaysMs: [50] } });
    await subscribe({}, closing);
    respond = () => 500;
    closing.seedPerson({ name: 'Ada' });
    await waitFor('the first attempt', () => closing.deliveries.length === 1, 5_000, 5);
    await closing.close();
    await sleep(150);
    expect(received).toHaveLength(1);
  });
});
