import { existsSync } from 'node:fs';
import path from 'node:path';
import { defineConfig } from 'prisma/config';
import { createMigrationAdapter } from './src/db/migration-adapter';

// Before every command, `generate` included, the CLI resolves the schema's env("DATABASE_URL")
// to choose engines; when that fails it falls back to downloading the native query engine,
// which cannot be fetched here. `generate` needs no database, so a placeholder is enough;
// the adapter below refuses it.
// With a config file the CLI no longer reads .env itself; the service does, so do the same.
if (existsSync('.env')) process.loadEnvFile('.env');

const UNSET_DATABASE_URL = 'postgresql://database-url-not-set.invalid/unset';
process.env.DATABASE_URL ||= UNSET_DATABASE_URL;

// Prisma's native schema engine cannot be downloaded here; the JavaScript (wasm) engine
// runs migrations through the pg driver adapter instead.
export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: path.join('prisma', 'schema.prisma'),
  migrations: { path: path.join('prisma', 'migrations') },
  adapter: async () => {
    const url = process.env.DATABASE_URL;
    if (!url || url === UNSET_DATABASE_URL) throw new Error('DATABASE_URL is not set');
    return createMigrationAdapter(url);
  },
});
