import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CONFIG_VARIABLES } from '../../src/config/config';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every mainstream Linux build). */
const CLOCK_TICKS = 100;
const OUTPUT_KEPT = Number(process.env.BENCH_OUTPUT_KEPT ?? 64 * 1024);

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Variables the benchmark sets itself; any other service variable passes through from the caller's environment. */
export interface ChildSpec {
  name: string;
  /** Node arguments before the script, e.g. --cpu-prof. */
  nodeArgs?: string[];
  /** Script path relative to the repository root. */
  script: string;
  env: Record<string, string>;
  port: number;
}

export interface Child {
  name: string;
  pid: number;
  baseUrl: string;
  process: ChildProcess;
  exited: Promise<number | null>;
  /** The last 64 kB the process printed. */
  output(): string;
}

/**
 * The environment of a service process: the caller's, but with every variable the service reads
 * set explicitly (empty means unset, and keeps a developer's `.env` from filling it in), so a
 * run depends only on what the benchmark sets and on what the caller deliberately exported.
 */
export function serviceEnvironment(settings: Record<string, string>): { env: Record<string, string>; passedThrough: Record<string, string> } {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value;
  const passedThrough: Record<string, string> = {};
  for (const name of CONFIG_VARIABLES) {
    if (name in settings) continue;
    const inherited = process.env[name];
    if (inherited !== undefined && inherited !== '') passedThrough[name] = inherited;
    else env[name] = '';
  }
  return { env: { ...env, ...settings }, passedThrough };
}

const live = new Set<Child>();

export function startChild(spec: ChildSpec): Child {
  const child = spawn(process.execPath, [...(spec.nodeArgs ?? []), spec.script], {
    cwd: REPO_ROOT,
    env: spec.env,
    // stdin stays open: the baseline server ends when it closes (the benchmark died).
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.length > OUTPUT_KEPT) output = output.slice(-OUTPUT_KEPT);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  if (child.pid === undefined) throw new Error(`${spec.name} did not start`);
  const handle: Child = {
    name: spec.name,
    pid: child.pid,
    baseUrl: `http://127.0.0.1:${spec.port}`,
    process: child,
    exited,
    output: () => output,
  };
  live.add(handle);
  void exited.then(() => live.delete(handle));
  return handle;
}

/** Polls `urlPath` until it answers 200, the process exits, or the time is up. */
export async function waitUntilReady(child: Child, urlPath: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void child.exited.then((code) => (exitCode = code));
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`${child.name} exited with code ${exitCode} while starting:\n${child.output()}`);
    try {
      const response = await fetch(`${child.baseUrl}${urlPath}`, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(`${child.name} did not answer 200 on ${urlPath} within ${timeoutMs} ms:\n${child.output()}`);
}

/** Children that had to be killed: they did not end within their grace period after SIGTERM. */
export const killedAfterGrace: string[] = [];

/** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
export async function stopChild(child: Child, graceMs = 15_000): Promise<number | null> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return child.exited;
  child.process.kill('SIGTERM');
  const timer = setTimeout(() => {
    killedAfterGrace.push(child.name);
    console.warn(`  (!) ${child.name} did not stop within ${graceMs} ms of SIGTERM: killed`);
    child.process.kill('SIGKILL');
  }, graceMs);
  try {
    return await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Stops a child after a load run: first lets it finish the requests autocannon abandoned when its
 * run ended (their sockets are closed, but the handlers still run), then SIGTERM.
 */
export async function settleThenStop(child: Child, settleMs = 3_000): Promise<number | null> {
  await sleep(settleMs);
  return stopChild(child);
}

/** Kills whatever is still running (on failure or interruption). */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...live].map((child) => stopChild(child, 5_000)));
}

/** CPU seconds (user + system, all threads) a process has used so far; undefined when it cannot be read. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Field 3 of stat(5) is fields[0]; utime is field 14 and stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** CPU seconds all CPUs of the machine have spent busy (not idle, not waiting for I/O) since boot. */
export function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const [, ...values] = line.trim().split(/\s+/);
    const ticks = values.map(Number);
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is counted in user already.
    const busy = (ticks[0] ?? 0) + (ticks[1] ?? 0) + (ticks[2] ?? 0) + (ticks[5] ?? 0) + (ticks[6] ?? 0) + (ticks[7] ?? 0);
    return busy / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** The command name of a process (/proc/<pid>/comm), or undefined. */
export function commandName(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** VmRSS and VmHWM (peak resident set, as the kernel tracks it) in MB. */
export function memoryOf(pid: number): { rssMb: number; peakMb: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/** Samples a process's resident memory every `intervalMs`; `peakMb` is the kernel's high-water mark when readable. */
export class MemorySampler {
  private maxSampledMb = 0;
  private samples = 0;
  private lastPeakMb = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    intervalMs = 200,
  ) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
    this.sample();
  }

  sample(): void {
    const memory = memoryOf(this.pid);
    if (!memory) return;
    this.samples += 1;
    this.maxSampledMb = Math.max(this.maxSampledMb, memory.rssMb);
    if (Number.isFinite(memory.peakMb)) this.lastPeakMb = Math.max(this.lastPeakMb, memory.peakMb);
  }

  /** RSS now and peak so far, under a name (e.g. "after POST /contact"). */
  readonly marks: { label: string; rssMb: number; peakMb: number }[] = [];

  mark(label: string): void {
    const memory = memoryOf(this.pid);
    this.sample();
    if (memory) this.marks.push({ label, rssMb: memory.rssMb, peakMb: this.lastPeakMb || this.maxSampledMb });
  }

  /** Call while the process still runs: VmHWM disappears with it. */
  stop(): { peakMb: number; maxSampledMb: number; samples: number; marks: { label: string; rssMb: number; peakMb: number }[] } {
    this.sample();
    clearInterval(this.timer);
    return { peakMb: this.lastPeakMb || this.maxSampledMb, maxSampledMb: this.maxSampledMb, samples: this.samples, marks: this.marks };
  }
}

export const procAvailable = () => existsSync('/proc/self/stat');
