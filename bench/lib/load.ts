import autocannon from 'autocannon';
import type { Request, Result } from 'autocannon';
import { cpuSeconds, machineBusySeconds } from './processes';

export interface Operation {
  /** Shown in the tables: "POST /contact". */
  label: string;
  /** autocannon requests; setupRequest makes each one different (a unique email, a random id). */
  requests: (runTag: string) => Request[];
  /** Status a successful request answers. */
  okStatus: number;
  /**
   * A baseline-only variant: the baseline is measured on these requests, the service is not
   * measured again and compared with its result for the operation of this label.
   */
  serviceFrom?: string;
}

export interface LoadSettings {
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
  /** Extra headers on every request (e.g. an API key). */
  headers: Record<string, string>;
}

export interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  ok: number;
  /** Answers other than okStatus, errors and timeouts: any of these makes the run suspect. */
  failures: { non2xx: number; errors: number; timeouts: number; statusCodes: Record<string, number> };
  durationSeconds: number;
  /**
   * CPU milliseconds per successful request, by process: "target", "postgres" (the backends of its
   * database), "load generator" (this process), and "machine" (all CPUs, everything included).
   */
  cpuMsPerRequest: Record<string, number | undefined>;
  /** Share of the machine's CPUs used during the run, by process, in percent of one core. */
  cpuPercent: Record<string, number | undefined>;
  /** The measured run on the monotonic clock (µs), which V8's CPU profiles use too. */
  windowUs: { start: number; end: number };
}

export type CpuProbe = () => Promise<number | undefined>;

/**
 * Runs one operation against `baseUrl`: a warm-up (not recorded; JIT, connection pools), then
 * the measured run. CPU time of the target, of PostgreSQL's backends and of this process is read
 * before and after the measured run.
 */
export async function measure(
  baseUrl: string,
  operation: Operation,
  settings: LoadSettings,
  runTag: string,
  probes: { targetPid: number; postgresCpu?: CpuProbe },
): Promise<LoadResult> {
  const run = (durationSeconds: number, tag: string) =>
    autocannon({
      url: baseUrl,
      connections: settings.connections,
      duration: durationSeconds,
      timeout: 10,
      headers: settings.headers,
      requests: operation.requests(tag),
    });
  if (settings.warmupSeconds > 0) await run(settings.warmupSeconds, `${runTag}w`);

  const before = { target: cpuSeconds(probes.targetPid), postgres: await probes.postgresCpu?.(), self: process.cpuUsage(), machine: machineBusySeconds() };
  const startedAt = performance.now();
  const startUs = Number(process.hrtime.bigint() / 1000n);
  const result: Result = await run(settings.durationSeconds, runTag);
  const endUs = Number(process.hrtime.bigint() / 1000n);
  const wallSeconds = (performance.now() - startedAt) / 1000;
  const selfCpu = process.cpuUsage(before.self);
  const after = { target: cpuSeconds(probes.targetPid), postgres: await probes.postgresCpu?.(), machine: machineBusySeconds() };

  const ok = result.statusCodeStats[String(operation.okStatus)]?.count ?? 0;
  const perRequest = (seconds: number | undefined) => (seconds === undefined || ok === 0 ? undefined : (seconds * 1000) / ok);
  const percent = (seconds: number | undefined) => (seconds === undefined ? undefined : (100 * seconds) / wallSeconds);
  const cpu = {
    target: before.target === undefined || after.target === undefined ? undefined : after.target - before.target,
    postgres: before.postgres === undefined || after.postgres === undefined ? undefined : after.postgres - before.postgres,
    'load generator': (selfCpu.user + selfCpu.system) / 1e6,
    machine: before.machine === undefined || after.machine === undefined ? undefined : after.machine - before.machine,
  };
  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count]));
  return {
    requestsPerSecond: ok / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    ok,
    failures: {
      non2xx: result.non2xx + Object.entries(statusCodes).filter(([code]) => code.startsWith('2') && Number(code) !== operation.okStatus).reduce((sum, [, n]) => sum + n, 0),
      errors: result.errors,
      timeouts: result.timeouts,
      statusCodes,
    },
    durationSeconds: result.duration,
    cpuMsPerRequest: Object.fromEntries(Object.entries(cpu).map(([name, seconds]) => [name, perRequest(seconds)])),
    cpuPercent: Object.fromEntries(Object.entries(cpu).map(([name, seconds]) => [name, percent(seconds)])),
    windowUs: { start: startUs, end: endUs },
  };
}
