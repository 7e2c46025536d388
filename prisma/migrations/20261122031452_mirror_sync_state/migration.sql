-- CreateEnum
CREATE TYPE "sync_status" AS ENUM ('disabled', 'pending', 'synced', 'failed');

-- CreateEnum
CREATE TYPE "crm_state" AS ENUM ('ok', 'unauthorized', 'unreachable');

-- AlterTable
ALTER TABLE "contacts" ADD COLUMN     "crm_last_error" TEXT,
ADD COLUMN     "crm_synced_at" TIMESTAMPTZ(3),
ADD COLUMN     "sync_status" "sync_status" NOT NULL DEFAULT 'disabled';

-- AlterTable
ALTER TABLE "notes" ADD COLUMN     "crm_last_error" TEXT,
ADD COLUMN     "crm_synced_at" TIMESTAMPTZ(3),
ADD COLUMN     "sync_status" "sync_status" NOT NULL DEFAULT 'disabled';

-- CreateTable
CREATE TABLE "crm_health" (
    "id" INTEGER NOT NULL DEFAULT 1,
    "state" "crm_state" NOT NULL,
    "detail" TEXT,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "crm_health_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "contacts_sync_status_idx" ON "contacts"("sync_status");

-- CreateIndex
CREATE INDEX "notes_sync_status_idx" ON "notes"("sync_status");

COMMENT ON TYPE "sync_status" IS 'disabled: no Pipedrive key when written; pending: a mirror job is queued or retrying; synced: Pipedrive has the latest change; failed: the mirror gave up (see crm_last_error); POST /contact/:id/sync retries.';
COMMENT ON COLUMN "contacts"."sync_status" IS 'Where the contact stands with its Pipedrive mirror: disabled, pending, synced or failed.';
COMMENT ON COLUMN "contacts"."crm_synced_at" IS 'When Pipedrive last confirmed this contact''s latest change; NULL until then.';
COMMENT ON COLUMN "contacts"."crm_last_error" IS 'The last error from mirroring this contact (kept while retrying, cleared once synced).';
COMMENT ON COLUMN "notes"."sync_status" IS 'Where the note stands with its Pipedrive mirror: disabled, pending, synced or failed.';
COMMENT ON COLUMN "notes"."crm_synced_at" IS 'When the note was created in Pipedrive; NULL until then.';
COMMENT ON COLUMN "notes"."crm_last_error" IS 'The last error from mirroring this note (kept while retrying, cleared once synced).';

COMMENT ON TABLE "crm_health" IS 'One row: how Pipedrive answered the mirror workers lately; read by GET /contact/health instead of calling Pipedrive.';
COMMENT ON COLUMN "crm_health"."id" IS 'Always 1: the table holds one fact, not a history.';
COMMENT ON COLUMN "crm_health"."state" IS 'ok, unauthorized (401/403: check PIPEDRIVE_API_KEY) or unreachable (network errors, timeouts, 5xx).';
COMMENT ON COLUMN "crm_health"."detail" IS 'The error behind a state other than ok.';
COMMENT ON COLUMN "crm_health"."updated_at" IS 'When a worker last changed the state.';
