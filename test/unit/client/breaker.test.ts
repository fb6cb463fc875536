import { describe, expect, it } from 'vitest';
import { backoffDelay, CircuitBreaker } from '../../../src/client/index.js';
import { ManualTime, seededRandom } from '../../../src/runtime/index.js';

function make(opts = { failureThreshold: 3, openMs: 1000, maxOpenMs: 8000 }) {
  const time = new ManualTime();
  const breaker = new CircuitBreaker({ clock: time, random: seededRandom(7) }, opts);
  const fail = (n: number) => {
    for (let i = 0; i < n; i++) breaker.tryAcquire()?.failure();
  };
  return { time, breaker, fail };
}

describe('CircuitBreaker', () => {
  it('stays closed below the threshold and resets on success', () => {
    const { breaker, fail } = make();
    fail(2);
    breaker.tryAcquire()?.success();
    fail(2);
    expect(breaker.state).toBe('closed');
    expect(breaker.tryAcquire()).toBeDefined();
  });

  it('opens after consecutive failures and rejects while open', () => {
    const { breaker, fail } = make();
    fail(3);
    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBeUndefined();
  });

  it('lets exactly one probe through after the jittered open period, and closes on its success', async () => {
    const { time, breaker, fail } = make();
    fail(3);
    const retryAt = breaker.retryAt!;
    // Jitter keeps the period within 50-100% of openMs.
    expect(retryAt - time.monotonic()).toBeGreaterThanOrEqual(500);
    expect(retryAt - time.monotonic()).toBeLessThanOrEqual(1000);
    await time.advance(retryAt - time.monotonic() - 1);
    expect(breaker.tryAcquire()).toBeUndefined();
    await time.advance(1);
    expect(breaker.state).toBe('half-open');
    const probe = breaker.tryAcquire();
    expect(probe).toBeDefined();
    expect(breaker.tryAcquire()).toBeUndefined();
    probe!.success();
    expect(breaker.state).toBe('closed');
    expect(breaker.tryAcquire()).toBeDefined();
  });

  it('reopens for longer when the probe fails, capped at maxOpenMs', async () => {
    const { time, breaker, fail } = make();
    fail(3);
    const periods: number[] = [];
    for (let trip = 0; trip < 6; trip++) {
      const wait = breaker.retryAt! - time.monotonic();
      periods.push(wait);
      await time.advance(wait);
      breaker.tryAcquire()!.failure();
      expect(breaker.state).toBe('open');
    }
    // Nominal periods 1000, 2000, 4000, 8000, 8000, 8000, each jittered to 50-100%.
    const nominal = [1000, 2000, 4000, 8000, 8000, 8000];
    periods.forEach((p, i) => {
      expect(p).toBeGreaterThanOrEqual(nominal[i]! / 2);
      expect(p).toBeLessThanOrEqual(nominal[i]!);
    });
  });

  it('frees the probe slot when the probe is released without an outcome', async () => {
    const { time, breaker, fail } = make();
    fail(3);
    await time.advance(1000);
    breaker.tryAcquire()!.release();
    expect(breaker.tryAcquire()).toBeDefined();
  });

  it('ignores late outcomes of requests admitted before the last state change', async () => {
    const { time, breaker, fail } = make();
    const slow = breaker.tryAcquire()!;
    fail(3);
    await time.advance(1000);
    const probe = breaker.tryAcquire()!;
    probe.success();
    slow.failure();
    slow.failure();
    expect(breaker.state).toBe('closed');
  });
});

describe('backoffDelay', () => {
  it('draws from [0, min(max, base * 2^(retry-1)))', () => {
    const random = seededRandom(1);
    for (let retry = 1; retry <= 10; retry++) {
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(retry, random, { baseMs: 10, maxMs: 500 });
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(Math.min(500, 10 * 2 ** (retry - 1)));
      }
    }
  });

  it('spreads its draws across the whole range (full jitter)', () => {
    const random = seededRandom(2);
    const draws = Array.from({ length: 200 }, () => backoffDelay(4, random, { baseMs: 100, maxMs: 10_000 }));
    expect(Math.min(...draws)).toBeLessThan(80);
    expect(Math.max(...draws)).toBeGreaterThan(720);
  });
});
