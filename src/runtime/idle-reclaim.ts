/**
 * Gives memory back once a burst is over.
 *
 * V8 runs a full collection when the old generation has grown past a limit it sets from the
 * previous live size, not when a process goes quiet. So a node that has just served a burst
 * of requests rests holding that burst's garbage (tens of MiB of resident memory) until V8's
 * memory reducer notices a low allocation rate, which on a node that keeps gossiping and
 * running anti-entropy took 10-30 s in bench-rss and is not guaranteed at all.
 *
 * The reclaimer checks every `checkMs`: when the event loop was busy for only a small share
 * of the time since the last check (the node is quiet; background threads such as LevelDB's
 * compaction do not count) and the heap holds at least `minGarbageBytes` more than the
 * smallest heap seen since the last collection (a low-water mark that V8's own collections
 * also reset), it collects (`collect`: two full collections back to back in a real process,
 * see processProbes). One burst costs at most one pause, taken when nobody is waiting on the
 * node; a busy node is never interrupted. A node serving a light but steady load (busy under
 * `quietShare`) may pause once per `minGarbageBytes` of garbage, where V8 would have run an
 * incremental collection instead.
 */
import { getHeapStatistics } from 'node:v8';
import type { TimerHandle, Timers } from './timers.js';

export interface IdleReclaimDeps {
  readonly timers: Timers;
  /** Monotonic milliseconds. */
  readonly monotonicMs: () => number;
  /** Milliseconds the event loop has spent busy so far (not idle, waiting for I/O). */
  readonly busyMs: () => number;
  /** Bytes of V8 heap in use now. */
  readonly heapUsed: () => number;
  /** Collects the heap's garbage (a full, compacting collection). */
  readonly collect: () => void;
  /** Told after each collection (heap used before and after). */
  readonly onCollected?: (before: number, after: number) => void;
}

export interface IdleReclaimOptions {
  /** How often to check. */
  readonly checkMs: number;
  /** Quiet means the event loop was busy at most this share of the time since the last check (0..1). */
  readonly quietShare: number;
  /** Collect only when the heap has grown by at least this much since its low-water mark. */
  readonly minGarbageBytes: number;
}

export const IDLE_RECLAIM_DEFAULTS: IdleReclaimOptions = Object.freeze({
  checkMs: 2000,
  quietShare: 0.05,
  minGarbageBytes: 16 * 1024 * 1024,
});

export class IdleReclaimer {
  private timer: TimerHandle | undefined;
  private lastAt = 0;
  private lastBusy = 0;
  private lowWater = Number.POSITIVE_INFINITY;
  private collections = 0;

  constructor(
    private readonly deps: IdleReclaimDeps,
    private readonly opts: IdleReclaimOptions = IDLE_RECLAIM_DEFAULTS,
  ) {}

  /** Collections run so far. */
  get count(): number {
    return this.collections;
  }

  /**
   * Starts checking. Idempotent. `heapBefore`: the heap in use before work that ran before
   * the reclaimer started (a node's start reads every key to build its anti-entropy tree), so
   * that work's garbage counts toward the threshold like a burst's.
   */
  start(heapBefore?: number): void {
    if (this.timer) return;
    this.lastAt = this.deps.monotonicMs();
    this.lastBusy = this.deps.busyMs();
    this.lowWater = Math.min(heapBefore ?? Number.POSITIVE_INFINITY, this.deps.heapUsed());
    this.schedule();
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** One check (the timer calls this every `checkMs`). Returns true if it collected. */
  check(): boolean {
    const now = this.deps.monotonicMs();
    const busy = this.deps.busyMs();
    const elapsedMs = now - this.lastAt;
    const share = elapsedMs > 0 ? (busy - this.lastBusy) / elapsedMs : 1;
    this.lastAt = now;
    this.lastBusy = busy;
    const used = this.deps.heapUsed();
    this.lowWater = Math.min(this.lowWater, used);
    if (share > this.opts.quietShare || used - this.lowWater < this.opts.minGarbageBytes) return false;
    this.deps.collect();
    const after = this.deps.heapUsed();
    this.lowWater = after;
    this.collections++;
    // The collection's own time is not the node's load: do not let it hide the next check.
    this.lastBusy = this.deps.busyMs();
    this.lastAt = this.deps.monotonicMs();
    this.deps.onCollected?.(used, after);
    return true;
  }

  private schedule(): void {
    this.timer = this.deps.timers.setTimeout(() => {
      if (!this.timer) return;
      // A throw out of a real timer is an uncaught exception that kills the node; a failed
      // check only skips this one reclaim, so it is dropped and the next check goes ahead.
      try {
        this.check();
      } catch {
        // dropped: at worst this check's window is lost, and the next one measures afresh
      } finally {
        if (this.timer) this.schedule();
      }
    }, this.opts.checkMs);
  }
}

/**
 * This process's probes for the reclaimer: event-loop busy time, heap in use, and V8's full
 * collection, which node exposes only when started with --expose-gc (undefined otherwise).
 */
export function processProbes(): Pick<IdleReclaimDeps, 'busyMs' | 'heapUsed' | 'collect'> | undefined {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') return undefined;
  return {
    busyMs: () => performance.eventLoopUtilization().active,
    // V8's own figure, not process.memoryUsage(): that one also reads the RSS from /proc
    // and throws EMFILE when the process is out of file descriptors, i.e. under load.
    heapUsed: () => getHeapStatistics().used_heap_size,
    // Twice: the first full collection frees the garbage but keeps the pages it leaves
    // fragmented; the second one compacts them and returns them to the OS. Measured on a
    // 150 MiB heap of mostly garbage (node 20): one gc() left 52 MiB committed and RSS at 96
    // MiB; two left 16 MiB and RSS at 59 MiB, in ~90 ms.
    collect: () => {
      gc();
      gc();
    },
  };
}
