import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/config';
import { SHUTDOWN_DEADLINE_MS } from '../../src/runtime';

// No Docker engine runs where the suite runs: these tests read the Dockerfile, .dockerignore,
// docker-compose.yml and .env.example and check what `docker build` / `docker compose up` rely on.

const root = path.resolve(__dirname, '..', '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

type EnvMap = Record<string, string | number | boolean | null>;

interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  restart?: string;
  stop_grace_period?: string;
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[] };
  ports?: (string | number | { target?: string | number })[];
  volumes?: (string | { type?: string; source?: string; target?: string; read_only?: boolean })[];
  env_file?: string | (string | { path: string; required?: boolean | string })[];
  environment?: EnvMap | string[];
  configs?: (string | { source: string; target?: string })[];
}

interface ComposeFile {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  configs?: Record<string, { content?: string; file?: string }>;
}

const compose = parse(read('docker-compose.yml')) as ComposeFile;
const service = (name: string): Service => {
  const found = compose.services[name];
  if (!found) throw new Error(`docker-compose.yml has no service ${name}`);
  return found;
};

/** `.env`-style `NAME=value` lines. */
function readEnvFile(file: string): Record<string, string> {
  return Object.fromEntries([...read(file).matchAll(/^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
}
const envExample = readEnvFile('.env.example');

// $$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+alt}, ${VAR+alt}, $VAR
const VARIABLE = /\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/** Compose's interpolation of one value, with `vars` standing for the shell and `.env`. */
function interpolate(text: string, vars: Record<string, string>): string {
  return text.replace(VARIABLE, (_match, dollar, braced, operator, operand, bare) => {
    if (dollar) return '$';
    const name = (braced ?? bare) as string;
    const value = vars[name];
    const set = value !== undefined;
    const nonEmpty = set && value !== '';
    switch (operator as string | undefined) {
      case ':-':
        return nonEmpty ? value : operand;
      case '-':
        return set ? value : operand;
      case ':+':
        return nonEmpty ? operand : '';
      case '+':
        return set ? operand : '';
      case ':?':
      case '?':
        if (operator === ':?' ? !nonEmpty : !set) throw new Error(`${name}: ${operand}`);
        return value!;
      default:
        return value ?? '';
    }
  });
}

/** Every string value in the file (compose interpolates values, never keys or comments). */
function stringValues(node: unknown): string[] {
  if (typeof node === 'string') return [node];
  if (Array.isArray(node)) return node.flatMap(stringValues);
  if (node && typeof node === 'object') return Object.values(node).flatMap(stringValues);
  return [];
}

function referencedVariables(): string[] {
  const names = new Set<string>();
  for (const value of stringValues(compose)) {
    for (const m of value.matchAll(VARIABLE)) {
      if (m[4]?.includes('$')) throw new Error(`nested interpolation is not checked here: ${value}`);
      const name = m[2] ?? m[5];
      if (name) names.add(name);
    }
  }
  return [...names].sort();
}

function environmentOf(svc: Service): Record<string, string> {
  const env = svc.environment ?? {};
  const entries = Array.isArray(env)
    ? env.map((line) => [line.split('=')[0]!, line.slice(line.indexOf('=') + 1)] as const)
    : Object.entries(env).map(([key, value]) => [key, value === null ? '' : String(value)] as const);
  return Object.fromEntries(entries);
}

/**
 * The environment the container gets: its env_file entries (each given as `.env` contents, or
 * absent), overridden by `environment:`, interpolated with `vars` as compose does.
 */
function containerEnv(svc: Service, vars: Record<string, string>, envFile?: Record<string, string>) {
  const interpolated = Object.entries(environmentOf(svc)).map(([key, value]) => [key, interpolate(value, vars)]);
  return { ...(envFile ?? {}), ...Object.fromEntries(interpolated) } as Record<string, string>;
}

function healthcheckCommand(svc: Service): string {
  const test = svc.healthcheck?.test;
  return Array.isArray(test) ? test.join(' ') : (test ?? '');
}

function mounts(svc: Service): { source: string; target: string; readOnly: boolean }[] {
  return (svc.volumes ?? []).map((volume) => {
    if (typeof volume !== 'string') {
      return { source: volume.source ?? '', target: volume.target ?? '', readOnly: volume.read_only === true };
    }
    const [source = '', target = '', mode = ''] = volume.split(':');
    return { source, target, readOnly: mode.split(',').includes('ro') };
  });
}

const isNamedVolume = (source: string) => /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(source);

function containerPorts(svc: Service): string[] {
  return (svc.ports ?? []).map((port) => {
    if (typeof port === 'object') return String(port.target);
    // [ip:][host:]container[/protocol]; the host part may hold ${VAR:-default}.
    return String(port).split('/')[0]!.split(':').at(-1)!;
  });
}

function dependsOn(svc: Service): Record<string, string | undefined> {
  const deps = svc.depends_on ?? {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((name) => [name, 'service_started']));
  return Object.fromEntries(Object.entries(deps).map(([name, dep]) => [name, dep.condition]));
}

describe('docker-compose.yml', () => {
  it('has exactly the services db, api and n8n', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['api', 'db', 'n8n']);
  });

  it('db: PostgreSQL 16, a pg_isready health check, its data on a declared named volume', () => {
    const db = service('db');
    expect(db.image).toBe('postgres:16-alpine');
    expect(healthcheckCommand(db)).toMatch(/pg_isready\b.*-U\b.*-d\b|pg_isready\b.*-d\b.*-U\b/);
    const data = mounts(db).find((mount) => mount.target === '/var/lib/postgresql/data');
    expect(data && isNamedVolume(data.source)).toBe(true);
    expect(Object.keys(compose.volumes ?? {})).toContain(data!.source);
    expect(db.restart).toMatch(/^(always|unless-stopped|on-failure)/);
  });

  it('db: takes its credentials from .env, with defaults for a fresh checkout', () => {
    for (const vars of [{}, envExample]) {
      const env = containerEnv(service('db'), vars);
      expect(env.POSTGRES_USER).toBeTruthy();
      expect(env.POSTGRES_PASSWORD).toBeTruthy(); // the postgres image refuses to start without one
      expect(env.POSTGRES_DB).toBeTruthy();
    }
  });

  it('api: built from the Dockerfile here, started once db is healthy, health check on /health, port 8000', () => {
    const api = service('api');
    const build = typeof api.build === 'string' ? { context: api.build } : api.build;
    expect(path.resolve(root, build?.context ?? '')).toBe(root);
    expect(build?.dockerfile ?? 'Dockerfile').toBe('Dockerfile');
    expect(dependsOn(api)).toEqual({ db: 'service_healthy' });
    expect(healthcheckCommand(api)).toMatch(/\/health\b/);
    expect(healthcheckCommand(api)).not.toMatch(/\/contact\/health/);
    expect(containerPorts(api)).toContain('8000');
  });

  it('api: gets longer than the service\'s own shutdown deadline to stop before it is killed', () => {
    const grace = /^(\d+)s$/.exec(String(service('api').stop_grace_period ?? '10s'));
    expect(Number(grace?.[1]) * 1000).toBeGreaterThan(SHUTDOWN_DEADLINE_MS);
  });

  it('api: works without a .env file (env_file, if any, is optional)', () => {
    const files = service('api').env_file;
    for (const file of files === undefined ? [] : Array.isArray(files) ? files : [files]) {
      expect(typeof file === 'object' && String(file.required)).toBe('false');
    }
  });

  it('api: without API_KEYS, compose stops with a message naming it (the API runs in production mode)', () => {
    expect(() => containerEnv(service('api'), {}, undefined)).toThrow(/API_KEYS/);
    expect(() => containerEnv(service('api'), envExample, envExample)).toThrow(/API_KEYS/);
  });

  const keys = { API_KEYS: 'key-one,key-two' };
  it.each([
    ['only API_KEYS set', keys, keys],
    ['a .env copied from .env.example, with keys', { ...envExample, ...keys }, { ...envExample, ...keys }],
    [
      'a .env set up for a local run, with an awkward password',
      { ...envExample, ...keys, POSTGRES_PASSWORD: 'p@ss:w/rd', POSTGRES_USER: 'app' },
      { ...envExample, ...keys, DATABASE_URL: 'postgresql://me@localhost:5432/contacts', POSTGRES_HOST: 'localhost', PORT: '9000', NODE_ENV: 'development' },
    ],
  ])('api: with %s, reaches the db service with its credentials and listens on 8000', (_name, vars, envFile) => {
    const config = loadConfig(containerEnv(service('api'), vars, envFile));
    const db = containerEnv(service('db'), vars);
    const url = new URL(config.database.url!);
    expect(url.hostname).toBe('db');
    expect(url.port || '5432').toBe('5432');
    expect(decodeURIComponent(url.username)).toBe(db.POSTGRES_USER);
    expect(decodeURIComponent(url.password)).toBe(db.POSTGRES_PASSWORD);
    expect(url.pathname).toBe(`/${db.POSTGRES_DB}`);
    expect(config.port).toBe(8000);
    expect(config.nodeEnv).toBe('production');
    expect(config.apiKeys).toEqual(['key-one', 'key-two']);
  });

  it('api: passes the Pipedrive key through', () => {
    const vars = { ...keys, PIPEDRIVE_API_KEY: 'token-from-env' };
    const env = containerEnv(service('api'), vars, vars);
    expect(loadConfig(env).pipedrive.apiKey).toBe('token-from-env');
  });

  it('n8n: a pinned image, started once the API is healthy, health check on /healthz', () => {
    const n8n = service('n8n');
    expect(n8n.image).toMatch(/^n8nio\/n8n:\d+\.\d+\.\d+$/);
    expect(dependsOn(n8n)).toEqual({ db: 'service_healthy', api: 'service_healthy' });
    expect(healthcheckCommand(n8n)).toMatch(/:5678\/healthz\b/);
    expect(containerPorts(n8n)).toContain('5678');
  });

  it("n8n: keeps its data in a declared named volume and mounts the repository's workflows read-only", () => {
    const n8nMounts = mounts(service('n8n'));
    const data = n8nMounts.find((mount) => mount.target === '/home/node/.n8n');
    expect(data && isNamedVolume(data.source)).toBe(true);
    expect(Object.keys(compose.volumes ?? {})).toContain(data!.source);
    const workflows = n8nMounts.find((mount) => path.resolve(root, mount.source) === path.join(root, 'n8n'));
    expect(workflows).toMatchObject({ readOnly: true });
    expect(workflows!.target).toMatch(/^\//);
  });

  it.each([
    ['no .env', {}],
    ['a .env copied from .env.example', envExample],
    ['other database settings', { ...envExample, POSTGRES_USER: 'app', POSTGRES_PASSWORD: 'p@ss:w/rd', POSTGRES_DB: 'crm' }],
  ])('n8n: with %s, runs on a database of its own in the db service, with its credentials', (_name, vars) => {
    const n8n = containerEnv(service('n8n'), vars);
    const db = containerEnv(service('db'), vars);
    expect(n8n).toMatchObject({
      DB_TYPE: 'postgresdb',
      DB_POSTGRESDB_HOST: 'db',
      DB_POSTGRESDB_PORT: '5432',
      DB_POSTGRESDB_USER: db.POSTGRES_USER,
      DB_POSTGRESDB_PASSWORD: db.POSTGRES_PASSWORD,
    });
    expect(n8n.DB_POSTGRESDB_DATABASE).toBeTruthy();
    expect(n8n.DB_POSTGRESDB_DATABASE).not.toBe(db.POSTGRES_DB);
  });

  it("db: creates n8n's database when it initialises its volume (an init script of the postgres image)", () => {
    const scripts = (service('db').configs ?? [])
      .map((config) => (typeof config === 'string' ? { source: config, target: `/${config}` } : config))
      .filter(({ target }) => target !== undefined && /^\/docker-entrypoint-initdb\.d\/[^/]+\.sql$/.test(target));
    const sql = scripts.map(({ source }) => compose.configs?.[source]?.content ?? '').join('\n');
    const created = [...sql.matchAll(/^\s*CREATE DATABASE\s+"?(\w+)"?\s*;/gim)].map((m) => m[1]);
    expect(created).toEqual([containerEnv(service('n8n'), envExample).DB_POSTGRESDB_DATABASE]);
  });

  it('n8n: the workflows reach the API inside the stack and may read that address', () => {
    const env = containerEnv(service('n8n'), envExample);
    const apiPort = containerPorts(service('api'))[0];
    expect(env.CONTACT_API_URL).toBe(`http://api:${apiPort}`);
    expect(env.N8N_BLOCK_ENV_ACCESS_IN_NODE).toBe('false');
    expect(Object.keys(env)).toContain('N8N_ENCRYPTION_KEY');
  });

  it('declares every named volume it mounts, and mounts every one it declares', () => {
    const used = Object.values(compose.services)
      .flatMap(mounts)
      .map((mount) => mount.source)
      .filter(isNamedVolume);
    expect([...new Set(used)].sort()).toEqual(Object.keys(compose.volumes ?? {}).sort());
  });

  it('interpolates only variables that .env.example documents', () => {
    const variables = referencedVariables();
    expect(variables.length).toBeGreaterThan(0);
    expect(variables.filter((name) => !(name in envExample))).toEqual([]);
  });
});

describe('.env.example', () => {
  it('documents every variable docker-compose.yml uses and still loads as a valid configuration', () => {
    for (const name of referencedVariables()) expect(Object.keys(envExample)).toContain(name);
    expect(() => loadConfig(envExample)).not.toThrow();
  });
});

// ---------------------------------------------------------------------------------------------
// Dockerfile and .dockerignore

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  name?: string;
  base: string;
  instructions: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const lines = text.split('\n').filter((line) => !/^\s*#/.test(line));
  const logical: string[] = [];
  let pending = '';
  for (const line of lines) {
    if (/\\\s*$/.test(line)) {
      pending += `${line.replace(/\\\s*$/, '')} `;
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  if (pending) logical.push(pending);

  const stages: Stage[] = [];
  for (const line of logical) {
    const m = /^\s*([A-Za-z]+)\s+(.*?)\s*$/.exec(line);
    if (!m) continue;
    const keyword = m[1]!.toUpperCase();
    const args = m[2]!;
    if (keyword === 'FROM') {
      const from = /^(?:--\S+\s+)*(\S+)(?:\s+as\s+(\S+))?/i.exec(args)!;
      stages.push({ base: from[1]!, name: from[2], instructions: [] });
    } else if (stages.length > 0) {
      stages.at(-1)!.instructions.push({ keyword, args });
    }
  }
  return stages;
}

const stages = parseDockerfile(read('Dockerfile'));
const finalStage = stages.at(-1)!;
const stageNamed = (name: string) => stages.find((stage) => stage.name === name || String(stages.indexOf(stage)) === name);

/** The stage and the earlier stages it is built FROM, oldest first. */
function lineage(stage: Stage): Stage[] {
  const parent = stageNamed(stage.base);
  return parent && parent !== stage ? [...lineage(parent), stage] : [stage];
}

const runs = (stage: Stage) => stage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);

function workdirOf(stage: Stage): string {
  let dir = '/';
  for (const step of lineage(stage).flatMap((s) => s.instructions)) {
    if (step.keyword === 'WORKDIR') dir = path.posix.resolve(dir, step.args);
  }
  return dir;
}

function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const step of lineage(stage).flatMap((s) => s.instructions)) {
    if (step.keyword !== 'ENV') continue;
    if (!/^\S+=/.test(step.args)) {
      const [key, ...value] = step.args.split(/\s+/);
      env[key!] = value.join(' ');
      continue;
    }
    for (const m of step.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|'[^']*'|\S*)/g)) {
      env[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, '$2');
    }
  }
  return env;
}

