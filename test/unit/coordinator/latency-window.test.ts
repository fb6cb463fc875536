import { describe, expect, it } from 'vitest';
import { LatencyWindow } from '../../../src/coordinator/latency-window.js';

describe('LatencyWindow', () => {
  it('answers the initial value until `every` samples arrived, then the p99 of the window', () => {
    const w = new LatencyWindow({ size: 100, every: 100, floorMs: 0, initialMs: 50 });
    for (let i = 1; i <= 99; i++) w.add(i);
    expect(w.p99Ms).toBe(50);
    w.add(100);
    expect(w.p99Ms).toBe(99); // the 99th of 1..100
    expect(w.speculateAfterMs()).toBe(99);
  });

  it('slides: old samples leave the window', () => {
    const w = new LatencyWindow({ size: 10, every: 10, floorMs: 0 });
    for (let i = 0; i < 10; i++) w.add(1000);
    expect(w.p99Ms).toBe(1000);
    for (let i = 0; i < 10; i++) w.add(2);
    expect(w.p99Ms).toBe(2);
  });

  it('never speculates sooner than the floor, and ignores nonsense samples', () => {
    const w = new LatencyWindow({ size: 4, every: 4, floorMs: 5 });
    for (const v of [Number.NaN, -1, Number.POSITIVE_INFINITY]) w.add(v);
    expect(w.p99Ms).toBe(50); // still the initial value: nothing was recorded
    for (let i = 0; i < 4; i++) w.add(0.5);
    expect(w.p99Ms).toBe(0.5);
    expect(w.speculateAfterMs()).toBe(5);
  });
});
