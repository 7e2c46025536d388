/**
 * Progress of a long-running operator command (the Pipedrive import, the push of unmirrored
 * contacts, the CSV import), on stderr: a bar redrawn in place on a terminal, plain lines
 * otherwise (a log file or a pipe gets no control characters).
 */

/** What a command has done so far, as the ETA function sees it. */
export interface ProgressState {
  done: number;
  total: number | null;
  counts: Readonly<Record<string, number>>;
  elapsedMs: number;
  /** Units per second over about the last minute of work (see RATE_SAMPLES); null until two updates. */
  ratePerSecond: number | null;
}

export interface ProgressOptions {
  label: string;
  total: number | null;
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Seconds left, or null when unknown; by default the units left at the current rate. */
  eta?: (state: ProgressState) => number | null;
  /** Plain-line mode: at most one line per this many milliseconds. */
  intervalMs?: number;
  now?: () => number;
}

/**
 * The rate covers the last RATE_SAMPLES updates, at least SAMPLE_SPACING_MS apart (about the last
 * minute of steady work), and leaves out gaps longer than PAUSE_MS: it is the pace while working.
 * A pause (waiting hours for the token budget to come back) neither drags it down nor stretches the
 * ETA after it, and a resumed run's earlier work does not count.
 */
const RATE_SAMPLES = 60;
const SAMPLE_SPACING_MS = 1_000;
const PAUSE_MS = 5 * 60_000;
/** On a terminal: the bar is redrawn on a timer, so an update writes nothing and a wait for the budget still shows a current ETA. */
const REDRAW_MS = 200;
const BAR_WIDTH = 20;
/** Erases the line the cursor is on, for the redraw in place. */
const CLEAR_LINE = '\r\x1b[K';

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const rate = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3 });

interface Sample {
  at: number;
  done: number;
}

export class Progress {
  private done = 0;
  private total: number | null;
  private counts: Record<string, number> = {};
  private readonly samples: Sample[] = [];
  private readonly now: () => number;
  private readonly onTerminal: boolean;
  private readonly intervalMs: number;
  private readonly startedAt: number;
  private lastLineAt: number;
  private redrawTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  /** Starts showing at once (on a terminal); finish() or interrupt() stops it. */
  constructor(private readonly options: ProgressOptions) {
    this.total = options.total;
    this.now = options.now ?? Date.now;
    this.onTerminal = options.stream.isTTY === true;
    this.intervalMs = options.intervalMs ?? 5_000;
    this.startedAt = this.now();
    this.lastLineAt = this.startedAt;
    if (this.onTerminal) {
      this.redraw();
      // Unref'd so a command that forgets finish() still exits; finish() clears it all the same.
      this.redrawTimer = setInterval(() => this.redraw(), REDRAW_MS).unref();
    }
  }

  /** `done`: units done in all; `counts`: named totals (created, rejected...), merged by name. */
  update(done: number, counts: Record<string, number> = {}): void {
    if (this.stopped) return;
    const at = this.now();
    this.done = done;
    this.counts = { ...this.counts, ...counts };
    this.recordSample(at, done);
    if (!this.onTerminal && at - this.lastLineAt >= this.intervalMs) {
      this.lastLineAt = at;
      this.options.stream.write(`${this.options.label}: ${this.statusFields().join(', ')}\n`);
    }
  }

  setTotal(total: number | null): void {
    this.total = total;
  }

  /** The final line, with how long the run took; later calls do nothing. */
  finish(summary?: string): void {
    if (!this.stop()) return;
    const took = `in ${formatDuration((this.now() - this.startedAt) / 1000)}`;
    const line = [this.position(), ...this.countFields(), took].join(', ');
    this.options.stream.write(`${this.options.label}: ${line}.${summary ? ` ${summary}` : ''}\n`);
  }

  /** For Ctrl-C: where the run stopped, and that running the command again picks it up. */
  interrupt(): void {
    if (!this.stop()) return;
    this.options.stream.write(
      `${this.options.label}: ${this.statusFields().join(', ')}\nInterrupted: run the same command again to resume.\n`,
    );
  }

  state(): ProgressState {
    return {
      done: this.done,
      total: this.total,
      counts: { ...this.counts },
      elapsedMs: this.now() - this.startedAt,
      ratePerSecond: windowRate(this.samples),
    };
  }

  /** Ends the display (true the first time): no timer left, and the terminal line erased for what follows. */
  private stop(): boolean {
    if (this.stopped) return false;
    this.stopped = true;
    clearInterval(this.redrawTimer);
    if (this.onTerminal) this.options.stream.write(CLEAR_LINE);
    return true;
  }

  private recordSample(at: number, done: number): void {
    const [previous, last] = this.samples.slice(-2);
    if (previous && last && at - previous.at < SAMPLE_SPACING_MS) {
      last.at = at;
      last.done = done;
    } else {
      this.samples.push({ at, done });
    }
    if (this.samples.length > RATE_SAMPLES) this.samples.shift();
  }

  private redraw(): void {
    const line = `${this.options.label} ${this.bar()}${this.statusFields().join(', ')}`;
    // One column short of the width: a line that wraps could no longer be redrawn in place.
    const width = (this.options.stream.columns ?? 80) - 1;
    this.options.stream.write(`${CLEAR_LINE}${line.slice(0, width)}`);
  }

  private bar(): string {
    if (this.total === null) return '';
    const filled = Math.round(fractionDone(this.done, this.total) * BAR_WIDTH);
    return `[${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}] `;
  }