interface Copy {
  from?: string;
  sources: string[];
  destination: string;
}

function copies(stage: Stage): Copy[] {
  return stage.instructions
    .filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')
    .map(({ args }) => {
      const flags = [...args.matchAll(/--([a-z-]+)(?:=(\S+))?/g)];
      const rest = args.replace(/--[a-z-]+(?:=\S+)?\s*/g, '').trim();
      const paths: string[] = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(/\s+/);
      return {
        from: flags.find((flag) => flag[1] === 'from')?.[2],
        sources: paths.slice(0, -1),
        destination: paths.at(-1)!,
      };
    });
}

const PRODUCTION_ONLY = /--omit[= ]dev\b|--production\b|--only[= ]prod/;
const INSTALLS = /\bnpm\s+(ci|install|i)\b/;

/** Whether the stage's node_modules end up holding production dependencies only. */
function hasProductionDependenciesOnly(stage: Stage): boolean {
  let productionOnly: boolean | undefined;
  for (const run of lineage(stage).flatMap(runs)) {
    for (const command of run.split(/&&|;|\|\|/)) {
      if (/\bnpm\s+prune\b/.test(command) && PRODUCTION_ONLY.test(command)) productionOnly = true;
      else if (INSTALLS.test(command)) productionOnly = PRODUCTION_ONLY.test(command);
    }
  }
  return productionOnly === true;
}

