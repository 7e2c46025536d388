import { z } from 'zod';
import { ConfigError } from './config-error';
import { buildDatabaseUrl, normaliseDatabaseUrl } from './database-url';
import type { CountryCode } from 'libphonenumber-js/max';
import { isPhoneRegion } from '../contacts/phone-numbers';
import { WINDOW_MARGIN_MS } from '../crm/shared-rate-limits';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const INBOUND_MODES = ['apply', 'index-only', 'off'] as const;

const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const flag = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off']))
  .transform((value) => ['true', '1', 'yes', 'on'].includes(value));

const commaList = z
  .string()
  .transform((value) => value.split(',').map((item) => item.trim()).filter(Boolean));

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: integer(0, 65535).default(8000),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  CORS_ORIGINS: commaList.default([]),
  API_KEYS: commaList.default([]),
  RATE_LIMIT_MAX: integer(0, 1_000_000).default(600),
  RATE_LIMIT_WINDOW_MS: integer(1_000, 86_400_000).default(60_000),
  BODY_LIMIT: z
    .string()
    .trim()
    .toLowerCase()
    .regex(/^\d+(b|kb|mb)$/, 'must be a size such as 100kb or 1mb')
    .default('100kb'),
  DATABASE_URL: z.string().optional(),
  POSTGRES_USER: z.string().default('postgres'),
  POSTGRES_PASSWORD: z.string().optional(),
  POSTGRES_DB: z.string().default('contacts'),
  POSTGRES_HOST: z.string().optional(),
  POSTGRES_PORT: integer(1, 65535).default(5432),
  DATABASE_POOL_SIZE: integer(1, 200).default(10),
  DATABASE_CONNECT_TIMEOUT_MS: integer(100, 60_000).default(750),
  DATABASE_QUERY_TIMEOUT_MS: integer(100, 3_600_000).default(750),
  AUTO_MIGRATE: flag.default(true),
  EMBEDDED_POSTGRES_DIR: z.string().default('.data/postgres'),
  EMBEDDED_POSTGRES_PORT: integer(1, 65535).default(54329),
  PIPEDRIVE_API_KEY: z.string().trim().min(1).optional(),
  PIPEDRIVE_BASE_URL: z.url({ protocol: /^https?$/ }).default('https://api.pipedrive.com'),
  PIPEDRIVE_TIMEOUT_MS: integer(100, 120_000).default(10_000),
  PIPEDRIVE_DAILY_TOKEN_RESERVE: integer(0, 100_000_000).default(0),
  PIPEDRIVE_BUDGET_RESET_HOUR_UTC: integer(0, 23).default(0),
  PIPEDRIVE_INDEX_MAX_AGE_MS: integer(0, 86_400_000).default(60_000),
  PIPEDRIVE_INDEX_REFRESH_INTERVAL_MS: integer(0, 86_400_000).default(900_000),
  PIPEDRIVE_RATE_LIMIT_MARGIN_MS: integer(0, 2_000).default(WINDOW_MARGIN_MS),
  PIPEDRIVE_INBOUND: z.enum(INBOUND_MODES).default('apply'),
  PIPEDRIVE_IMPORT_NEW: flag.default(false),
  PIPEDRIVE_WEBHOOK_USER: z.string().trim().min(1).max(255).optional(),
  PIPEDRIVE_WEBHOOK_PASSWORD: z.string().min(16, 'must be at least 16 characters (Pipedrive sends it with every delivery; it is all that authenticates them)').max(255).optional(),
  CRM_SYNC_WAIT_MS: integer(0, 60_000).default(2_000),
  SYNC_WORKER: flag.default(true),
  SYNC_CONCURRENCY: integer(1, 50).default(4),
  SYNC_MAX_ATTEMPTS: integer(1, 100).default(10),
  SYNC_RETRY_BASE_MS: integer(10, 3_600_000).default(1_000),
  SYNC_RETRY_MAX_MS: integer(10, 86_400_000).default(300_000),
  SYNC_POLL_INTERVAL_MS: integer(50, 60_000).default(1_000),
  SYNC_STALE_LOCK_MS: integer(1_000, 14_400_000).default(300_000),
  IDEMPOTENCY_TTL_HOURS: z.coerce.number().positive().max(8_760).default(24),
  DEFAULT_PHONE_REGION: z
    .string()
    .trim()
    .toUpperCase()
    .refine(isPhoneRegion, 'must be a two-letter country code, such as GB or US')
    .optional(),
});

