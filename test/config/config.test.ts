import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config/config';
import { normaliseDatabaseUrl, redactDatabaseUrl } from '../../src/config/database-url';
import { ConfigError } from '../../src/config/config-error';

describe('loadConfig', () => {
  it('has defaults for everything, with no database configured (embedded)', () => {
    const config = loadConfig({});
    expect(config).toEqual({
      nodeEnv: 'development',
      port: 8000,
      logLevel: 'info',
      corsOrigins: [],
      apiKeys: [],
      rateLimit: { max: 600, windowMs: 60_000 },
      bodyLimit: '100kb',
      database: {
        url: undefined,
        poolSize: 10,
        connectTimeoutMs: 750,
        queryTimeoutMs: 750,
        autoMigrate: true,
        embedded: { dataDir: '.data/postgres', port: 54329 },
      },
      pipedrive: { apiKey: undefined, baseUrl: 'https://api.pipedrive.com', timeoutMs: 10_000, dailyTokenReserve: 0, budgetResetHourUtc: 0, indexMaxAgeMs: 60_000, indexRefreshIntervalMs: 900_000, rateLimitMarginMs: 150 },
      inbound: { mode: 'apply', importNew: false },
      mirror: {
        waitMs: 2000,
        runWorker: true,
        concurrency: 4,
        maxAttempts: 10,
        retryBaseMs: 1000,
        retryMaxMs: 300_000,
        pollIntervalMs: 1000,
        leaseMs: 300_000,
      },
      idempotencyTtlMs: 86_400_000,
    });
  });

  it('reads every variable', () => {
    const config = loadConfig({
      NODE_ENV: 'production',
      PORT: '9000',
      LOG_LEVEL: 'debug',
      CORS_ORIGINS: 'https://a.example.com, https://b.example.com,',
      API_KEYS: 'k1, k2',
      RATE_LIMIT_MAX: '5',
      RATE_LIMIT_WINDOW_MS: '2000',
      BODY_LIMIT: '1MB',
      DATABASE_URL: 'postgres://u:p@db:5432/contacts',
      DATABASE_POOL_SIZE: '25',
      DATABASE_CONNECT_TIMEOUT_MS: '500',
      DATABASE_QUERY_TIMEOUT_MS: '30000',
      AUTO_MIGRATE: 'false',
      EMBEDDED_POSTGRES_DIR: '/tmp/pg',
      EMBEDDED_POSTGRES_PORT: '6000',
      PIPEDRIVE_API_KEY: ' token ',
      PIPEDRIVE_BASE_URL: 'http://127.0.0.1:9999/',
      PIPEDRIVE_TIMEOUT_MS: '500',
      CRM_SYNC_WAIT_MS: '0',
      SYNC_WORKER: 'false',
      SYNC_CONCURRENCY: '2',
      SYNC_MAX_ATTEMPTS: '3',
      SYNC_RETRY_BASE_MS: '50',
      SYNC_RETRY_MAX_MS: '1000',
      SYNC_POLL_INTERVAL_MS: '100',
      SYNC_STALE_LOCK_MS: '5000',
      IDEMPOTENCY_TTL_HOURS: '0.5',
      PIPEDRIVE_RATE_LIMIT_MARGIN_MS: '400',
      PIPEDRIVE_INBOUND: 'index-only',
      PIPEDRIVE_IMPORT_NEW: 'true',
      PIPEDRIVE_WEBHOOK_USER: 'pipedrive',
      PIPEDRIVE_WEBHOOK_PASSWORD: 'a-long-webhook-secret',
    });
    expect(config).toEqual({
      nodeEnv: 'production',
      port: 9000,
      logLevel: 'debug',
      corsOrigins: ['https://a.example.com', 'https://b.example.com'],
      apiKeys: ['k1', 'k2'],
      rateLimit: { max: 5, windowMs: 2000 },
      bodyLimit: '1mb',
      database: {
        url: 'postgresql://u:p@db:5432/contacts',
        poolSize: 25,
        connectTimeoutMs: 500,
        queryTimeoutMs: 30_000,
        autoMigrate: false,
        embedded: { dataDir: '/tmp/pg', port: 6000 },
      },
      pipedrive: { apiKey: 'token', baseUrl: 'http://127.0.0.1:9999', timeoutMs: 500, dailyTokenReserve: 0, budgetResetHourUtc: 0, indexMaxAgeMs: 60_000, indexRefreshIntervalMs: 900_000, rateLimitMarginMs: 400 },
      inbound: { mode: 'index-only', importNew: true, webhook: { user: 'pipedrive', password: 'a-long-webhook-secret' } },
      mirror: {
        waitMs: 0,
        runWorker: false,
        concurrency: 2,
        maxAttempts: 3,
        retryBaseMs: 50,
        retryMaxMs: 1000,
        pollIntervalMs: 100,
        leaseMs: 5000,
      },
      idempotencyTtlMs: 1_800_000,
    });
  });

  it('treats empty variables as unset, as a copied .env.example leaves them', () => {
    const config = loadConfig({ PORT: '', DATABASE_URL: '', PIPEDRIVE_API_KEY: '', CORS_ORIGINS: '' });
    expect(config.port).toBe(8000);
    expect(config.database.url).toBeUndefined();
    expect(config.pipedrive.apiKey).toBeUndefined();
    expect(config.corsOrigins).toEqual([]);
  });

  it('reads DEFAULT_PHONE_REGION in any case, and leaves it unset when empty', () => {
    expect(loadConfig({ DEFAULT_PHONE_REGION: ' gb ' }).defaultPhoneRegion).toBe('GB');
    expect(loadConfig({ DEFAULT_PHONE_REGION: '' }).defaultPhoneRegion).toBeUndefined();
  });

  it('builds the URL from POSTGRES_* when DATABASE_URL is absent, escaping the password', () => {
    const config = loadConfig({
      POSTGRES_USER: 'app',
      POSTGRES_PASSWORD: 'p@ss:w/rd',
      POSTGRES_DB: 'crm',
      POSTGRES_HOST: 'db',
      POSTGRES_PORT: '6543',
    });
    expect(config.database.url).toBe('postgresql://app:p%40ss%3Aw%2Frd@db:6543/crm');
    expect(decodeURIComponent(new URL(config.database.url!).password)).toBe('p@ss:w/rd');
  });

  it('prefers DATABASE_URL over POSTGRES_*', () => {
    const config = loadConfig({ DATABASE_URL: 'postgresql://x@h1/d1', POSTGRES_HOST: 'h2' });
    expect(config.database.url).toBe('postgresql://x@h1/d1');
  });

  it.each([
    ['yes', true],
    ['1', true],
    ['TRUE', true],
    ['no', false],
    ['0', false],
    ['off', false],
  ])('reads AUTO_MIGRATE=%s as %s', (value, expected) => {
    expect(loadConfig({ AUTO_MIGRATE: value }).database.autoMigrate).toBe(expected);
  });

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['LOG_LEVEL', 'loud'],
    ['NODE_ENV', 'staging'],
    ['DATABASE_POOL_SIZE', '0'],
    ['AUTO_MIGRATE', 'maybe'],
    ['POSTGRES_PORT', 'x'],
    ['PIPEDRIVE_BASE_URL', 'ftp://pipedrive.example'],
    ['CRM_SYNC_WAIT_MS', '-1'],
    ['SYNC_WORKER', 'sometimes'],
    ['BODY_LIMIT', 'lots'],
    ['RATE_LIMIT_MAX', '-1'],
    ['DATABASE_URL', 'mysql://root@localhost/db'],
    ['DATABASE_URL', 'not a url'],
    ['IDEMPOTENCY_TTL_HOURS', '0'],
    ['IDEMPOTENCY_TTL_HOURS', 'a day'],
    ['DEFAULT_PHONE_REGION', 'XX'],
    ['DEFAULT_PHONE_REGION', 'United Kingdom'],
  ])('refuses %s=%s with a message naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`\\b${name}\\b`));
  });

  it('refuses production without API keys', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/API_KEYS must be set when NODE_ENV=production/);
    expect(loadConfig({ NODE_ENV: 'production', API_KEYS: 'k' }).apiKeys).toEqual(['k']);
  });

  it('names every bad variable at once', () => {
    expect(() => loadConfig({ PORT: 'x', LOG_LEVEL: 'y' })).toThrow(/PORT.*LOG_LEVEL|LOG_LEVEL.*PORT/);
  });

  it('never puts the database password in its error message', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://root:hunter2@localhost/db' })).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('hunter2') }),
    );
  });
});

