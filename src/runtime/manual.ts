import type { Clock } from './clock.js';
import type { TimerHandle, Timers } from './timers.js';

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock and timer wheel driven by hand, for simulations and unit tests.
 * `advance(ms)` runs every timer due by then, in time order (ties in scheduling order).
 */
export class ManualTime implements Clock, Timers {
  private t: number;
  private seq = 0;
  private queue: Pending[] = [];

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  monotonic(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const p: Pending = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.queue.push(p);
    return {
      cancel: () => {
        p.cancelled = true;
      },
    };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const h = this.setTimeout(resolve, ms);
      signal?.addEventListener(
        'abort',
        () => {
          h.cancel();
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  /** Number of timers still scheduled. */
  pending(): number {
    return this.queue.filter((p) => !p.cancelled).length;
  }

  /** The time at which the next live timer fires, or undefined. */
  nextAt(): number | undefined {
    let best: number | undefined;
    for (const p of this.queue) if (!p.cancelled && (best === undefined || p.at < best)) best = p.at;
    return best;
  }

  /**
   * Move time forward by `ms`, firing due timers in order. Microtasks queued by a timer
   * are drained before the next timer fires, so async chains behave as with real time.
   */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.queue = this.queue.filter((p) => !p.cancelled);
      this.queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const head = this.queue[0];
      if (!head || head.at > end) break;
      this.queue.shift();
      this.t = Math.max(this.t, head.at);
      head.fn();
      await drainMicrotasks();
    }
    this.t = end;
    await drainMicrotasks();
  }
}

/** Let every queued promise continuation run (several turns, for chained awaits). */
export async function drainMicrotasks(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve();
}
