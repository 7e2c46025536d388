import pg from 'pg';
import request from 'supertest';
import { FakePipedrive } from '../../testkit/fake-pipedrive';
import { createTestApp, type TestApp } from '../support/test-app';
import { waitFor, waitForLockWaiters } from '../support/wait-for';
import { fastMirrorEnv } from '../mirror/mirror-support';

/**
 * Idempotency-Key on POST /contact and POST /contact/note: a retried request is answered from
 * what the first one stored, in the transaction of its write, and never written twice.
 */
const KEYS = { alice: 'key-alice', bob: 'key-bob' };

let t: TestApp;
let db: pg.Client;

beforeAll(async () => {
  db = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await db.connect();
});
afterAll(async () => {
  await db.end();
});

const countRows = async (table: 'contacts' | 'notes' | 'idempotency_keys') =>
  Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n);

describe('with one caller', () => {
  beforeAll(() => {
    t = createTestApp();
  });
  beforeEach(() => t.reset());
  afterAll(() => t.close());

  const createWithKey = (key: string, body: object) => request(t.app).post('/contact').set('Idempotency-Key', key).send(body);

  it('replays the stored answer of a contact creation, with Idempotent-Replayed, and writes once', async () => {
    const first = await createWithKey('create-1', { name: 'No Email' }).expect(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();

    const again = await createWithKey('create-1', { name: 'No Email' }).expect(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.headers['content-type']).toMatch(/^application\/json/);
    expect(again.body).toEqual(first.body);
    expect(await countRows('contacts')).toBe(1);
  });

  it('replays a note and adds it once', async () => {
    const contact = await request(t.app).post('/contact').send({ name: 'Ada' }).expect(201);
    const note = { contact_id: contact.body.contact_id, content: 'Wants a demo' };
    const first = await request(t.app).post('/contact/note').set('Idempotency-Key', 'note-1').send(note).expect(201);
    const again = await request(t.app).post('/contact/note').set('Idempotency-Key', 'note-1').send(note).expect(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(await countRows('notes')).toBe(1);
    // Without a key, a repeated note is a new note.
    await request(t.app).post('/contact/note').send(note).expect(201);
    expect(await countRows('notes')).toBe(2);
  });

  it('takes the same JSON in another key order or spacing as the same request', async () => {
    const first = await createWithKey('order', { name: 'Ada', phone: '+44 20 7946 0101' }).expect(201);
    const again = await request(t.app)
      .post('/contact')
      .set('Idempotency-Key', 'order')
      .set('content-type', 'application/json')
      .send('{ "phone" : "+44 20 7946 0101",\n  "name": "Ada" }')
      .expect(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body.contact_id).toBe(first.body.contact_id);
  });

  it('answers 422 IDEMPOTENCY_KEY_REUSED to the same key with another body, another route, and changes nothing', async () => {
    const first = await createWithKey('reused', { name: 'Ada' }).expect(201);
    const other = await createWithKey('reused', { name: 'Grace' }).expect(422);
    expect(other.body).toMatchObject({ success: false, error: { code: 'IDEMPOTENCY_KEY_REUSED' } });
    const note = await request(t.app)
      .post('/contact/note')
      .set('Idempotency-Key', 'reused')
      .send({ contact_id: first.body.contact_id, content: 'x' })
      .expect(422);
    expect(note.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await countRows('contacts')).toBe(1);
    expect(await countRows('notes')).toBe(0);
  });

  it('accepts the key as a Structured Field string, the IETF draft form', async () => {
    const first = await createWithKey('"quoted-1"', { name: 'Ada' }).expect(201);
    const bare = await createWithKey('quoted-1', { name: 'Ada' }).expect(201);
    expect(bare.headers['idempotent-replayed']).toBe('true');
    expect(bare.body.contact_id).toBe(first.body.contact_id);
  });

  it.each([
    ['empty', ''],
    ['256 characters', 'k'.repeat(256)],
    ['a space', 'two words'],
    ['a non-ASCII character', 'clé'],
    ['a control character', 'tab\there'],
  ])('answers 400 to a key with %s, and writes nothing', async (_what, key) => {
    const res = await request(t.app)
      .post('/contact')
      .set('Idempotency-Key', Buffer.from(key, 'utf8').toString('latin1'))
      .send({ name: 'Ada' })
      .expect(400);
    expect(res.body).toMatchObject({ success: false, error: { code: 'VALIDATION_ERROR', details: [{ field: 'Idempotency-Key' }] } });
    expect(await countRows('contacts')).toBe(0);
    expect(await countRows('idempotency_keys')).toBe(0);
  });

  it('accepts a 255-character key', async () => {
    await createWithKey('k'.repeat(255), { name: 'Ada' }).expect(201);
    expect((await createWithKey('k'.repeat(255), { name: 'Ada' }).expect(201)).headers['idempotent-replayed']).toBe('true');
  });

  it('does not store error answers: the key can be used again once the cause is gone', async () => {
    const taken = await request(t.app).post('/contact').send({ name: 'Ada', email: 'ada@example.com' }).expect(201);
    const conflict = await createWithKey('after-409', { name: 'Ada', email: 'ada@example.com' }).expect(409);
    expect(conflict.body.error.code).toBe('CONTACT_EXISTS');
    await createWithKey('after-400', { name: '' }).expect(400);
    await request(t.app).post('/contact/note').set('Idempotency-Key', 'after-404').send({ contact_id: 999, content: 'x' }).expect(404);
    expect(await countRows('idempotency_keys')).toBe(0);

    await request(t.app).delete(`/contact/${taken.body.contact_id}`).expect(204);
    const created = await createWithKey('after-409', { name: 'Ada', email: 'ada@example.com' }).expect(201);
    expect(created.headers['idempotent-replayed']).toBeUndefined();
    // A key whose request was refused for its body may carry a corrected body.
    await createWithKey('after-400', { name: 'Grace' }).expect(201);
  });

  it('writes once for 20 concurrent requests with one key; the others replay it', async () => {
    const body = { name: 'Burst', phone: '+1 202 555 0100' };
    const answers = await Promise.all(Array.from({ length: 20 }, () => createWithKey('burst', body)));
    expect(await countRows('contacts')).toBe(1);
    const created = answers.filter((res) => res.status === 201);
    // Each waits for the first to commit (milliseconds); 409 IN_USE only if that took longer than the wait.
    for (const res of answers.filter((r) => r.status !== 201)) {
      expect({ status: res.status, code: res.body.error?.code }).toEqual({ status: 409, code: 'IDEMPOTENCY_KEY_IN_USE' });
    }
    expect(created.filter((res) => res.headers['idempotent-replayed'] !== 'true')).toHaveLength(1);
    expect(new Set(created.map((res) => res.body.contact_id)).size).toBe(1);
  });

  it('forgets a key once it expires: the same key is then a new request', async () => {
    const first = await createWithKey('expiring', { name: 'Ada' }).expect(201);
    const ttl = await db.query<{ hours: string }>(`SELECT extract(epoch FROM expires_at - created_at) / 3600 AS hours FROM idempotency_keys`);
    expect(Number(ttl.rows[0]!.hours)).toBe(24); // IDEMPOTENCY_TTL_HOURS' default
    await db.query(`UPDATE idempotency_keys SET expires_at = now() - interval '1 second'`);

    const later = await createWithKey('expiring', { name: 'Ada' }).expect(201);
    expect(later.headers['idempotent-replayed']).toBeUndefined();
    expect(later.body.contact_id).not.toBe(first.body.contact_id);
    expect(await countRows('contacts')).toBe(2);
  });

  it('purges expired keys in batches, skipping rows a request holds, and keeps live ones', async () => {
    await db.query(
      `INSERT INTO idempotency_keys (caller, key, request_hash, response_status, response_body, expires_at)
       SELECT '', 'old-' || i, repeat('0', 64), 201, '{}', now() - interval '1 minute' FROM generate_series(1, 1200) AS i`,
    );
    await createWithKey('live', { name: 'Ada' }).expect(201);
    const holder = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM idempotency_keys WHERE key = 'old-7' FOR UPDATE`);
      const started = Date.now();
      expect(await t.services.idempotency.purgeExpired()).toBe(1199);
      expect(Date.now() - started).toBeLessThan(5_000);
      await holder.query('ROLLBACK');
    } finally {
      await holder.end();
    }
    const left = (await db.query<{ key: string }>(`SELECT key FROM idempotency_keys ORDER BY key`)).rows.map((r) => r.key);
    expect(left).toEqual(['live', 'old-7']);
    expect(await t.services.idempotency.purgeExpired()).toBe(1);
  });
});

describe('with two callers', () => {
  beforeAll(() => {
    t = createTestApp({ env: { API_KEYS: `${KEYS.alice},${KEYS.bob}` } });
  });
  beforeEach(() => t.reset());
  afterAll(() => t.close());

  it("never mixes two callers' keys", async () => {
    const post = (apiKey: string, body: object) =>
      request(t.app).post('/contact').set('x-api-key', apiKey).set('Idempotency-Key', 'shared-key').send(body);
    const alice = await post(KEYS.alice, { name: 'Ada' }).expect(201);
    const bob = await post(KEYS.bob, { name: 'Ada' }).expect(201);
    expect(bob.headers['idempotent-replayed']).toBeUndefined();
    expect(bob.body.contact_id).not.toBe(alice.body.contact_id);
    // Another body under the other caller's key is no reuse either.
    await post(KEYS.bob, { name: 'Grace' }).expect(422);
    const aliceAgain = await request(t.app)
      .post('/contact')
      .set('authorization', `Bearer ${KEYS.alice}`)
      .set('Idempotency-Key', 'shared-key')
      .send({ name: 'Ada' })
      .expect(201);
    expect(aliceAgain.headers['idempotent-replayed']).toBe('true');
    expect(aliceAgain.body.contact_id).toBe(alice.body.contact_id);
    expect(await countRows('contacts')).toBe(2);
  });
});

describe('while the first request is still running', () => {
  beforeAll(() => {
    // Long enough statements that the first request can be held inside its transaction.
    t = createTestApp({ env: { DATABASE_QUERY_TIMEOUT_MS: '6000' } });
  });
  beforeEach(() => t.reset());
  afterAll(() => t.close());

  it('answers 409 IDEMPOTENCY_KEY_IN_USE after waiting, then replays once the first has committed', async () => {
    const contact = await request(t.app).post('/contact').send({ name: 'Ada' }).expect(201);
    const note = { contact_id: contact.body.contact_id, content: 'Held' };
    const post = () => request(t.app).post('/contact/note').set('Idempotency-Key', 'held').send(note);

    // Another session holds the contact row: the note's foreign-key check waits for it, inside the
    // first request's transaction, which has claimed the key.
    const holder = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM contacts WHERE id = $1 FOR UPDATE', [note.contact_id]);
      const first = post().then((res) => res);
      await waitForLockWaiters(db, 1, 'the first request to wait inside its transaction');

      const started = Date.now();
      const second = await post();
      expect({ status: second.status, code: second.body.error?.code }).toEqual({ status: 409, code: 'IDEMPOTENCY_KEY_IN_USE' });
      // It waited (half of DATABASE_QUERY_TIMEOUT_MS) before giving up.
      expect(Date.now() - started).toBeGreaterThanOrEqual(2_900);

      await holder.query('ROLLBACK');
      expect((await first).status).toBe(201);
    } finally {
      await holder.end();
    }
    const third = await post().expect(201);
    expect(third.headers['idempotent-replayed']).toBe('true');
    expect(await countRows('notes')).toBe(1);
  }, 20_000);
});

describe('when the answer is lost after the commit', () => {
  let fake: FakePipedrive;
  beforeAll(async () => {
    fake = await FakePipedrive.start();
    // The hung request lasts PIPEDRIVE_TIMEOUT_MS: far longer than the caller's 500 ms patience, however busy the machine.
    t = createTestApp({ env: fastMirrorEnv(fake, { CRM_SYNC_WAIT_MS: '10000', PIPEDRIVE_TIMEOUT_MS: '2000' }) });
    await t.reset();
    await t.startWorker();
  });
  afterAll(async () => {
    await fake.close();
    await t.close();
  });

  it('replays the committed answer to the retry, and the mirror creates one person', async () => {
    // Pipedrive hangs: the creation is committed, then waits for its mirror; the caller gives up first.
    fake.fault({ kind: 'hang', times: 1 });
    const body = { name: 'Lost Answer', email: 'lost@example.com' };
    await expect(request(t.app).post('/contact').set('Idempotency-Key', 'lost').send(body).timeout(500)).rejects.toThrow(/Timeout/);

    const retry = await request(t.app).post('/contact').set('Idempotency-Key', 'lost').send(body).timeout(3_000).expect(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.body).toMatchObject({ success: true, contact: { email: 'lost@example.com' } });
    expect(await countRows('contacts')).toBe(1);

    // Once the first request has its answer, replays give that answer: the mirrored contact.
    const settled = await waitFor('the first request to store its settled answer', async () => {
      const res = await request(t.app).post('/contact').set('Idempotency-Key', 'lost').send(body);
      return res.body.sync_status === 'synced' ? res : undefined;
    }, 15_000, 200);
    expect(settled!.body.contact_id).toBe(retry.body.contact_id);
    expect(settled!.body.crm_id).toEqual(expect.any(Number));
    expect(fake.persons.size).toBe(1);
  }, 30_000);
});
