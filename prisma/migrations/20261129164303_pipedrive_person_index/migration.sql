-- CreateTable
CREATE TABLE "pipedrive_persons" (
    "id" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "emails" TEXT[],
    "phones" TEXT[],
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "gone" BOOLEAN NOT NULL DEFAULT false,
    "indexed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "pipedrive_persons_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "pipedrive_index_state" (
    "id" INTEGER NOT NULL DEFAULT 1,
    "backfilled_at" TIMESTAMPTZ(3),
    "refreshed_at" TIMESTAMPTZ(3),
    "busy_until" TIMESTAMPTZ(3),

    CONSTRAINT "pipedrive_index_state_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "pipedrive_persons_emails_idx" ON "pipedrive_persons" USING GIN ("emails");

-- CreateIndex
CREATE INDEX "pipedrive_persons_phones_idx" ON "pipedrive_persons" USING GIN ("phones");

COMMENT ON TABLE "pipedrive_persons" IS 'The local index of Pipedrive persons, so that matching a new contact needs no search call: filled by a backfill over GET /api/v2/persons, kept fresh with updated_since and from the mirror''s own writes.';
COMMENT ON COLUMN "pipedrive_persons"."id" IS 'The Pipedrive person id.';
COMMENT ON COLUMN "pipedrive_persons"."name" IS 'The person''s name in Pipedrive.';
COMMENT ON COLUMN "pipedrive_persons"."emails" IS 'Every email of the person, lower-case.';
COMMENT ON COLUMN "pipedrive_persons"."phones" IS 'Every phone of the person, digits only (with a leading + when written with one).';
COMMENT ON COLUMN "pipedrive_persons"."updated_at" IS 'Pipedrive''s update_time of the person when indexed.';
COMMENT ON COLUMN "pipedrive_persons"."gone" IS 'True once Pipedrive answered 404/410 for it (deleted or merged away): never matched again.';
COMMENT ON COLUMN "pipedrive_persons"."indexed_at" IS 'When this row was last written.';
COMMENT ON TABLE "pipedrive_index_state" IS 'How far the person index is: one row (id 1), shared by every worker process.';
COMMENT ON COLUMN "pipedrive_index_state"."id" IS 'Always 1.';
COMMENT ON COLUMN "pipedrive_index_state"."backfilled_at" IS 'When the completed backfill began; NULL until a backfill has been through every person (an interrupted one starts again from the first person).';
COMMENT ON COLUMN "pipedrive_index_state"."refreshed_at" IS 'When the last complete refresh (or the backfill) began: the next refresh asks for persons updated since shortly before it.';
COMMENT ON COLUMN "pipedrive_index_state"."busy_until" IS 'A worker is backfilling or refreshing until then; others use the index as it is meanwhile.';
