-- CreateEnum
CREATE TYPE "contact_event_type" AS ENUM ('created', 'updated', 'note_added', 'crm_synced', 'crm_failed');

-- CreateTable
CREATE TABLE "contact_events" (
    "id" SERIAL NOT NULL,
    "contact_id" INTEGER NOT NULL,
    "type" "contact_event_type" NOT NULL,
    "payload" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "contact_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "contact_events_contact_id_id_idx" ON "contact_events"("contact_id", "id");

-- AddForeignKey
ALTER TABLE "contact_events" ADD CONSTRAINT "contact_events_contact_id_fkey" FOREIGN KEY ("contact_id") REFERENCES "contacts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

COMMENT ON TABLE "contact_events" IS 'Append-only audit of each contact: one row per change, written in the same transaction as the change. Rows are never updated; they go only with their contact.';
COMMENT ON COLUMN "contact_events"."id" IS 'Event id; increasing, so ORDER BY id is the order of events.';
COMMENT ON COLUMN "contact_events"."contact_id" IS 'The contact (contacts.id) the event is about.';
COMMENT ON COLUMN "contact_events"."type" IS 'created, updated, note_added, crm_synced (Pipedrive has the change) or crm_failed (the mirror gave up).';
COMMENT ON COLUMN "contact_events"."payload" IS 'Details: the fields written (created), changes and previous values (updated), note_id (note_added), crm ids (crm_synced), error (crm_failed).';
COMMENT ON COLUMN "contact_events"."created_at" IS 'When the event was recorded.';

-- Append-only for every client, psql included; deleting a contact still removes its events.
CREATE FUNCTION "contact_events_append_only"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'contact_events is append-only: events cannot be updated';
END;
$$;

COMMENT ON FUNCTION "contact_events_append_only"() IS 'Trigger function: refuses UPDATE on contact_events.';

CREATE TRIGGER "contact_events_append_only"
    BEFORE UPDATE ON "contact_events"
    FOR EACH ROW
    EXECUTE FUNCTION "contact_events_append_only"();