describe('normaliseDatabaseUrl', () => {
  it.each([
    ['postgres://u:p@h:5432/d', 'postgresql://u:p@h:5432/d'],
    ['postgresql://u:p@h:5432/d', 'postgresql://u:p@h:5432/d'],
    ['postgresql+psycopg://u:p@h:5432/d', 'postgresql://u:p@h:5432/d'],
    ['postgresql+psycopg2://u:p@h/d', 'postgresql://u:p@h/d'],
    ['postgresql+asyncpg://u:p@h/d?sslmode=require', 'postgresql://u:p@h/d?sslmode=require'],
    ['postgres+asyncpg://u@h/d', 'postgresql://u@h/d'],
    ['POSTGRESQL://u@h/d', 'postgresql://u@h/d'],
    ['  postgresql://u@h/d\n', 'postgresql://u@h/d'],
  ])('%s → %s', (raw, expected) => {
    expect(normaliseDatabaseUrl(raw)).toBe(expected);
  });

  it.each(['mysql://u@h/d', 'sqlite:///tmp/x.db', 'http://h/d', 'h:5432/d', 'postgresql://'])('refuses %s', (raw) => {
    expect(() => normaliseDatabaseUrl(raw)).toThrow();
  });
});

describe('redactDatabaseUrl', () => {
  it('masks the password and keeps the rest', () => {
    expect(redactDatabaseUrl('postgresql://app:s3cret@db:5432/crm')).toBe('postgresql://app:***@db:5432/crm');
    expect(redactDatabaseUrl('postgresql://app@db/crm')).toBe('postgresql://app@db/crm');
  });
});

describe('.env.example', () => {
  it('documents exactly the variables the service reads, and those only Docker Compose uses', () => {
    const composeOnly = ['N8N_PORT', 'N8N_ENCRYPTION_KEY', 'GENERIC_TIMEZONE'];
    const text = readFileSync(path.join(__dirname, '../../.env.example'), 'utf8');
    const documented = [...text.matchAll(/^([A-Z_][A-Z0-9_]*)=/gm)].map((match) => match[1]);
    expect(documented.sort()).toEqual([...CONFIG_VARIABLES, ...composeOnly].sort());
  });

  it('loads as a valid configuration', () => {
    const text = readFileSync(path.join(__dirname, '../../.env.example'), 'utf8');
    const env = Object.fromEntries([...text.matchAll(/^([A-Z_][A-Z0-9_]*)=(.*)$/gm)].map((match) => [match[1], match[2]]));
    expect(() => loadConfig(env)).not.toThrow();
  });
});
