import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify, stripVTControlCharacters } from 'node:util';
import { wantsReadableLogs } from '../../src/logger';

const ROOT = path.resolve(__dirname, '../..');
const FIXTURE = 'test/server/fixtures/log-then-exit.ts';
const run = promisify(execFile);

describe('where logs go', () => {
  it.each([
    [true, 'development', true],
    [true, 'test', true],
    [true, undefined, true],
    [true, 'production', false],
    [false, 'development', false],
    [false, 'production', false],
  ])('stdout a terminal: %s, NODE_ENV %s → readable lines: %s', (isTty, nodeEnv, readable) => {
    expect(wantsReadableLogs(isTty, nodeEnv)).toBe(readable);
  });
});

/** Runs the fixture with its standard output on a terminal (script(1) gives it one), or on a pipe. */
async function printed(nodeEnv: string, onTerminal: boolean): Promise<string[]> {
  const node = `${process.execPath} --import tsx ${FIXTURE}`;
  const env = { ...process.env, NODE_ENV: nodeEnv };
  const { stdout } = onTerminal
    ? await run('script', ['--quiet', '--return', '--command', node, '/dev/null'], { cwd: ROOT, env })
    : await run(process.execPath, ['--import', 'tsx', FIXTURE], { cwd: ROOT, env });
  return stripVTControlCharacters(stdout).split(/\r?\n/).filter(Boolean);
}

describe('a process of the service', () => {
  it('prints readable lines on a terminal, every one of them before it exits', async () => {
    expect(await printed('development', true)).toEqual([
      expect.stringMatching(/^\[[\d:.]+\] INFO: first event \{"step":1\}$/),
      expect.stringMatching(/^\[[\d:.]+\] INFO: last event before exit$/),
    ]);
  }, 30_000);

  it.each([
    ['on a terminal in production', 'production', true],
    ['on a pipe', 'development', false],
  ])('prints JSON lines %s', async (_where, nodeEnv, onTerminal) => {
    const lines = (await printed(nodeEnv, onTerminal)).map((line) => JSON.parse(line));
    // pino's asynchronous writer may put the line flushed at exit before one still being written.
    expect(lines.map((line) => line.msg).sort()).toEqual(['first event', 'last event before exit']);
  }, 30_000);
});