/** Every environment variable the service reads. */
export const CONFIG_VARIABLES = Object.keys(envSchema.shape);

export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  nodeEnv: 'development' | 'production' | 'test';
  port: number;
  logLevel: LogLevel;
  corsOrigins: string[];
  /** Keys callers must send (x-api-key or Authorization: Bearer); empty: no key required. */
  apiKeys: string[];
  rateLimit: { max: number; windowMs: number };
  bodyLimit: string;
  database: {
    /** Absent when nothing is configured: the service then runs on an embedded PostgreSQL. */
    url?: string;
    poolSize: number;
    connectTimeoutMs: number;
    /** How long one statement may go unanswered before the request answers 503. */
    queryTimeoutMs: number;
    autoMigrate: boolean;
    embedded: { dataDir: string; port: number };
  };
  pipedrive: {
    apiKey?: string;
    baseUrl: string;
    timeoutMs: number;
    /** Below this many tokens left in the day, only live changes run; bulk work waits for the next day. */
    dailyTokenReserve: number;
    /** The hour (UTC) at which the company's daily token budget comes back. */
    budgetResetHourUtc: number;
    /** Before matching a new contact, the person index is refreshed when older than this. */
    indexMaxAgeMs: number;
    /** The workers refresh the person index this often, and fill it at start; 0: only before matching. */
    indexRefreshIntervalMs: number;
    /** Added to Pipedrive's 2 s rate-limit window: a call let through reaches Pipedrive a little later. */
    rateLimitMarginMs: number;
  };
  inbound: InboundSettings;
  mirror: MirrorSettings;
  /** How long an Idempotency-Key and its answer are kept. */
  idempotencyTtlMs: number;
  /** The country of phone numbers written without a country code; absent: they are refused. */
  defaultPhoneRegion?: CountryCode;
}

/**
 * Changes made in Pipedrive: apply (to linked contacts, field by field), index-only (the person
 * index follows, contacts do not), off (no webhook receiver; the refresh only keeps the index).
 */
export type InboundMode = (typeof INBOUND_MODES)[number];

export interface InboundSettings {
  mode: InboundMode;
  /** A person created in Pipedrive becomes a local contact (else it is only indexed). */
  importNew: boolean;
  /** The Basic credentials Pipedrive sends with each delivery; absent: no webhook receiver. */
  webhook?: { user: string; password: string };
}

export interface MirrorSettings {
  /** How long POST /contact and POST /contact/note wait for their mirror; 0: not at all. */
  waitMs: number;
  /** Run the mirror worker inside the API process (it can also run alone: `npm run worker`). */
  runWorker: boolean;
  concurrency: number;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** How often the worker looks for work whose retry time has come (new work is noticed at once through LISTEN/NOTIFY). */
  pollIntervalMs: number;
  /** How long a worker's claim on a contact lasts: after it, a killed worker's contact is taken again. Keep it above the longest run. */
  leaseMs: number;
}

/** Variables set to an empty string count as unset, as `.env` files often leave them. */
function withoutEmptyValues(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ''),
  );
}

function databaseUrlFrom(env: z.infer<typeof envSchema>): string | undefined {
  if (env.DATABASE_URL) {
    try {
      return normaliseDatabaseUrl(env.DATABASE_URL);
    } catch (error) {
      throw new ConfigError(`Invalid configuration: DATABASE_URL ${(error as Error).message}`);
    }
  }
  if (!env.POSTGRES_HOST) return undefined;
  return buildDatabaseUrl({
    user: env.POSTGRES_USER,
    password: env.POSTGRES_PASSWORD,
    host: env.POSTGRES_HOST,
    port: env.POSTGRES_PORT,
    database: env.POSTGRES_DB,
  });
}

