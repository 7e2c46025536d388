-- CreateTable
CREATE TABLE "idempotency_keys" (
    "caller" VARCHAR(64) NOT NULL,
    "key" VARCHAR(255) NOT NULL,
    "request_hash" CHAR(64) NOT NULL,
    "response_status" INTEGER,
    "response_body" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY ("caller","key")
);

-- CreateIndex
CREATE INDEX "idempotency_keys_expires_at_idx" ON "idempotency_keys"("expires_at");

COMMENT ON TABLE "idempotency_keys" IS 'Idempotency-Key requests (POST /contact, POST /contact/note): written in the transaction of the write itself, so a retry after a lost answer is replayed, never redone. Expired rows are purged in small batches by the API.';
COMMENT ON COLUMN "idempotency_keys"."caller" IS 'Whose key it is: the SHA-256 (hex) of the caller''s API key; empty when the API runs without keys (one shared scope).';
COMMENT ON COLUMN "idempotency_keys"."key" IS 'The Idempotency-Key header as sent (1 to 255 visible ASCII characters).';
COMMENT ON COLUMN "idempotency_keys"."request_hash" IS 'SHA-256 (hex) of the method, the path and the canonical JSON body: the same key with another request answers 422.';
COMMENT ON COLUMN "idempotency_keys"."response_status" IS 'HTTP status of the answer replayed for this key. NULL only inside the transaction that claims the key: a committed row has its answer.';
COMMENT ON COLUMN "idempotency_keys"."response_body" IS 'JSON body of the answer replayed for this key: as committed with the write, then as finally sent (after the wait for the Pipedrive mirror).';
COMMENT ON COLUMN "idempotency_keys"."created_at" IS 'When the first request with this key was written.';
COMMENT ON COLUMN "idempotency_keys"."expires_at" IS 'After this the key is forgotten: a new request with it is a new write (IDEMPOTENCY_TTL_HOURS after created_at).';
