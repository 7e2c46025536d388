/**
 * The benchmark's baseline: the measured routes written the shortest way, with express and a raw
 * pg Pool, on a database migrated like the service's. No validation, no request logging, no
 * helmet/cors, no API key, no rate limit, no metrics: what the service's extra work is measured
 * against. Writes keep what the service must do in the same configuration (no Pipedrive key):
 * PATCH /contact stores its audit event too, in one statement. POST /contact-tx is the one extra:
 * the service's former SQL for a creation, by hand.
 *
 * Started by bench/run.ts with DATABASE_URL, PORT and BASELINE_POOL_SIZE (the service's pool size).
 * Ends on SIGTERM, or when its stdin closes (the benchmark that started it is gone).
 */
import express from 'express';
import pg from 'pg';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.BASELINE_POOL_SIZE ?? 10) });

const COLUMNS = 'id, name, email, phone, crm_id, sync_status, crm_synced_at, crm_last_error, created_at, updated_at';

interface Row {
  id: number;
  name: string;
  email: string | null;
  phone: string | null;
  crm_id: number | null;
  sync_status: string;
  crm_synced_at: Date | null;
  crm_last_error: string | null;
  created_at: Date;
  updated_at: Date;
}

// The same JSON as the service's toContactJson, so both answer bodies of the same size.
const toJson = (row: Row) => ({
  id: row.id,
  name: row.name,
  email: row.email,
  phone: row.phone,
  crm_id: row.crm_id,
  sync_status: row.sync_status,
  crm_synced_at: row.crm_synced_at?.toISOString() ?? null,
  crm_last_error: row.crm_last_error,
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
});

const app = express();
app.disable('x-powered-by');
app.use(express.json());

app.post('/contact', async (req, res) => {
  const { name, email, phone } = req.body as { name: string; email?: string; phone?: string };
  try {
    const { rows } = await pool.query<Row>(
      `INSERT INTO contacts (name, email, phone) VALUES ($1, lower(trim($2)), $3) RETURNING ${COLUMNS}`,
      [name, email ?? null, phone ?? null],
    );
    const contact = rows[0] as Row;
    res.status(201).json({ success: true, contact_id: contact.id, crm_id: null, sync_status: contact.sync_status, contact: toJson(contact) });
  } catch (error) {
    if ((error as { code?: string }).code === '23505') res.status(409).json({ success: false });
    else res.status(500).json({ success: false });
  }
});

// The same SQL as the service's POST /contact, still without Prisma or middleware: the contact and
// its 'created' audit event in one transaction (BEGIN, INSERT, INSERT, COMMIT). Separates what the
// transaction costs from what the service's stack costs.
app.post('/contact-tx', async (req, res) => {
  const { name, email, phone } = req.body as { name: string; email?: string; phone?: string };
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<Row>(
      `INSERT INTO contacts (name, email, phone) VALUES ($1, lower(trim($2)), $3) RETURNING ${COLUMNS}`,
      [name, email ?? null, phone ?? null],
    );
    const contact = rows[0] as Row;
    await client.query(`INSERT INTO contact_events (contact_id, type, payload) VALUES ($1, 'created', $2)`, [
      contact.id,
      JSON.stringify({ name: contact.name, email: contact.email, phone: contact.phone }),
    ]);
    await client.query('COMMIT');
    res.status(201).json({ success: true, contact_id: contact.id, crm_id: null, sync_status: contact.sync_status, contact: toJson(contact) });
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    res.status((error as { code?: string }).code === '23505' ? 409 : 500).json({ success: false });
  } finally {
    client.release();
  }
});

// What the service's PATCH /contact does without a Pipedrive key, in one statement: lock the row and
// keep its previous values, apply the changes (a field absent from them keeps its value), append
// the 'updated' event with the changes and the values they replaced. No validation: the changes
// are taken as sent.
app.patch('/contact', async (req, res) => {
  const { contact_id: id, fields } = req.body as { contact_id: number; fields: Record<string, string | null> };
  const { rows } = await pool.query<Row>(
    `WITH changes AS (SELECT $2::jsonb AS value),
     before AS (SELECT id, name, email, phone FROM contacts WHERE id = $1 FOR UPDATE),
     updated AS (
       UPDATE contacts AS c
          SET name = CASE WHEN changes.value ? 'name' THEN changes.value->>'name' ELSE c.name END,
              email = CASE WHEN changes.value ? 'email' THEN changes.value->>'email' ELSE c.email END,
              phone = CASE WHEN changes.value ? 'phone' THEN changes.value->>'phone' ELSE c.phone END
         FROM before, changes
        WHERE c.id = before.id
       RETURNING c.*
     ), event AS (
       INSERT INTO contact_events (contact_id, type, payload)
       SELECT before.id, 'updated'::contact_event_type, jsonb_build_object(
                'changes', changes.value,
                'previous', (SELECT jsonb_object_agg(field, to_jsonb(before) -> field) FROM jsonb_object_keys(changes.value) AS field))
         FROM before, changes
     )
     SELECT ${COLUMNS} FROM updated`,
    [id, JSON.stringify(fields)],
  );
  if (rows[0]) res.json({ success: true, message: 'Contact updated', contact: toJson(rows[0]) });
  else res.status(404).json({ success: false });
});

app.get('/contact/:id', async (req, res) => {
  const { rows } = await pool.query<Row>(`SELECT ${COLUMNS} FROM contacts WHERE id = $1`, [Number(req.params.id)]);
  if (rows[0]) res.json(toJson(rows[0]));
  else res.status(404).json({ success: false });
});

app.get('/contacts', async (req, res) => {
  const search = typeof req.query.search === 'string' ? req.query.search : '';
  const skip = Number(req.query.skip ?? 0);
  const limit = Number(req.query.limit ?? 50);
  const pattern = `%${search.replace(/[\\%_]/g, (char) => `\\${char}`)}%`;
  const { rows } = await pool.query<Row>(`SELECT ${COLUMNS} FROM contacts WHERE name ILIKE $1 ORDER BY id LIMIT $2 OFFSET $3`, [pattern, limit, skip]);
  const { rows: counted } = await pool.query<{ total: number }>('SELECT count(*)::int AS total FROM contacts WHERE name ILIKE $1', [pattern]);
  res.json({ items: rows.map(toJson), total: counted[0]?.total ?? 0, skip, limit });
});

// The service's liveness answer, on a bare route.
app.get('/health', (_req, res) => {
  res.json({ status: 'ok', timestamp: new Date().toISOString() });
});

const server = app.listen(Number(process.env.PORT ?? 8001), '127.0.0.1');

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  server.close(() => void pool.end().finally(() => process.exit(0)));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 5_000).unref();
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
