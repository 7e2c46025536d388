import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, serviceEnvironment, startChild, waitUntilReady, type Child } from './processes';

export type ServiceMode = 'dist' | 'tsx';

/** The key every service process of a run accepts (production refuses to start without API_KEYS). */
export const API_KEY = `bench-${randomBytes(16).toString('hex')}`;

/** Sent with every request to the service (and, ignored, to the baseline). */
export const REQUEST_HEADERS: Record<string, string> = { 'x-api-key': API_KEY };

/**
 * What every service process of the benchmark runs with: production mode, an API key, and the
 * per-caller rate limit raised far above what the runs send (the benchmark is one caller; its
 * middleware still runs, so its cost is measured).
 */
export function serviceSettings(databaseUrl: string): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    NODE_ENV: 'production',
    // Info would log every request to stdout; see docs/benchmarks.md.
    LOG_LEVEL: 'warn',
    AUTO_MIGRATE: 'true',
    API_KEYS: API_KEY,
    RATE_LIMIT_MAX: '1000000',
    RATE_LIMIT_WINDOW_MS: '60000',
  };
}

/** Compiles src/ to dist/ exactly as `npm run build` (and so `npm start`) does. */
export function buildService(): void {
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, stdio: 'inherit' });
}

export interface LaunchOptions {
  name: string;
  mode: ServiceMode;
  /** The API (server) or the mirror worker alone. */
  role: 'server' | 'worker';
  port: number;
  settings: Record<string, string>;
  nodeArgs?: string[];
}

/** The options node runs the service with in `npm start` and `npm run worker` (`--max-old-space-size`). */
function productionNodeArgs(role: LaunchOptions['role']): string[] {
  const { scripts } = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const command = scripts[role === 'server' ? 'start' : 'worker']!.trim().split(/\s+/);
  return command.slice(1, -1);
}

export function launchService(options: LaunchOptions): { child: Child; passedThrough: Record<string, string> } {
  const script = options.mode === 'dist' ? `dist/${options.role}.js` : `src/${options.role}.ts`;
  const nodeArgs = [...productionNodeArgs(options.role), ...(options.nodeArgs ?? []), ...(options.mode === 'tsx' ? ['--import', 'tsx'] : [])];
  const { env, passedThrough } = serviceEnvironment({ PORT: String(options.port), ...options.settings });
  const child = startChild({ name: options.name, script, nodeArgs, env, port: options.port });
  return { child, passedThrough };
}

/** The API answers /health once it listens (migrations are done by then) and /contact/health once the database answers. */
export async function waitForService(child: Child, timeoutMs = 90_000): Promise<void> {
  await waitUntilReady(child, '/health', timeoutMs);
  await waitUntilReady(child, '/contact/health', timeoutMs);
}

export function startBaseline(port: number, databaseUrl: string, poolSize: number, nodeArgs: string[] = []): Child {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value;
  return startChild({
    name: 'baseline',
    script: 'bench/baseline-server.ts',
    nodeArgs: [...nodeArgs, '--import', 'tsx'],
    env: { ...env, NODE_ENV: 'production', DATABASE_URL: databaseUrl, PORT: String(port), BASELINE_POOL_SIZE: String(poolSize) },
    port,
  });
}
