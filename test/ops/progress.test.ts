import { Writable } from 'node:stream';
import { budgetEta, formatDuration, Progress, type BudgetEtaInput, type ProgressState } from '../../src/ops/progress';

/** A stream that keeps what is written; `columns` makes it a terminal of that width. */
function captureStream(columns?: number) {
  let output = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      output += chunk.toString();
      done();
    },
  });
  return { stream: columns === undefined ? stream : Object.assign(stream, { isTTY: true, columns }), output: () => output };
}

function controlCharacters(text: string): string[] {
  return [...text].filter((character) => character < ' ' && character !== '\n');
}

describe('Progress on a pipe or a log file (plain lines)', () => {
  let clock: number;
  const now = () => clock;
  beforeEach(() => (clock = 0));

  it('writes a line at most every interval, with counts, rate and ETA, then the final line', () => {
    const { stream, output } = captureStream();
    const progress = new Progress({ label: 'Importing persons', total: 1_000, stream, intervalMs: 5_000, now });
    for (let second = 1; second <= 12; second++) {
      clock = second * 1_000;
      progress.update(second * 10, { created: second * 8, rejected: second * 2 });
    }
    clock = 100_000;
    progress.update(1_000, { created: 980, rejected: 20 });
    progress.finish('Every person is in the mirror.');
    progress.finish('twice');

    expect(output().split('\n')).toEqual([
      'Importing persons: 50/1,000 (5%), created 40, rejected 10, 10/s, ETA 1m 35s',
      'Importing persons: 100/1,000 (10%), created 80, rejected 20, 10/s, ETA 1m 30s',
      'Importing persons: 1,000/1,000 (100%), created 980, rejected 20, 10/s, ETA 0s',
      'Importing persons: 1,000/1,000 (100%), created 980, rejected 20, in 1m 40s. Every person is in the mirror.',
      '',
    ]);
    expect(controlCharacters(output())).toEqual([]);
  });

  it('merges counts by name, and shows only what is done when the total is unknown', () => {
    const { stream, output } = captureStream();
    const progress = new Progress({ label: 'Reading contacts.csv', total: null, stream, intervalMs: 1_000, now });
    clock = 1_000;
    progress.update(1_500, { imported: 1_400, rejected: 100 });
    clock = 2_000;
    progress.update(3_000, { imported: 2_900 });
    progress.setTotal(6_000);
    clock = 3_000;
    progress.update(4_500);
    expect(output().split('\n')).toEqual([
      'Reading contacts.csv: 1,500, imported 1,400, rejected 100, ETA unknown',
      'Reading contacts.csv: 3,000, imported 2,900, rejected 100, 1,500/s, ETA unknown',
      'Reading contacts.csv: 4,500/6,000 (75%), imported 2,900, rejected 100, 1,500/s, ETA 1s',
      '',
    ]);
  });

  it('takes the ETA from the eta function when there is one, which may not know', () => {
    const { stream, output } = captureStream();
    const seen: ProgressState[] = [];
    const progress = new Progress({
      label: 'Pushing contacts',
      total: 500,
      stream,
      intervalMs: 1_000,
      now,
      eta: (state) => {
        seen.push(state);
        return state.done < 200 ? 7_500 : null;
      },
    });
    clock = 1_000;
    progress.update(100, { pushed: 100 });
    clock = 2_000;
    progress.update(200, { pushed: 200 });
    expect(output()).toBe(
      'Pushing contacts: 100/500 (20%), pushed 100, ETA 2h 05m\n' + 'Pushing contacts: 200/500 (40%), pushed 200, 100/s, ETA unknown\n',
    );
    expect(seen.at(-1)).toEqual({ done: 200, total: 500, counts: { pushed: 200 }, elapsedMs: 2_000, ratePerSecond: 100 });
  });

  it('keeps the working pace across a long pause (waiting for the token budget)', () => {
    const { stream, output } = captureStream();
    const progress = new Progress({ label: 'Pushing contacts', total: 10_000, stream, intervalMs: 60_000, now });
    for (let second = 1; second <= 60; second++) {
      clock = second * 1_000;
      progress.update(second * 5);
    }
    clock += 6 * 3_600_000;
    progress.update(305);
    expect(output().split('\n').at(-2)).toBe('Pushing contacts: 305/10,000 (3%), 5/s, ETA 32m 19s');
  });

  it('on interrupt, shows where it stopped and that the command resumes, then stays quiet', () => {
    const { stream, output } = captureStream();
    const progress = new Progress({ label: 'Importing persons', total: 1_000, stream, now });
    clock = 1_000;
    progress.update(300, { created: 300 });
    clock = 2_000;
    progress.update(400, { created: 400 });
    progress.interrupt();
    progress.update(500);
    progress.finish();
    expect(output()).toBe(
      'Importing persons: 400/1,000 (40%), created 400, 100/s, ETA 6s\n' + 'Interrupted: run the same command again to resume.\n',
    );
  });
});

