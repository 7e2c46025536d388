-- CreateTable
CREATE TABLE "pipedrive_budget" (
    "id" INTEGER NOT NULL DEFAULT 1,
    "day_start" TIMESTAMPTZ(3) NOT NULL,
    "tokens_spent" INTEGER NOT NULL DEFAULT 0,
    "token_limit" INTEGER,
    "tokens_left" INTEGER,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "pipedrive_budget_pkey" PRIMARY KEY ("id")
);

COMMENT ON TABLE "pipedrive_budget" IS 'Pipedrive''s daily token budget as the mirror knows it: one row (id 1), shared by every worker process; written after every Pipedrive call.';
COMMENT ON COLUMN "pipedrive_budget"."id" IS 'Always 1.';
COMMENT ON COLUMN "pipedrive_budget"."day_start" IS 'When the budget''s current day began (PIPEDRIVE_BUDGET_RESET_HOUR_UTC); tokens_spent counts from then.';
COMMENT ON COLUMN "pipedrive_budget"."tokens_spent" IS 'Tokens the mirror spent this day, counted from each operation''s x-token-cost.';
COMMENT ON COLUMN "pipedrive_budget"."token_limit" IS 'The daily budget as Pipedrive last reported it (x-daily-ratelimit-token-limit); NULL until reported.';
COMMENT ON COLUMN "pipedrive_budget"."tokens_left" IS 'Tokens left this day: as Pipedrive last reported (x-daily-ratelimit-token-remaining, which counts every app of the company), then counted down by our own calls while answers lack the header; NULL until reported.';
COMMENT ON COLUMN "pipedrive_budget"."updated_at" IS 'When a call last updated the row.';
