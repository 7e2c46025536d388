import { CrmError } from '../../src/mirror/crm-gateway';
import { retryDelayMs } from '../../src/mirror/retry-policy';

const settings = { baseMs: 1_000, maxMs: 60_000 };

describe('retryDelayMs', () => {
  it('doubles the ceiling with each attempt and stays between half and all of it', () => {
    for (const [attempt, ceiling] of [
      [1, 1_000],
      [2, 2_000],
      [3, 4_000],
      [6, 32_000],
    ] as const) {
      expect(retryDelayMs(new Error('socket hang up'), attempt, settings, () => 0)).toBe(ceiling / 2);
      expect(retryDelayMs(new Error('socket hang up'), attempt, settings, () => 1)).toBe(ceiling);
    }
  });

  it('never waits longer than the maximum', () => {
    expect(retryDelayMs(new CrmError('unavailable', '503'), 30, settings, () => 1)).toBe(60_000);
  });

  it('spreads jobs that failed together', () => {
    const delays = new Set(Array.from({ length: 20 }, () => retryDelayMs(new CrmError('unavailable', '503'), 4, settings)));
    expect(delays.size).toBeGreaterThan(10);
  });

  it('waits as long as Pipedrive says after a 429, plus a little jitter', () => {
    const limited = new CrmError('rate_limited', '429', { status: 429, retryAfterMs: 7_000 });
    expect(retryDelayMs(limited, 1, settings, () => 0)).toBe(7_000);
    expect(retryDelayMs(limited, 1, settings, () => 1)).toBe(7_100);
  });

  it.each([
    ['unauthorized', 401],
    ['rejected', 422],
  ] as const)('gives up at once when retrying cannot help (%s)', (kind, status) => {
    expect(retryDelayMs(new CrmError(kind, String(status), { status }), 1, settings)).toBeNull();
  });
});
