-- AlterEnum
ALTER TYPE "contact_event_type" ADD VALUE 'crm_unlinked';

COMMENT ON COLUMN "contact_events"."type" IS 'created, updated, note_added, crm_synced (Pipedrive has the change), crm_failed (the mirror gave up) or crm_unlinked (the linked person was deleted or merged away in Pipedrive; the contact is linked again).';
COMMENT ON COLUMN "contact_events"."payload" IS 'Details: the fields written (created), changes and previous values (updated), note_id (note_added), crm ids (crm_synced), error (crm_failed), the former crm_id and why (crm_unlinked).';
