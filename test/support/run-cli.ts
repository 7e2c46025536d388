import { spawn, type ChildProcessByStdio } from 'node:child_process';
import path from 'node:path';
import type { Readable } from 'node:stream';

export const ROOT = path.resolve(__dirname, '../..');

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunningCli {
  child: ChildProcessByStdio<null, Readable, Readable>;
  /** What it has written to stderr so far. */
  stderr(): string;
  done: Promise<Result>;
}

/**
 * Starts the CLI as an operator would in development, in a child process with exactly `env`
 * (plus PATH and HOME): nothing of this process's database settings leaks into it.
 */
export function startCli(args: string[], env: Record<string, string>, options: { cwd?: string; timeoutMs?: number } = {}): RunningCli {
  const cwd = options.cwd ?? ROOT;
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(cwd, 'src', 'ops', 'cli.ts'), ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'development', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<Result>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ops ${args.join(' ')} did not finish in time:\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 55_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { child, stderr: () => stderr, done };
}

export function runCli(args: string[], env: Record<string, string>, options: { cwd?: string; timeoutMs?: number } = {}): Promise<Result> {
  return startCli(args, env, options).done;
}
