/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time by module and by function.
 *
 *   node --import tsx bench/lib/cpu-profile.ts bench/.profiles/<file>.cpuprofile [top]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './processes';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Share {
  name: string;
  ms: number;
  /** Percent of the busy (non-idle) time. */
  percent: number;
}

export interface ProfileSummary {
  wallMs: number;
  busyMs: number;
  idleMs: number;
  byModule: Share[];
  byFunction: Share[];
  /** Self time by broad category (HTTP stack, ORM, driver, logging, validation, GC...). */
  byCategory: Share[];
}

const SPECIAL = new Set(['(garbage collector)', '(program)', '(idle)', '(root)']);

/** Which package or file a frame belongs to. */
export function moduleOf(frame: CallFrame): string {
  if (SPECIAL.has(frame.functionName)) return frame.functionName;
  const url = frame.url;
  if (url === '' && /^(writev|writeBuffer|write\w*String|readStart|readStop|onStreamRead|shutdown|close)$/.test(frame.functionName)) return '(native socket I/O)';
  if (url === '') return '(native/builtin)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/').slice(0, 2).join('/')}`;
  if (url.startsWith('wasm://')) return '(wasm)';
  const file = url.startsWith('file://') ? decodeURIComponent(new URL(url).pathname) : url;
  const inModules = file.lastIndexOf('/node_modules/');
  if (inModules >= 0) {
    const parts = file.slice(inModules + '/node_modules/'.length).split('/');
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? file);
  }
  return path.relative(REPO_ROOT, file) || file;
}

const functionOf = (frame: CallFrame) =>
  `${frame.functionName || '(anonymous)'} ${frame.url ? `${moduleOf(frame)}:${frame.lineNumber + 1}` : ''}`.trim();

/**
 * Broad buckets by module, to read the profile at a glance: what the HTTP stack, the ORM, the
 * database driver, logging, validation and V8 itself cost.
 */
export function categoryOf(module: string): string {
  if (module === '(idle)') return 'idle';
  if (module === '(garbage collector)') return 'garbage collection';
  if (module === '(program)') return 'V8/native (program)';
  if (/^(@prisma\/|prisma$|\.prisma$|\(wasm\))/.test(module)) return 'Prisma (client, adapter, query compiler)';
  if (/^(pg|pg-protocol|pg-pool|pg-types|postgres-|pgpass|buffer-writer|packet-reader)/.test(module)) return 'pg driver';
  if (/^(pino|pino-http|pino-std-serializers|sonic-boom|thread-stream|fast-redact|on-exit-leak-free|@pinojs\/)/.test(module)) return 'logging (pino, pino-http)';
  if (/^(zod|@asteasolutions\/)/.test(module)) return 'validation (zod)';
  if (/^(helmet|cors|vary|object-assign)$/.test(module)) return 'helmet + cors';
  if (module === 'express-rate-limit') return 'rate limiting (express-rate-limit)';
  if (/^(prom-client|tdigest|bintrees)$/.test(module) || module.startsWith('dist/metrics/') || module.startsWith('src/metrics/')) return 'metrics (prom-client)';
  if (module === 'dist/http/api-keys.js' || module === 'src/http/api-keys.ts') return 'API key check';
  if (/^(express|router|body-parser|raw-body|iconv-lite|content-type|type-is|mime-|media-typer|qs|finalhandler|send|etag|fresh|on-finished|debug|ms|depd|statuses|http-errors|path-to-regexp|encodeurl|escape-html|parseurl|accepts|negotiator|content-disposition|cookie|proxy-addr|forwarded|ipaddr.js|range-parser|setprototypeof|inherits|bytes|unpipe|ee-first|toidentifier|safe-buffer|safer-buffer|merge-descriptors|utils-merge|methods|serve-static|call-bind|get-intrinsic|side-channel|es-|gopd|has-|hasown|function-bind|object-inspect|dunder-proto|math-intrinsics|call-bound)/.test(module)) {
    return 'express + body parsing';
  }
  if (module.startsWith('node:')) return 'node core (http, net, streams)';
  if (module === '(native/builtin)') return 'V8 builtins / native';
  if (module === '(native socket I/O)') return 'socket I/O syscalls (writev, ...)';
  if (module.startsWith('dist/') || module.startsWith('src/')) return 'service code';
  if (module.startsWith('bench/')) return 'benchmark baseline code';
  return `other: ${module}`;
}

function top(map: Map<string, number>, busyMs: number, count: number): Share[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, ms]) => ({ name, ms, percent: busyMs > 0 ? (100 * ms) / busyMs : 0 }));
}

/**
 * `window` (µs on the monotonic clock, as process.hrtime and V8's profiles count) keeps only the
 * samples taken in it, e.g. the measured run without start-up and warm-up.
 */
export function summariseProfile(file: string, topCount = 25, window?: { start: number; end: number }): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time from sample i-1 to sample i; it is charged to sample i-1's frame.
  let at = profile.startTime;
  let firstUs: number | undefined;
  let lastUs = profile.startTime;
  for (let i = 0; i < profile.samples.length; i += 1) {
    at += profile.timeDeltas[i] ?? 0;
    if (window && (at < window.start || at > window.end)) continue;
    firstUs ??= at;
    lastUs = at;
    const id = profile.samples[i] as number;
    const delta = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, delta));
  }
  const byModule = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const byCategory = new Map<string, number>();
  let idleUs = 0;
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const frame = (nodes.get(id) as ProfileNode).callFrame;
    totalUs += us;
    const module = moduleOf(frame);
    if (module === '(idle)') {
      idleUs += us;
      continue;
    }
    byModule.set(module, (byModule.get(module) ?? 0) + us / 1000);
    byFunction.set(functionOf(frame), (byFunction.get(functionOf(frame)) ?? 0) + us / 1000);
    const category = categoryOf(module);
    byCategory.set(category, (byCategory.get(category) ?? 0) + us / 1000);
  }
  const busyMs = (totalUs - idleUs) / 1000;
  return {
    wallMs: window ? (lastUs - (firstUs ?? lastUs)) / 1000 : (profile.endTime - profile.startTime) / 1000,
    busyMs,
    idleMs: idleUs / 1000,
    byModule: top(byModule, busyMs, topCount),
    byFunction: top(byFunction, busyMs, topCount),
    byCategory: top(byCategory, busyMs, 50),
  };
}

/** `requests`: how many requests the profiled span served, to show each share per request too. */
export function formatSummary(summary: ProfileSummary, title: string, topCount = 15, requests?: number): string {
  const perRequest = requests ? `; ${((1000 * summary.busyMs) / requests).toFixed(0)} µs per request over ${requests} requests` : '';
  const lines = [`${title}: ${Math.round(summary.busyMs)} ms busy of ${Math.round(summary.wallMs)} ms profiled (${Math.round((100 * summary.busyMs) / summary.wallMs)}% of one core)${perRequest}`];
  const table = (heading: string, shares: Share[]) => {
    lines.push(`  ${heading}${requests ? ' (share, total, per request)' : ''}`);
    for (const share of shares.slice(0, topCount)) {
      const each = requests ? `${((1000 * share.ms) / requests).toFixed(0).padStart(5)} µs  ` : '';
      lines.push(`    ${share.percent.toFixed(1).padStart(5)}%  ${String(Math.round(share.ms)).padStart(6)} ms  ${each}${share.name}`);
    }
  };
  table('self time by category', summary.byCategory);
  table('self time by module', summary.byModule);
  table('self time by function', summary.byFunction);
  return lines.join('\n');
}

if (require.main === module) {
  const [file, count] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node --import tsx bench/lib/cpu-profile.ts <file.cpuprofile> [top]');
    process.exit(2);
  }
  const topCount = Number(count ?? 25);
  console.log(formatSummary(summariseProfile(file, topCount), path.basename(file), topCount));
}