/** Where a copied source sits relative to the repository root: the same path the build stage put it at. */
function repositoryPathOf(copy: Copy, source: string): string | undefined {
  if (!copy.from) return path.posix.normalize(source).replace(/\/$/, '');
  const stage = stageNamed(copy.from);
  if (!stage) return undefined;
  const relative = path.posix.relative(workdirOf(stage), path.posix.resolve(workdirOf(stage), source));
  return relative.startsWith('..') ? undefined : relative;
}

/** A source is a directory when it is one in the repository, or is an extension-less build output (dist, node_modules). */
function isDirectorySource(repoPath: string): boolean {
  const full = path.join(root, repoPath);
  if (existsSync(full)) return statSync(full).isDirectory();
  return !path.posix.basename(repoPath).includes('.');
}

/** Repository paths the final stage places at the same path under its WORKDIR, the app root. */
function placedInFinalImage(): string[] {
  const workdir = workdirOf(finalStage);
  const placed: string[] = [];
  for (const copy of copies(finalStage)) {
    const destination = path.posix.resolve(workdir, copy.destination);
    const intoDirectory = copy.destination.endsWith('/') || copy.destination === '.' || copy.sources.length > 1;
    for (const source of copy.sources) {
      const repoPath = repositoryPathOf(copy, source);
      if (repoPath === undefined) continue;
      const lands =
        isDirectorySource(repoPath) || !intoDirectory ? destination : path.posix.join(destination, path.posix.basename(repoPath));
      if (path.posix.relative(workdir, lands) === repoPath) placed.push(repoPath);
    }
  }
  return placed;
}

