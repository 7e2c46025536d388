-- AlterTable
ALTER TABLE "contacts" ADD COLUMN     "change_version" INTEGER NOT NULL DEFAULT 1,
ADD COLUMN     "crm_pushed" JSONB,
ADD COLUMN     "mirror_attempts" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "mirror_claimed_until" TIMESTAMPTZ(3),
ADD COLUMN     "mirror_due_at" TIMESTAMPTZ(3),
ADD COLUMN     "mirror_priority" SMALLINT NOT NULL DEFAULT 0,
ADD COLUMN     "mirror_queued_at" TIMESTAMPTZ(3),
ADD COLUMN     "mirrored_version" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "mirror_pause" (
    "id" INTEGER NOT NULL DEFAULT 1,
    "paused_until" TIMESTAMPTZ(3) NOT NULL,
    "reason" TEXT NOT NULL,

    CONSTRAINT "mirror_pause_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "contacts_mirror_due_idx" ON "contacts"("mirror_priority", "mirror_due_at");

-- Rows written before the outbox: what reached Pipedrive counts as sent; pending work is due now.
UPDATE "contacts" SET "mirrored_version" = 1, "crm_pushed" = jsonb_build_object('name', "name", 'email', "email", 'phone', "phone")
 WHERE "sync_status" = 'synced' AND "crm_id" IS NOT NULL;
UPDATE "contacts" c SET "mirror_queued_at" = now(), "mirror_due_at" = now()
 WHERE c."sync_status" = 'pending'
    OR EXISTS (SELECT 1 FROM "notes" n WHERE n."contact_id" = c."id" AND n."sync_status" = 'pending');

-- The mirror's former job queue: its jobs are now the columns above.
DROP SCHEMA IF EXISTS "graphile_worker" CASCADE;

-- Any writer (the API, operators' psql, scripts) queues a changed contact for the mirror by the same rule.
CREATE FUNCTION "contacts_queue_mirror"() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  queue boolean := false;
BEGIN
  IF TG_OP = 'INSERT' THEN
    queue := NEW."sync_status" = 'pending';
  ELSIF (NEW."name", NEW."email", NEW."phone") IS DISTINCT FROM (OLD."name", OLD."email", OLD."phone")
        OR (OLD."sync_status" = 'disabled' AND NEW."sync_status" = 'pending') THEN
    NEW."change_version" := OLD."change_version" + 1;
    queue := NEW."sync_status" <> 'disabled';
  END IF;
  IF queue THEN
    NEW."sync_status" := 'pending';
    NEW."mirror_queued_at" := COALESCE(NEW."mirror_queued_at", now());
    NEW."mirror_due_at" := now();
    NEW."mirror_attempts" := 0;
    NEW."mirror_priority" := 0;
  END IF;
  IF NEW."mirror_due_at" <= now() AND (TG_OP = 'INSERT' OR NEW."mirror_due_at" IS DISTINCT FROM OLD."mirror_due_at") THEN
    PERFORM pg_notify('contact_mirror', '');
  END IF;
  RETURN NEW;
END;
$$;
COMMENT ON FUNCTION "contacts_queue_mirror"() IS 'Trigger function: a contact inserted pending, or whose name, email or phone changed (unless its sync_status is disabled), is queued for the mirror (pending, due now, live priority), a change also getting a new change_version; wakes the workers (NOTIFY contact_mirror) whenever mirror work becomes due.';
CREATE TRIGGER "contacts_queue_mirror"
    BEFORE INSERT OR UPDATE ON "contacts"
    FOR EACH ROW
    EXECUTE FUNCTION "contacts_queue_mirror"();

CREATE FUNCTION "notes_queue_mirror"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE "contacts"
     SET "mirror_queued_at" = COALESCE("mirror_queued_at", now()), "mirror_due_at" = now(), "mirror_attempts" = 0, "mirror_priority" = 0
   WHERE "id" = NEW."contact_id";
  RETURN NULL;
END;
$$;
COMMENT ON FUNCTION "notes_queue_mirror"() IS 'Trigger function: a new pending note makes its contact due for the mirror now (a contact and its notes are mirrored as one unit, in order).';
CREATE TRIGGER "notes_queue_mirror"
    AFTER INSERT ON "notes"
    FOR EACH ROW
    WHEN (NEW."sync_status" = 'pending')
    EXECUTE FUNCTION "notes_queue_mirror"();

COMMENT ON COLUMN "contacts"."change_version" IS 'Counts changes of name, email and phone (trigger contacts_queue_mirror); the mirror compares it with mirrored_version.';
COMMENT ON COLUMN "contacts"."mirrored_version" IS 'The change_version last brought to Pipedrive; lower than change_version while a change is still to be mirrored.';
COMMENT ON COLUMN "contacts"."crm_pushed" IS 'The name, email and phone last sent to the Pipedrive person ({"name","email","phone"}): an update sends only what differs; NULL sends every field.';
COMMENT ON COLUMN "contacts"."mirror_queued_at" IS 'Since when the contact or one of its notes has been waiting for the mirror; NULL when nothing waits.';
COMMENT ON COLUMN "contacts"."mirror_due_at" IS 'When a worker may next run the contact''s mirror work (now, or later after a failed attempt); NULL when there is none.';
COMMENT ON COLUMN "contacts"."mirror_attempts" IS 'Attempts at the current mirror work, counted when a worker claims it; back to 0 when it is done or changes.';
COMMENT ON COLUMN "contacts"."mirror_claimed_until" IS 'A worker runs the contact''s mirror work until then; after it, the claim has expired (a killed worker) and another worker may take it.';
COMMENT ON COLUMN "contacts"."mirror_priority" IS '0: live changes, first; 1: bulk work, after every due live change.';
COMMENT ON TABLE "mirror_pause" IS 'At most one row (id 1): no mirror work starts before paused_until. Written after Pipedrive answers 429, or by an operator (ops mirror pause).';
COMMENT ON COLUMN "mirror_pause"."id" IS 'Always 1: the mirror has one pause.';
COMMENT ON COLUMN "mirror_pause"."paused_until" IS 'No mirror work starts before this time.';
COMMENT ON COLUMN "mirror_pause"."reason" IS 'Why: Pipedrive''s rate limit, or the operator''s words.';
