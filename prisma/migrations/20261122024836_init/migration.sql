-- CreateTable
CREATE TABLE "contacts" (
    "id" SERIAL NOT NULL,
    "name" VARCHAR(255) NOT NULL,
    "email" VARCHAR(255),
    "phone" VARCHAR(20),
    "crm_id" INTEGER,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "contacts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "notes" (
    "id" SERIAL NOT NULL,
    "contact_id" INTEGER NOT NULL,
    "content" TEXT NOT NULL,
    "crm_id" INTEGER,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "notes_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "contacts_email_key" ON "contacts"("email");

-- CreateIndex
CREATE UNIQUE INDEX "contacts_crm_id_key" ON "contacts"("crm_id");

-- CreateIndex
CREATE INDEX "contacts_name_idx" ON "contacts"("name");

-- CreateIndex
CREATE UNIQUE INDEX "notes_crm_id_key" ON "notes"("crm_id");

-- CreateIndex
CREATE INDEX "notes_contact_id_idx" ON "notes"("contact_id");

-- AddForeignKey
ALTER TABLE "notes" ADD CONSTRAINT "notes_contact_id_fkey" FOREIGN KEY ("contact_id") REFERENCES "contacts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Operators read these with `\d+ contacts` / `\d+ notes` in psql.
COMMENT ON TABLE "contacts" IS 'Sales contacts. This service is the system of record; each contact is mirrored to a Pipedrive person.';
COMMENT ON COLUMN "contacts"."id" IS 'Internal contact id (serial), used in this service''s API; not the Pipedrive id.';
COMMENT ON COLUMN "contacts"."name" IS 'Full name as shown in the CRM; required, at most 255 characters.';
COMMENT ON COLUMN "contacts"."email" IS 'Email address, stored trimmed and lower-cased; unique when present, NULL when unknown.';
COMMENT ON COLUMN "contacts"."phone" IS 'Phone number as entered, at most 20 characters; NULL when unknown.';
COMMENT ON COLUMN "contacts"."crm_id" IS 'Pipedrive person id; NULL until the contact has been mirrored to Pipedrive; unique.';
COMMENT ON COLUMN "contacts"."created_at" IS 'When the contact was created in this database.';
COMMENT ON COLUMN "contacts"."updated_at" IS 'When the row last changed; set to now() by trigger contacts_set_updated_at on every UPDATE, whichever client writes.';

COMMENT ON TABLE "notes" IS 'Free-text notes about a contact, mirrored to Pipedrive notes on the linked person.';
COMMENT ON COLUMN "notes"."id" IS 'Internal note id (serial); not the Pipedrive id.';
COMMENT ON COLUMN "notes"."contact_id" IS 'The contact this note belongs to (contacts.id); the note is deleted with its contact.';
COMMENT ON COLUMN "notes"."content" IS 'Note text as written; required.';
COMMENT ON COLUMN "notes"."crm_id" IS 'Pipedrive note id; NULL until the note has been mirrored to Pipedrive; unique.';
COMMENT ON COLUMN "notes"."created_at" IS 'When the note was created in this database.';

-- Keeps updated_at current for writes from any client (the app, psql, scripts), not only Prisma.
CREATE FUNCTION "contacts_set_updated_at"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW."updated_at" := now();
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION "contacts_set_updated_at"() IS 'Trigger function: sets contacts.updated_at to now() on every UPDATE.';

CREATE TRIGGER "contacts_set_updated_at"
    BEFORE UPDATE ON "contacts"
    FOR EACH ROW
    EXECUTE FUNCTION "contacts_set_updated_at"();