/** Local modules a TypeScript file imports, transitively, as repository paths. */
function localImports(file: string, seen = new Set<string>()): string[] {
  const text = read(file);
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) {
    const base = path.posix.join(path.posix.dirname(file), m[1]!);
    const resolved = [base, `${base}.ts`, `${base}/index.ts`, base.replace(/\.js$/, '.ts')].find(
      (candidate) => existsSync(path.join(root, candidate)) && statSync(path.join(root, candidate)).isFile(),
    );
    if (!resolved) throw new Error(`${file} imports ${m[1]}, which does not exist`);
    if (!seen.has(resolved)) {
      seen.add(resolved);
      localImports(resolved, seen);
    }
  }
  return [...seen];
}

/** .dockerignore semantics: patterns from the context root, `**`, `*`, `?`, `!` exceptions, last match wins. */
function dockerignored(repoPath: string): boolean {
  const patterns = read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const toRegExp = (pattern: string) =>
    new RegExp(
      `^${pattern
        .replace(/^\/+|\/+$/g, '')
        .split(/(\*\*\/?|\*|\?)/)
        .map((part) =>
          part.startsWith('**') ? '(?:.*/)?' + (part === '**' ? '.*' : '') : part === '*' ? '[^/]*' : part === '?' ? '[^/]' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
        )
        .join('')}$`,
    );
  const segments = path.posix.normalize(repoPath).split('/');
  const candidates = segments.map((_s, i) => segments.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    const regexp = toRegExp(negated ? pattern.slice(1) : pattern);
    if (candidates.some((candidate) => regexp.test(candidate))) ignored = !negated;
  }
  return ignored;
}