  private statusFields(): string[] {
    const state = this.state();
    const seconds = this.options.eta ? this.options.eta(state) : secondsLeft(state);
    return [
      this.position(),
      ...this.countFields(),
      ...(state.ratePerSecond === null ? [] : [`${rate.format(state.ratePerSecond)}/s`]),
      `ETA ${seconds === null ? 'unknown' : formatDuration(seconds)}`,
    ];
  }

  private position(): string {
    if (this.total === null) return integer.format(this.done);
    const percent = Math.floor(fractionDone(this.done, this.total) * 100);
    return `${integer.format(this.done)}/${integer.format(this.total)} (${percent}%)`;
  }

  private countFields(): string[] {
    return Object.entries(this.counts).map(([name, count]) => `${name} ${integer.format(count)}`);
  }
}

/** Between 0 and 1; an empty job is complete. */
function fractionDone(done: number, total: number): number {
  return total > 0 ? Math.min(Math.max(done / total, 0), 1) : 1;
}

function windowRate(samples: readonly Sample[]): number | null {
  let units = 0;
  let workingMs = 0;
  samples.forEach((sample, index) => {
    const previous = samples[index - 1];
    if (!previous || sample.at - previous.at > PAUSE_MS) return;
    units += sample.done - previous.done;
    workingMs += sample.at - previous.at;
  });
  return workingMs > 0 ? units / (workingMs / 1000) : null;
}

/** The default ETA: the units left at the current rate. */
function secondsLeft({ done, total, ratePerSecond }: ProgressState): number | null {
  if (total === null) return null;
  const remaining = Math.max(total - done, 0);
  if (remaining === 0) return 0;
  return ratePerSecond ? remaining / ratePerSecond : null;
}

const pad = (value: number): string => String(value).padStart(2, '0');

/** `45s`, `3m 20s`, `2h 05m`, `1d 3h`: the two largest units, which is all an estimate is worth. */
export function formatDuration(seconds: number): string {
  const whole = Math.max(Math.round(seconds), 0);
  if (whole < 60) return `${whole}s`;
  if (whole < 3_600) return `${Math.floor(whole / 60)}m ${pad(whole % 60)}s`;
  if (whole < 86_400) return `${Math.floor(whole / 3_600)}h ${pad(Math.floor((whole % 3_600) / 60))}m`;
  return `${Math.floor(whole / 86_400)}d ${Math.floor((whole % 86_400) / 3_600)}h`;
}

export interface BudgetEtaInput {
  /** Units of work left. */
  remaining: number;
  /** Pipedrive tokens one unit costs. */
  tokensPerUnit: number;
  ratePerSecond: number | null;
  /** Tokens left in the current budget day, company-wide; null until Pipedrive has reported it. */
  tokensLeft: number | null;
  /** Tokens kept for live work: bulk work stops when the day's budget falls to this. */
  reserve: number;
  /** Tokens each budget day brings; null when unknown. */
  dailyLimit: number | null;
  nextResetAt: Date;
  now: Date;
}

const DAY_SECONDS = 86_400;

/**
 * Seconds until the work is done, given Pipedrive's daily token budget, which every app and user
 * of the company shares. The model: the work runs at `ratePerSecond` while there are tokens above
 * the reserve; when the day's run out, it waits for the budget to come back (nextResetAt, then
 * every 24 hours), and each new day allows `dailyLimit − reserve` tokens. Unspent tokens do not
 * carry over, so a day whose reset comes before its tokens run out simply works through it.
 *
 * An estimate: it assumes the rate holds and that nothing else spends tokens above the reserve.
 * Null when it cannot tell: the rate is unknown, or the work does not fit today and the daily
 * limit is unknown, or a day's budget above the reserve does not pay for one unit (never done).
 */
export function budgetEta(input: BudgetEtaInput): number | null {
  const { remaining, tokensPerUnit, ratePerSecond, tokensLeft, reserve } = input;
  if (remaining <= 0) return 0;
  if (!ratePerSecond || ratePerSecond <= 0) return null;
  // Unknown until the first Pipedrive response reports it: taken as fitting, which the next
  // update corrects once the command has spent a few tokens.
  if (tokensLeft === null) return remaining / ratePerSecond;
  const unitsToday = Math.floor(Math.max(tokensLeft - reserve, 0) / tokensPerUnit);
  if (remaining <= unitsToday) return remaining / ratePerSecond;

  const untilReset = Math.max((input.nextResetAt.getTime() - input.now.getTime()) / 1000, 0);
  const doneBeforeReset = Math.min(unitsToday, ratePerSecond * untilReset);
  const afterReset = secondsFromReset(remaining - doneBeforeReset, ratePerSecond, input);
  return afterReset === null ? null : untilReset + afterReset;
}

/** From the start of a budget day: whole days while the budget binds, then the last day's work. */
function secondsFromReset(units: number, ratePerSecond: number, { tokensPerUnit, dailyLimit, reserve }: BudgetEtaInput): number | null {
  if (dailyLimit === null) return null;
  const unitsPerDay = Math.floor(Math.max(dailyLimit - reserve, 0) / tokensPerUnit);
  if (unitsPerDay === 0) return null;
  // A day's tokens last longer than the day: the budget never stops the work.
  if (unitsPerDay >= ratePerSecond * DAY_SECONDS) return units / ratePerSecond;
  const fullDays = Math.ceil(units / unitsPerDay) - 1;
  return fullDays * DAY_SECONDS + (units - fullDays * unitsPerDay) / ratePerSecond;
}