/** Validates the environment once, at start-up. Throws a ConfigError naming every bad variable. */
export function loadConfig(processEnv: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(withoutEmptyValues(processEnv));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
  }
  const env = parsed.data;
  if ((env.PIPEDRIVE_WEBHOOK_USER === undefined) !== (env.PIPEDRIVE_WEBHOOK_PASSWORD === undefined)) {
    throw new ConfigError('Invalid configuration: PIPEDRIVE_WEBHOOK_USER and PIPEDRIVE_WEBHOOK_PASSWORD go together (set both, or neither)');
  }
  if (env.NODE_ENV === 'production' && env.API_KEYS.length === 0) {
    throw new ConfigError('Invalid configuration: API_KEYS must be set when NODE_ENV=production (comma-separated keys)');
  }
  return {
    nodeEnv: env.NODE_ENV,
    port: env.PORT,
    logLevel: env.LOG_LEVEL,
    corsOrigins: env.CORS_ORIGINS,
    apiKeys: env.API_KEYS,
    rateLimit: { max: env.RATE_LIMIT_MAX, windowMs: env.RATE_LIMIT_WINDOW_MS },
    bodyLimit: env.BODY_LIMIT,
    database: {
      url: databaseUrlFrom(env),
      poolSize: env.DATABASE_POOL_SIZE,
      connectTimeoutMs: env.DATABASE_CONNECT_TIMEOUT_MS,
      queryTimeoutMs: env.DATABASE_QUERY_TIMEOUT_MS,
      autoMigrate: env.AUTO_MIGRATE,
      embedded: { dataDir: env.EMBEDDED_POSTGRES_DIR, port: env.EMBEDDED_POSTGRES_PORT },
    },
    pipedrive: {
      apiKey: env.PIPEDRIVE_API_KEY,
      baseUrl: env.PIPEDRIVE_BASE_URL.replace(/\/+$/, ''),
      timeoutMs: env.PIPEDRIVE_TIMEOUT_MS,
      dailyTokenReserve: env.PIPEDRIVE_DAILY_TOKEN_RESERVE,
      budgetResetHourUtc: env.PIPEDRIVE_BUDGET_RESET_HOUR_UTC,
      indexMaxAgeMs: env.PIPEDRIVE_INDEX_MAX_AGE_MS,
      indexRefreshIntervalMs: env.PIPEDRIVE_INDEX_REFRESH_INTERVAL_MS,
      rateLimitMarginMs: env.PIPEDRIVE_RATE_LIMIT_MARGIN_MS,
    },
    inbound: {
      mode: env.PIPEDRIVE_INBOUND,
      importNew: env.PIPEDRIVE_IMPORT_NEW,
      ...(env.PIPEDRIVE_WEBHOOK_USER !== undefined &&
        env.PIPEDRIVE_WEBHOOK_PASSWORD !== undefined && { webhook: { user: env.PIPEDRIVE_WEBHOOK_USER, password: env.PIPEDRIVE_WEBHOOK_PASSWORD } }),
    },
    mirror: {
      waitMs: env.CRM_SYNC_WAIT_MS,
      runWorker: env.SYNC_WORKER,
      concurrency: env.SYNC_CONCURRENCY,
      maxAttempts: env.SYNC_MAX_ATTEMPTS,
      retryBaseMs: env.SYNC_RETRY_BASE_MS,
      retryMaxMs: env.SYNC_RETRY_MAX_MS,
      pollIntervalMs: env.SYNC_POLL_INTERVAL_MS,
      leaseMs: env.SYNC_STALE_LOCK_MS,
    },
    idempotencyTtlMs: env.IDEMPOTENCY_TTL_HOURS * 3_600_000,
    defaultPhoneRegion: env.DEFAULT_PHONE_REGION as CountryCode | undefined,
  };
}
