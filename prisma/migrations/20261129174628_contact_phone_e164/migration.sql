-- AlterTable
ALTER TABLE "contacts" ADD COLUMN     "phone_e164" VARCHAR(16);

-- CreateIndex
CREATE INDEX "contacts_phone_e164_idx" ON "contacts"("phone_e164");


-- Existing rows are normalised by the service at start-up (libphonenumber-js, DEFAULT_PHONE_REGION):
-- the rules live in JavaScript, not SQL. See src/contacts/phone-numbers.ts.
COMMENT ON COLUMN "contacts"."phone_e164" IS 'The phone in E.164 (+442079460000), used for matching; null when the number given could not be read as a valid number (DEFAULT_PHONE_REGION for national numbers)';
