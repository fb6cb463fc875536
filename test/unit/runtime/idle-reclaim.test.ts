import { describe, expect, it } from 'vitest';
import { IdleReclaimer } from '../../../src/runtime/idle-reclaim.js';
import { ManualTime } from '../../../src/runtime/index.js';

const MiB = 1024 * 1024;
const CHECK = 2000;

/** A fake process: event-loop busy time and heap size set by the test, gc() drops the heap to `live`. */
function fakeProcess() {
  const time = new ManualTime(0);
  const p = { busy: 0, heap: 30 * MiB, live: 30 * MiB, gcBusyMs: 0, collected: [] as Array<[number, number]> };
  const reclaimer = new IdleReclaimer(
    {
      timers: time,
      monotonicMs: () => time.monotonic(),
      busyMs: () => p.busy,
      heapUsed: () => p.heap,
      collect: () => {
        p.heap = p.live;
        p.busy += p.gcBusyMs;
      },
      onCollected: (before, after) => p.collected.push([before, after]),
    },
    { checkMs: CHECK, quietShare: 0.1, minGarbageBytes: 16 * MiB },
  );
  /** One check period in which the event loop was busy `share` of the time and the heap reached `heap`. */
  const period = async (share: number, heap: number) => {
    p.busy += share * CHECK;
    p.heap = heap;
    await time.advance(CHECK);
  };
  return { time, p, reclaimer, period };
}

describe('IdleReclaimer', () => {
  it('collects once when a busy node goes quiet holding a burst of garbage, and not again', async () => {
    const { p, reclaimer, period } = fakeProcess();
    reclaimer.start();
    await period(0.9, 60 * MiB);
    await period(0.9, 90 * MiB);
    expect(p.collected).toEqual([]);
    await period(0.02, 80 * MiB);
    expect(p.collected).toEqual([[80 * MiB, 30 * MiB]]);
    expect(reclaimer.count).toBe(1);
    // Quiet on: the heap creeps (gossip, anti-entropy) but not by the threshold.
    for (let i = 0; i < 5; i++) await period(0.02, 30 * MiB + (i + 1) * 2 * MiB);
    expect(reclaimer.count).toBe(1);
    reclaimer.stop();
  });

  it('counts garbage made before start() from the heap size it is given', async () => {
    const { p, reclaimer, period } = fakeProcess();
    // A start that left 40 MiB of garbage: on its own the low-water mark would include it.
    p.heap = 70 * MiB;
    reclaimer.start(30 * MiB);
    await period(0.9, 72 * MiB);
    expect(p.collected).toEqual([]); // never while busy
    await period(0.02, 72 * MiB);
    expect(p.collected).toEqual([[72 * MiB, 30 * MiB]]);
    reclaimer.stop();
  });

  it('a start that left little garbage does not trigger a collection', async () => {
    const { p, reclaimer, period } = fakeProcess();
    p.heap = 36 * MiB;
    reclaimer.start(30 * MiB);
    for (let i = 0; i < 3; i++) await period(0.02, 36 * MiB);
    expect(reclaimer.count).toBe(0);
    reclaimer.stop();
  });

  it('never interrupts a busy node, however much garbage it holds', async () => {
    const { p, reclaimer, period } = fakeProcess();
    reclaimer.start();
    for (let i = 0; i < 10; i++) await period(0.5, 200 * MiB);
    expect(p.collected).toEqual([]);
    reclaimer.stop();
  });

  it('leaves a quiet node alone when its heap has not grown by the threshold', async () => {
    const { p, reclaimer, period } = fakeProcess();
    reclaimer.start();
    await period(0.9, 45 * MiB); // +15 MiB over the low-water mark of 30
    await period(0, 45 * MiB);
    expect(p.collected).toEqual([]);
    await period(0, 46 * MiB);
    expect(p.collected).toEqual([[46 * MiB, 30 * MiB]]);
    reclaimer.stop();
  });

  it("takes V8's own collections as the new low-water mark", async () => {
    const { p, reclaimer, period } = fakeProcess();
    p.heap = 80 * MiB;
    reclaimer.start(); // low-water 80
    await period(0.9, 20 * MiB); // V8 collected by itself: low-water 20
    await period(0, 40 * MiB); // +20 over 20: collect
    expect(p.collected).toEqual([[40 * MiB, 30 * MiB]]);
    reclaimer.stop();
  });

  it('does not count its own collection as load', async () => {
    const { p, reclaimer, period } = fakeProcess();
    p.gcBusyMs = 500; // a long pause: a quarter of a check period
    reclaimer.start();
    await period(0.9, 90 * MiB);
    await period(0, 90 * MiB);
    expect(reclaimer.count).toBe(1);
    // Still quiet, and garbage piles up again: the next check collects (had it counted the
    // 500 ms pause as load, this period would look busy and be skipped).
    await period(0, 50 * MiB);
    expect(reclaimer.count).toBe(2);
    reclaimer.stop();
  });

  it('stops checking after stop()', async () => {
    const { p, reclaimer, period } = fakeProcess();
    reclaimer.start();
    await period(0.9, 90 * MiB);
    reclaimer.stop();
    await period(0, 90 * MiB);
    await period(0, 90 * MiB);
    expect(p.collected).toEqual([]);
  });
});
