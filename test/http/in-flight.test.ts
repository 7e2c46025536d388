import { setTimeout as sleep } from 'node:timers/promises';
import { InFlightRequests } from '../../src/http/in-flight';

const after = <T>(ms: number, value: T) => sleep(ms).then(() => value);

describe('InFlightRequests', () => {
  it('is settled at once when nothing runs', async () => {
    const inFlight = new InFlightRequests();
    expect(await inFlight.settled(0)).toBe(true);
  });

  it('passes results and failures through, and forgets work once it is done', async () => {
    const inFlight = new InFlightRequests();
    await expect(inFlight.track(after(5, 'done'))).resolves.toBe('done');
    await expect(inFlight.track(Promise.reject(new Error('failed')))).rejects.toThrow('failed');
    expect(inFlight.size).toBe(0);
  });

  it('waits for the work in flight, including work that starts while it waits', async () => {
    const inFlight = new InFlightRequests();
    const finished: string[] = [];
    void inFlight.track(after(30, 'first').then((value) => finished.push(value)));
    void inFlight.track(
      after(20, undefined).then(() => inFlight.track(after(40, 'started later').then((value) => finished.push(value)))),
    );
    void inFlight.track(Promise.reject(new Error('a failed request'))).catch(() => undefined);
    expect(await inFlight.settled(1_000)).toBe(true);
    expect(finished).toEqual(['first', 'started later']);
  });

  it('gives up after the time allowed, saying so', async () => {
    const inFlight = new InFlightRequests();
    void inFlight.track(after(500, undefined));
    const started = Date.now();
    expect(await inFlight.settled(50)).toBe(false);
    expect(Date.now() - started).toBeLessThan(400);
    expect(inFlight.size).toBe(1);
  });
});
