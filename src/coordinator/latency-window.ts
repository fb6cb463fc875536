/**
 * The recent p99 of an operation's duration, over a sliding window of samples, cheap enough
 * for the request path: samples go into a ring buffer and the percentile is recomputed (one
 * sort of the window) only every `every` samples.
 */
export interface LatencyWindowInit {
  /** Samples kept. */
  readonly size?: number;
  /** Samples between recomputations. */
  readonly every?: number;
  /** Never speculate sooner than this (ms): below it a backup request mostly adds load. */
  readonly floorMs?: number;
  /** Answer while fewer than `every` samples were seen (ms). */
  readonly initialMs?: number;
}

export const LATENCY_WINDOW_DEFAULTS = { size: 512, every: 64, floorMs: 5, initialMs: 50 } as const;

export class LatencyWindow {
  private readonly samples: Float64Array;
  private readonly every: number;
  private readonly floorMs: number;
  private count = 0;
  private p99: number;

  constructor(init: LatencyWindowInit = {}) {
    const size = Math.max(1, init.size ?? LATENCY_WINDOW_DEFAULTS.size);
    this.samples = new Float64Array(size);
    this.every = Math.max(1, Math.min(size, init.every ?? LATENCY_WINDOW_DEFAULTS.every));
    this.floorMs = init.floorMs ?? LATENCY_WINDOW_DEFAULTS.floorMs;
    this.p99 = init.initialMs ?? LATENCY_WINDOW_DEFAULTS.initialMs;
  }

  /** Record one duration (ms). Negative or non-finite values are ignored. */
  add(ms: number): void {
    if (!(ms >= 0) || ms === Number.POSITIVE_INFINITY) return;
    this.samples[this.count % this.samples.length] = ms;
    this.count++;
    if (this.count % this.every === 0) this.recompute();
  }

  /** The current p99 (ms): the initial value until the first recomputation. */
  get p99Ms(): number {
    return this.p99;
  }

  /** How long to wait for an answer before asking another replica (ms). */
  speculateAfterMs(): number {
    return Math.max(this.floorMs, this.p99);
  }

  private recompute(): void {
    const n = Math.min(this.count, this.samples.length);
    const sorted = this.samples.slice(0, n).sort();
    this.p99 = sorted[Math.min(n - 1, Math.ceil(n * 0.99) - 1)] as number;
  }
}
