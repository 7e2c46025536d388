import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

export interface ServerProcess {
  child: ChildProcess;
  baseUrl: string;
  /** Everything the process printed so far. */
  output(): string;
  /** Resolves with the exit code once the process has ended. */
  exited: Promise<number | null>;
}

/** Variables from the developer's shell that would change which database the child uses. */
const INHERITED_DATABASE_VARIABLES = /^(DATABASE_URL|POSTGRES_.*|TEST_DATABASE_URL|PORT|AUTO_MIGRATE|EMBEDDED_POSTGRES_.*|PIPEDRIVE_.*|CRM_.*|SYNC_.*)$/;

/**
 * Runs `src/server.ts` the way `npm start` does (or `src/worker.ts`, as `npm run worker`),
 * in a child process with exactly the given settings.
 */
export function spawnServer(env: Record<string, string>, script: 'src/server.ts' | 'src/worker.ts' = 'src/server.ts'): ServerProcess {
  const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !INHERITED_DATABASE_VARIABLES.test(name)));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...baseEnv, NODE_ENV: 'test', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, baseUrl: `http://127.0.0.1:${env.PORT ?? 8000}`, output: () => output, exited };
}

/** Polls `path` until it answers `status`, the process exits, or the time is up. */
export async function waitForStatus(server: ServerProcess, urlPath: string, status: number, timeoutMs: number): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void server.exited.then((code) => (exitCode = code));
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`server exited with ${exitCode}:\n${server.output()}`);
    try {
      const res = await fetch(`${server.baseUrl}${urlPath}`);
      if (res.status === status) return res;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${urlPath} did not answer ${status} within ${timeoutMs} ms:\n${server.output()}`);
}

/** Ends the process, with SIGKILL if it outlives the grace period. */
export async function stopServer(server: ServerProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<number | null> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return server.exited;
  server.child.kill(signal);
  const timer = setTimeout(() => server.child.kill('SIGKILL'), graceMs);
  try {
    return await server.exited;
  } finally {
    clearTimeout(timer);
  }
}
