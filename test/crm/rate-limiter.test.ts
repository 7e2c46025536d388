import { RateLimiter } from '../../src/crm/rate-limiter';

/** A limiter on a virtual clock: sleeping advances time at once and is recorded. */
function virtualLimiter() {
  const clock = { now: 0, sleeps: [] as number[] };
  const limiter = new RateLimiter({
    now: () => clock.now,
    sleep: async (ms) => {
      clock.sleeps.push(ms);
      clock.now += ms;
    },
  });
  return { clock, limiter };
}

const headers = (limit: number, remaining: number, reset: number) => ({
  'x-ratelimit-limit': String(limit),
  'x-ratelimit-remaining': String(remaining),
  'x-ratelimit-reset': String(reset),
});

async function acquireTimes(limiter: RateLimiter, count: number): Promise<void> {
  for (let i = 0; i < count; i += 1) await limiter.acquire();
}

describe('RateLimiter', () => {
  it('lets requests through while no response has told it the limit', async () => {
    const { clock, limiter } = virtualLimiter();
    await acquireTimes(limiter, 50);
    limiter.update({ 'content-type': 'application/json' });
    await acquireTimes(limiter, 50);
    expect(clock.sleeps).toEqual([]);
  });

  it('spends the reported remaining budget, then waits for the reset and assumes the full limit again', async () => {
    const { clock, limiter } = virtualLimiter();
    await limiter.acquire();
    limiter.update(headers(5, 2, 1));
    await acquireTimes(limiter, 2);
    expect(clock.sleeps).toEqual([]);

    await limiter.acquire();
    expect(clock.sleeps).toEqual([1000]);
    await acquireTimes(limiter, 4);
    expect(clock.sleeps).toEqual([1000]);
    await limiter.acquire();
    expect(clock.sleeps).toEqual([1000, 1000]);
  });

  it('counts requests still in flight when the first response arrives', async () => {
    const { clock, limiter } = virtualLimiter();
    await acquireTimes(limiter, 4);
    // The server had counted only the first of the four when it answered.
    limiter.update(headers(5, 4, 2));
    await limiter.acquire();
    expect(clock.sleeps).toEqual([]);
    await limiter.acquire();
    expect(clock.sleeps).toEqual([2000]);
  });

  it('decrements locally between responses and trusts the lower of its count and the server', async () => {
    const { clock, limiter } = virtualLimiter();
    await limiter.acquire();
    limiter.update(headers(10, 9, 2));
    await acquireTimes(limiter, 3);
    // Another client on the same token used some of the window too.
    limiter.update(headers(10, 1, 2));
    await limiter.acquire();
    expect(clock.sleeps).toEqual([]);
    await limiter.acquire();
    expect(clock.sleeps).toHaveLength(1);
  });

  it('keeps the latest reset any response announced', async () => {
    const { clock, limiter } = virtualLimiter();
    await limiter.acquire();
    limiter.update(headers(2, 1, 1));
    clock.now = 600;
    await limiter.acquire();
    limiter.update(headers(2, 0, 1));
    await limiter.acquire();
    expect(clock.sleeps).toEqual([1000]);
    expect(clock.now).toBe(1600);
  });

  it('adopts the server view again once its window is over', async () => {
    const { clock, limiter } = virtualLimiter();
    await limiter.acquire();
    limiter.update(headers(5, 0, 1));
    clock.now = 1500;
    limiter.update(headers(5, 1, 2));
    await limiter.acquire();
    await limiter.acquire();
    expect(clock.sleeps).toEqual([2000]);
  });

  it('holds every request back during a pause, even with budget left', async () => {
    const { clock, limiter } = virtualLimiter();
    await limiter.acquire();
    limiter.update(headers(100, 99, 2));
    limiter.pause(3000);
    limiter.pause(1000);
    await limiter.acquire();
    expect(clock.sleeps).toEqual([3000]);
    await limiter.acquire();
    expect(clock.sleeps).toEqual([3000]);
  });

  it('ignores malformed rate-limit headers', async () => {
    const { clock, limiter } = virtualLimiter();
    limiter.update({ 'x-ratelimit-limit': 'lots', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1' });
    limiter.update({ 'x-ratelimit-limit': '5', 'x-ratelimit-remaining': '', 'x-ratelimit-reset': '1' });
    await acquireTimes(limiter, 10);
    expect(clock.sleeps).toEqual([]);
  });

  it('lets concurrent waiters through one window at a time on the real clock', async () => {
    const limiter = new RateLimiter();
    await limiter.acquire();
    limiter.update(headers(3, 0, 0.2));
    const started = Date.now();
    const passed: number[] = [];
    await Promise.all(Array.from({ length: 6 }, () => limiter.acquire().then(() => passed.push(Date.now() - started))));
    passed.sort((a, b) => a - b);
    expect(passed[2]).toBeGreaterThanOrEqual(180);
    expect(passed[3]).toBeGreaterThanOrEqual(380);
  });
});