const contextSources = () =>
  stages.flatMap((stage) => copies(stage).filter((copy) => !copy.from).flatMap((copy) => copy.sources));

describe('Dockerfile', () => {
  it('builds in stages, each on a pinned LTS Node image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    // node:<even major>[-variant]: Node's LTS lines are its even majors.
    const notPinnedLts = stages
      .filter((stage) => !stageNamed(stage.base))
      .map((stage) => stage.base)
      .filter((image) => {
        const major = /^node:(\d+)(?:[.-][\w.-]+)?$/.exec(image)?.[1];
        return !major || Number(major) % 2 !== 0;
      });
    expect(notPinnedLts).toEqual([]);
  });

  it('installs exactly the lockfile (npm ci), generates the Prisma client and builds', () => {
    const allRuns = stages.flatMap(runs).join('\n');
    expect(allRuns).toMatch(/\bnpm\s+ci\b/);
    expect(contextSources()).toEqual(expect.arrayContaining(['package.json', 'package-lock.json']));
    // `npm ci` runs the project's postinstall (prisma generate) unless scripts are ignored.
    const generates =
      /\bnpm\s+ci\b(?![^\n&;]*--ignore-scripts)/.test(allRuns) || /scripts\/postinstall\.js|prisma\s+generate/.test(allRuns);
    expect(generates).toBe(true);
    expect(allRuns).toMatch(/\bnpm\s+run\s+build\b/);
  });

  it('final stage: NODE_ENV=production and production dependencies only', () => {
    expect(envOf(finalStage).NODE_ENV).toBe('production');
    for (const run of runs(finalStage)) {
      for (const command of run.split(/&&|;|\|\|/)) {
        if (INSTALLS.test(command)) expect(command).toMatch(PRODUCTION_ONLY);
      }
    }
    const nodeModules = copies(finalStage).find((copy) =>
      copy.sources.some((source) => repositoryPathOf(copy, source) === 'node_modules'),
    );
    const from = nodeModules?.from ? stageNamed(nodeModules.from) : finalStage;
    expect(from && hasProductionDependenciesOnly(from)).toBe(true);
  });

  it('final stage: runs as a non-root user', () => {
    const user = finalStage.instructions.filter((i) => i.keyword === 'USER').at(-1)?.args.split(':')[0];
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
  });

  it('final stage: has what the service and its start-up migrations need, at the app root', () => {
    const placed = placedInFinalImage();
    const covered = (file: string) => placed.some((p) => file === p || file.startsWith(`${p}/`));
    // migrate.ts runs the Prisma CLI two levels above dist/db/migrate.js: the CLI reads the
    // schema and migrations and loads prisma.config.ts, with its imports, as TypeScript.
    const needed = [
      'package.json',
      'node_modules',
      'dist/server.js',
      'prisma/schema.prisma',
      'prisma/migrations',
      'prisma.config.ts',
      ...localImports('prisma.config.ts'),
    ];
    expect(localImports('prisma.config.ts')).toContain('src/db/migration-adapter.ts');
    expect(needed.filter((file) => !covered(file))).toEqual([]);
    const cmd = finalStage.instructions.filter((i) => i.keyword === 'CMD').at(-1)?.args ?? '';
    expect(cmd).toMatch(/dist\/server\.js/);
    // The image runs the service as `npm start` does, node options (the heap cap) included.
    const packageJson = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect((JSON.parse(cmd) as string[]).join(' ')).toBe(packageJson.scripts.start);
    expect(existsSync(path.join(root, 'src/server.ts'))).toBe(true);
  });

  it('final stage: a health check on /health and port 8000 exposed', () => {
    const healthcheck = finalStage.instructions.find((i) => i.keyword === 'HEALTHCHECK')?.args ?? '';
    expect(healthcheck).toMatch(/\/health\b/);
    expect(healthcheck).not.toMatch(/\bcurl\b/); // slim images have none
    const exposed = finalStage.instructions.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args.split(/\s+/));
    expect(exposed.map((port) => port.split('/')[0])).toContain('8000');
  });

  it('copies from the build context only files that exist and that .dockerignore lets through', () => {
    const sources = contextSources();
    expect(sources.length).toBeGreaterThan(0);
    const exists = (source: string) => {
      if (!source.includes('*')) return existsSync(path.join(root, source));
      const name = new RegExp(`^${path.posix.basename(source).replace(/[.]/g, '\\.').replace(/\*/g, '.*')}$`);
      return readdirSync(path.join(root, path.posix.dirname(source))).some((entry) => name.test(entry));
    };
    const normalised = sources.map((source) => path.posix.normalize(source).replace(/\/$/, ''));
    expect(normalised.filter((source) => !exists(source))).toEqual([]);
    const needed = ['prisma/schema.prisma', 'prisma.config.ts', ...localImports('prisma.config.ts'), 'src/server.ts'];
    expect([...normalised, ...needed].filter(dockerignored)).toEqual([]);
  });
});

describe('.dockerignore', () => {
  it('keeps secrets, local installs, builds and data out of the build context', () => {
    const kept = ['.env', 'node_modules', 'dist', '.data', '.git', 'coverage'].filter((entry) => !dockerignored(entry));
    expect(kept).toEqual([]);
    expect(dockerignored('node_modules/.prisma/client/index.js')).toBe(true);
    expect(dockerignored('package-lock.json')).toBe(false);
  });
});
