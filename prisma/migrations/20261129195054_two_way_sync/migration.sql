-- CreateEnum
CREATE TYPE "contact_event_source" AS ENUM ('api', 'pipedrive', 'import', 'mirror');

-- AlterEnum
ALTER TYPE "contact_event_type" ADD VALUE 'crm_linked';

-- AlterTable
ALTER TABLE "contact_events" ADD COLUMN     "source" "contact_event_source" NOT NULL DEFAULT 'api';

-- AlterTable
ALTER TABLE "contacts" ADD COLUMN     "crm_deleted" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "crm_updated_at" TIMESTAMPTZ(3);

-- AlterTable
ALTER TABLE "pipedrive_persons" ADD COLUMN     "merged_into" INTEGER;

-- CreateTable
CREATE TABLE "pipedrive_webhook_deliveries" (
    "id" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "entity" TEXT NOT NULL,
    "entity_id" INTEGER NOT NULL,
    "event_at" TIMESTAMPTZ(3) NOT NULL,
    "payload" JSONB NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "claimed_until" TIMESTAMPTZ(3),
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "processed_at" TIMESTAMPTZ(3),
    "outcome" TEXT,

    CONSTRAINT "pipedrive_webhook_deliveries_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "operator_runs" (
    "command" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "position" TEXT,
    "counts" JSONB NOT NULL DEFAULT '{}',
    "started_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "operator_runs_pkey" PRIMARY KEY ("command","subject")
);

-- CreateIndex
CREATE INDEX "pipedrive_webhook_deliveries_processed_at_received_at_idx" ON "pipedrive_webhook_deliveries"("processed_at", "received_at");

-- Events written before sources were recorded: the mirror's own, else a caller's through the API.
UPDATE "contact_events" SET "source" = 'mirror' WHERE "type" IN ('crm_synced', 'crm_failed', 'crm_unlinked');

-- A change that leaves the contact as Pipedrive already has it (crm_pushed: a change taken in from
-- Pipedrive) needs no mirror run; a contact queued keeps a priority its statement set (bulk, for
-- an import or a push), else it is live.
CREATE OR REPLACE FUNCTION "contacts_queue_mirror"() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  queue boolean := false;
BEGIN
  IF TG_OP = 'INSERT' THEN
    queue := NEW."sync_status" = 'pending';
  ELSIF (NEW."name", NEW."email", NEW."phone") IS DISTINCT FROM (OLD."name", OLD."email", OLD."phone")
        OR (OLD."sync_status" = 'disabled' AND NEW."sync_status" = 'pending') THEN
    NEW."change_version" := OLD."change_version" + 1;
    queue := NEW."sync_status" <> 'disabled'
      AND (NEW."crm_pushed" IS NULL OR NEW."sync_status" IS DISTINCT FROM OLD."sync_status"
           OR (NEW."name", NEW."email", COALESCE(NEW."phone_e164", NEW."phone"))
              IS DISTINCT FROM (NEW."crm_pushed"->>'name', NEW."crm_pushed"->>'email', NEW."crm_pushed"->>'phone'));
  END IF;
  IF queue THEN
    NEW."sync_status" := 'pending';
    NEW."mirror_queued_at" := COALESCE(NEW."mirror_queued_at", now());
    NEW."mirror_due_at" := now();
    NEW."mirror_attempts" := 0;
    -- Live, unless the statement itself chose a priority (a push of never-mirrored contacts: bulk).
    IF TG_OP = 'UPDATE' AND NEW."mirror_priority" IS NOT DISTINCT FROM OLD."mirror_priority" THEN
      NEW."mirror_priority" := 0;
    END IF;
  END IF;
  IF NEW."mirror_due_at" <= now() AND (TG_OP = 'INSERT' OR NEW."mirror_due_at" IS DISTINCT FROM OLD."mirror_due_at") THEN
    PERFORM pg_notify('contact_mirror', '');
  END IF;
  RETURN NEW;
