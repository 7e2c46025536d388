-- CreateTable
CREATE TABLE "pipedrive_rate_limits" (
    "bucket" TEXT NOT NULL,
    "call_limit" INTEGER NOT NULL,
    "window_ms" INTEGER NOT NULL,
    "admitted" TIMESTAMPTZ(6)[],
    "last_admitted" BOOLEAN NOT NULL DEFAULT false,
    "blocked_until" TIMESTAMPTZ(3),

    CONSTRAINT "pipedrive_rate_limits_pkey" PRIMARY KEY ("bucket")
);


COMMENT ON TABLE "pipedrive_rate_limits" IS 'Pipedrive''s rate limits on the API token, counted in one place for every process of the service: one row per bucket (burst: every call; search: search calls). Written only by src/crm/rate-limits.repository.ts; rows are created on first use.';
COMMENT ON COLUMN "pipedrive_rate_limits"."bucket" IS 'burst (every call, x-ratelimit-limit per window) or search (search calls, 10 per 2 s on every plan)';
COMMENT ON COLUMN "pipedrive_rate_limits"."call_limit" IS 'Calls allowed in any window: for burst, learned from x-ratelimit-limit (20 until an answer says)';
COMMENT ON COLUMN "pipedrive_rate_limits"."window_ms" IS 'The window, in milliseconds, as counted here: Pipedrive''s 2 s and a small margin for calls that arrive late';
COMMENT ON COLUMN "pipedrive_rate_limits"."admitted" IS 'When each call of the last window was let through, oldest first: a rolling count, so that no window of Pipedrive''s own holds more than call_limit';
COMMENT ON COLUMN "pipedrive_rate_limits"."last_admitted" IS 'Whether the last statement let its call through (how the admitting statement reports its decision)';
COMMENT ON COLUMN "pipedrive_rate_limits"."blocked_until" IS 'No call before this: a 429, or an answer saying the window is used up by calls this service did not make';
