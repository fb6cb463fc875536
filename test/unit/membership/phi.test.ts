import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArrivalWindow, PHI_DEFAULTS, PhiAccrualDetector, phiOf } from '../../../src/membership/phi.js';

describe('phiOf', () => {
  it('is -log10(1/2) at the mean and matches the normal tail at one and three deviations', () => {
    expect(phiOf(1000, 1000, 100)).toBeCloseTo(Math.log10(2), 6);
    // P(X > mean + sd) = 0.158655, P(X > mean + 3 sd) = 0.0013499
    expect(phiOf(1100, 1000, 100)).toBeCloseTo(-Math.log10(0.158655), 2);
    expect(phiOf(1300, 1000, 100)).toBeCloseTo(-Math.log10(0.0013499), 1);
  });

  it('is finite, non-negative and increasing in the elapsed time, even far in the tail', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1e7, noNaN: true }),
        fc.double({ min: 0, max: 1e7, noNaN: true }),
        fc.double({ min: 1, max: 1e4, noNaN: true }),
        (x, y, sd) => {
          const [lo, hi] = x <= y ? [x, y] : [y, x];
          const a = phiOf(lo, 1000, sd);
          const b = phiOf(hi, 1000, sd);
          expect(Number.isFinite(a) && Number.isFinite(b)).toBe(true);
          expect(a).toBeGreaterThanOrEqual(0);
          expect(b).toBeGreaterThanOrEqual(a);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('ArrivalWindow', () => {
  it('keeps the mean and deviation of the last `size` intervals', () => {
    const w = new ArrivalWindow(4);
    for (const v of [100, 100, 100, 100, 10, 20, 30, 40]) w.add(v);
    expect(w.length).toBe(4);
    expect(w.mean()).toBeCloseTo(25, 9);
    expect(w.stdDev()).toBeCloseTo(Math.sqrt(125), 9);
  });

  it('stays accurate over a long run', () => {
    const w = new ArrivalWindow(100);
    for (let i = 0; i < 100_000; i++) w.add(1000 + ((i * 7919) % 13) * 0.1);
    const recent = Array.from({ length: 100 }, (_, k) => 1000 + (((100_000 - 100 + k) * 7919) % 13) * 0.1);
    expect(w.mean()).toBeCloseTo(recent.reduce((s, v) => s + v, 0) / 100, 9);
  });
});

/** Heartbeats every `period` ms from t=0, `count` of them; returns the time of the last. */
function feed(d: PhiAccrualDetector, id: string, period: number, count: number, start = 0): number {
  let t = start;
  for (let i = 0; i < count; i++) {
    d.heartbeat(id, t);
    t += period;
  }
  return t - period;
}

describe('PhiAccrualDetector', () => {
  // With defaults (mean 1000 after regular beats, pause 1000, floor 500): threshold 8 is
  // crossed at about 1000 + 1000 + 5.2 * 500 = 4.6 s of silence.
  it('judges a regularly beating member down after ~4.6 s of silence, not before', () => {
    const d = new PhiAccrualDetector();
    const last = feed(d, 'x', 1000, 50);
    expect(d.isAvailable('x', last + 1000)).toBe(true);
    expect(d.isAvailable('x', last + 4200)).toBe(true);
    expect(d.isAvailable('x', last + 5000)).toBe(false);
    expect(d.phi('x', last + 1000)).toBeLessThan(1);
  });

  it('bootstraps from the assumed interval before samples exist', () => {
    const d = new PhiAccrualDetector({ bootstrapIntervalMs: 2000, minStdDevMs: 1000, acceptablePauseMs: 2000 });
    d.heartbeat('x', 10_000);
    expect(d.stats('x')).toEqual({ mean: 2000, stdDev: 1000, samples: 2 });
    expect(d.isAvailable('x', 10_000 + 8000)).toBe(true);
    expect(d.isAvailable('x', 10_000 + 10_000)).toBe(false);
  });

  it('adapts to irregular arrivals: more variance, more patience', () => {
    const regular = new PhiAccrualDetector();
    const irregular = new PhiAccrualDetector();
    const lastR = feed(regular, 'x', 1000, 100);
    let lastI = 0;
    for (let i = 0; i < 100; i++) {
      irregular.heartbeat('x', lastI);
      if (i < 99) lastI += i % 2 === 0 ? 200 : 2800; // mean 1500, deviation 1300
    }
    expect(regular.isAvailable('x', lastR + 6000)).toBe(false);
    expect(irregular.isAvailable('x', lastI + 6000)).toBe(true);
  });

  it('is up again at the first heartbeat after an outage, and does not learn the outage as an interval', () => {
    const d = new PhiAccrualDetector();
    const last = feed(d, 'x', 1000, 20);
    const before = d.stats('x');
    expect(d.isAvailable('x', last + 60_000)).toBe(false);
    d.heartbeat('x', last + 60_000);
    expect(d.isAvailable('x', last + 60_000)).toBe(true);
    expect(d.stats('x')).toEqual(before);
    // And the verdict timing is as before the outage.
    expect(d.isAvailable('x', last + 60_000 + 4200)).toBe(true);
    expect(d.isAvailable('x', last + 60_000 + 5000)).toBe(false);
  });

  it('lets a suspicion force a member down until its next heartbeat', () => {
    const d = new PhiAccrualDetector();
    const last = feed(d, 'x', 1000, 10);
    d.suspect('x');
    expect(d.isAvailable('x', last + 10)).toBe(false);
    d.unsuspect('x');
    expect(d.isAvailable('x', last + 10)).toBe(true);
    d.suspect('x');
    d.heartbeat('x', last + 500);
    expect(d.isAvailable('x', last + 500)).toBe(true);
  });

  it('does not judge unknown or forgotten members, and ignores out-of-order input', () => {
    const d = new PhiAccrualDetector();
    expect(d.isAvailable('nobody', 1e9)).toBe(true);
    expect(d.phi('nobody', 1e9)).toBe(0);
    feed(d, 'x', 1000, 5);
    d.heartbeat('x', 100);
    expect(d.lastHeartbeat('x')).toBe(4000);
    d.forget('x');
    expect(d.lastHeartbeat('x')).toBeUndefined();
    expect([...d.ids()]).toEqual([]);
  });

  it('validates its options', () => {
    expect(() => new PhiAccrualDetector({ threshold: 0 })).toThrow(RangeError);
    expect(() => new PhiAccrualDetector({ minStdDevMs: 0 })).toThrow(RangeError);
    expect(() => new PhiAccrualDetector({ windowSize: 1 })).toThrow(RangeError);
    expect(() => new PhiAccrualDetector({ acceptablePauseMs: -1 })).toThrow(RangeError);
    expect(PHI_DEFAULTS.threshold).toBe(8);
  });
});