END;
$$;
COMMENT ON FUNCTION "contacts_queue_mirror"() IS 'Trigger function: a contact inserted pending, or whose name, email or phone changed to values Pipedrive does not already have (crm_pushed; unless its sync_status is disabled), is queued for the mirror (pending, due now, live priority unless the statement set one), a change also getting a new change_version; wakes the workers (NOTIFY contact_mirror) whenever mirror work becomes due.';

COMMENT ON COLUMN "contacts"."crm_deleted" IS 'True once the sales team deleted the contact''s person in Pipedrive: the contact is unlinked and not mirrored (sync_status disabled) until an operator queues it again (POST /contact/:id/sync).';
COMMENT ON COLUMN "contacts"."crm_updated_at" IS 'Pipedrive''s update_time of the person state last taken in (webhook or refresh): an older state never overwrites a newer one.';
COMMENT ON COLUMN "contact_events"."source" IS 'Where the change came from: api (a caller), pipedrive (the sales team''s edit, by webhook or refresh), import (an operator''s import or CSV), mirror (the mirror''s own work).';
COMMENT ON COLUMN "pipedrive_persons"."merged_into" IS 'The person this one was merged into (a webhook delete''s meta.merged_to_id); NULL otherwise.';
COMMENT ON TABLE "pipedrive_webhook_deliveries" IS 'Pipedrive webhook deliveries (v2), recorded before the 200 answer and processed in the background; duplicates are recognised by id.';
COMMENT ON COLUMN "pipedrive_webhook_deliveries"."id" IS 'meta.id: the same on every retry and duplicate of one event.';
COMMENT ON COLUMN "pipedrive_webhook_deliveries"."action" IS 'meta.action: create, change or delete.';
COMMENT ON COLUMN "pipedrive_webhook_deliveries"."entity" IS 'meta.entity: person.';
COMMENT ON COLUMN "pipedrive_webhook_deliveries"."entity_id" IS 'meta.entity_id: the Pipedrive person id.';
COMMENT ON COLUMN "pipedrive_webhook_deliveries"."event_at" IS 'meta.timestamp: when the event happened in Pipedrive.';
COMMENT ON COLUMN "pipedrive_webhook_deliveries"."payload" IS 'The delivery as received: meta, data and previous.';
COMMENT ON COLUMN "pipedrive_webhook_deliveries"."received_at" IS 'When it was first received.';
COMMENT ON COLUMN "pipedrive_webhook_deliveries"."claimed_until" IS 'A process is applying it until then; after that another may.';
COMMENT ON COLUMN "pipedrive_webhook_deliveries"."attempts" IS 'How many times processing it began.';
COMMENT ON COLUMN "pipedrive_webhook_deliveries"."processed_at" IS 'When it was applied (or found to need nothing); NULL while waiting.';
COMMENT ON COLUMN "pipedrive_webhook_deliveries"."outcome" IS 'What applying it did (applied, echo, stale, unlinked, relinked, imported, indexed, failed: …).';
COMMENT ON TABLE "operator_runs" IS 'Where an operator command (import, push, import-csv) got to, so that an interrupted run resumes there.';
COMMENT ON COLUMN "operator_runs"."command" IS 'import, push or import-csv.';
COMMENT ON COLUMN "operator_runs"."subject" IS 'What the run goes over: "pipedrive", "contacts", or a CSV file''s SHA-256.';
COMMENT ON COLUMN "operator_runs"."position" IS 'Where to go on from: a Pipedrive list cursor, a contact id, or a CSV row number.';
COMMENT ON COLUMN "operator_runs"."counts" IS 'What the run has done so far, by outcome.';
COMMENT ON COLUMN "operator_runs"."started_at" IS 'When the run began.';
COMMENT ON COLUMN "operator_runs"."updated_at" IS 'When its position was last saved.';
COMMENT ON COLUMN "operator_runs"."finished_at" IS 'When it completed; NULL while it can be resumed.';