describe('Progress on a terminal', () => {
  let clock: number;
  const now = () => clock;
  beforeEach(() => {
    clock = 0;
    jest.useFakeTimers();
  });
  afterEach(() => jest.useRealTimers());

  it('redraws one line in place, cut to the width, and leaves no timer after finish', () => {
    const { stream, output } = captureStream(100);
    const progress = new Progress({ label: 'Importing persons', total: 200, stream, now });
    expect(output()).toBe('\r\x1b[KImporting persons [░░░░░░░░░░░░░░░░░░░░] 0/200 (0%), ETA unknown');

    clock = 1_000;
    progress.update(50, { created: 50 });
    clock = 2_000;
    progress.update(100, { created: 90, linked: 10 });
    jest.advanceTimersByTime(200);
    const redraws = output().split('\r\x1b[K');
    expect(redraws.at(-1)).toBe('Importing persons [██████████░░░░░░░░░░] 100/200 (50%), created 90, linked 10, 50/s, ETA 2s');
    expect(output()).not.toContain('\n');

    clock = 4_000;
    progress.update(200, { created: 180, linked: 20 });
    progress.finish();
    expect(output().endsWith('\r\x1b[KImporting persons: 200/200 (100%), created 180, linked 20, in 4s.\n')).toBe(true);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('never writes a line wider than the terminal, which would break the redraw', () => {
    const { stream, output } = captureStream(40);
    const progress = new Progress({ label: 'Importing persons', total: 200, stream, now });
    progress.interrupt();
    const [redraw = '', final = ''] = output().split('\r\x1b[K').filter(Boolean);
    expect(redraw).toBe('Importing persons [░░░░░░░░░░░░░░░░░░░░');
    expect(final).toMatch(/^Importing persons: 0\/200 \(0%\), ETA unknown\nInterrupted: /);
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('formatDuration', () => {
  it.each([
    [0.4, '0s'],
    [45, '45s'],
    [200, '3m 20s'],
    [3_605, '1h 00m'],
    [7_500, '2h 05m'],
    [97_200, '1d 3h'],
  ])('%d s: %s', (seconds, text) => expect(formatDuration(seconds)).toBe(text));
});

describe('budgetEta', () => {
  // Noon UTC, the budget coming back at midnight: 12 h left in the day. 10 tokens a unit, 5 units a
  // second; each new day brings 100,000 − 10,000 tokens above the reserve, which is 9,000 units.
  const base: BudgetEtaInput = {
    remaining: 1_000,
    tokensPerUnit: 10,
    ratePerSecond: 5,
    tokensLeft: 50_000,
    reserve: 10_000,
    dailyLimit: 100_000,
    nextResetAt: new Date('2026-03-11T00:00:00Z'),
    now: new Date('2026-03-10T12:00:00Z'),
  };
  const HALF_DAY = 43_200;
  const DAY = 86_400;

  it('fits in the tokens above the reserve: the units left at the rate', () => {
    expect(budgetEta(base)).toBe(200);
  });

  it('needs the next day: today’s 1,000 units, the wait until the reset, then the rest', () => {
    expect(budgetEta({ ...base, remaining: 3_000, tokensLeft: 20_000 })).toBe(HALF_DAY + 2_000 / 5);
  });

  it('spans three budget days: today, a whole day of 9,000 units, and part of the third', () => {
    expect(budgetEta({ ...base, remaining: 15_000, tokensLeft: 20_000 })).toBe(HALF_DAY + DAY + 5_000 / 5);
  });

  it('waits for the reset at once when the day is already down to the reserve', () => {
    expect(budgetEta({ ...base, tokensLeft: 9_000 })).toBe(HALF_DAY + 1_000 / 5);
  });

  it('works through the reset when the tokens outlast the day, and the days after when the rate is what limits', () => {
    // 0.1 unit a second: 4,320 of today's 10,000 units before midnight, then 8,640 of 9,000 a day.
    expect(budgetEta({ ...base, remaining: 30_000, ratePerSecond: 0.1, tokensLeft: 110_000 })).toBeCloseTo(300_000);
  });

  it('is unknown when the rate is', () => {
    expect(budgetEta({ ...base, ratePerSecond: null })).toBeNull();
    expect(budgetEta({ ...base, ratePerSecond: 0 })).toBeNull();
  });

  it('treats unknown tokens left as fitting: Pipedrive reports them with the first response', () => {
    expect(budgetEta({ ...base, remaining: 1_000_000, tokensLeft: null })).toBe(200_000);
  });

  it('is unknown when the work needs more days and the daily limit is unknown, or never ends', () => {
    expect(budgetEta({ ...base, remaining: 3_000, tokensLeft: 20_000, dailyLimit: null })).toBeNull();
    expect(budgetEta({ ...base, remaining: 3_000, tokensLeft: 20_000, dailyLimit: 10_000 })).toBeNull();
  });

  it('is zero when nothing is left', () => {
    expect(budgetEta({ ...base, remaining: 0, ratePerSecond: null })).toBe(0);
  });
});
