/**
 * Phi-accrual failure detection (Hayashibara et al., 2004), pure: time is an argument.
 *
 * Instead of a yes/no timeout, the detector turns "how long since the last heartbeat" into a
 * suspicion level phi = -log10(P(a heartbeat interval is at least this long)), where the
 * interval distribution is a normal fitted to a sliding window of recent intervals. phi = 1
 * means a 10% chance we are wrong to suspect, phi = 8 a 1e-8 chance. Because the window
 * learns the actual arrival pattern, the same threshold adapts to the gossip interval, the
 * cluster size (heartbeats learned indirectly arrive irregularly) and the network's jitter.
 */

/** Tuning of {@link PhiAccrualDetector}. */
export interface PhiOptions {
  /** Suspicion level at or above which a member is judged down. */
  readonly threshold: number;
  /** Number of recent intervals the distribution is fitted to. */
  readonly windowSize: number;
  /**
   * Floor for the fitted standard deviation. Without it a very regular history would make
   * the detector hair-triggered: one late heartbeat would be many deviations away.
   */
  readonly minStdDevMs: number;
  /** Added to the fitted mean: a pause this long (GC, a slow round) costs no suspicion. */
  readonly acceptablePauseMs: number;
  /**
   * Interval assumed before real samples exist: the window starts with two synthetic
   * intervals of 0.5x and 1.5x this (mean = this, deviation = half of it), which real
   * samples push out as they arrive.
   */
  readonly bootstrapIntervalMs: number;
}

/** Defaults for a 1000 ms heartbeat (the gossip driver derives its own from the interval). */
export const PHI_DEFAULTS: PhiOptions = Object.freeze({
  threshold: 8,
  windowSize: 100,
  minStdDevMs: 500,
  acceptablePauseMs: 1000,
  bootstrapIntervalMs: 1000,
});

const LN10 = Math.log(10);

/**
 * phi for `elapsedMs` since the last heartbeat, with intervals ~ Normal(meanMs, stdDevMs).
 *
 * Uses the logistic approximation of the normal tail, P(X > x) ~= 1 / (1 + e^z) with
 * z = y (1.5976 + 0.070566 y^2) and y = (x - mean) / sd (max error about 1.4e-4), so
 * phi = log10(1 + e^z) = softplus(z) / ln 10, computed without overflow for large z (where
 * the exact tail underflows to 0 and a naive -log10 would give Infinity).
 */
export function phiOf(elapsedMs: number, meanMs: number, stdDevMs: number): number {
  const y = (elapsedMs - meanMs) / stdDevMs;
  const z = y * (1.5976 + 0.070566 * y * y);
  const softplus = z > 30 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
  return softplus / LN10;
}

/** The last `size` inter-arrival intervals of one member, with running sums. */
export class ArrivalWindow {
  private readonly buf: Float64Array;
  private head = 0;
  private count = 0;
  private sum = 0;
  private sumSq = 0;
  private sinceRecompute = 0;

  constructor(private readonly size: number) {
    if (!Number.isInteger(size) || size < 2) throw new RangeError(`phi window must be an integer >= 2, got ${size}`);
    this.buf = new Float64Array(size);
  }

  add(interval: number): void {
    if (this.count === this.size) {
      const old = this.buf[this.head] as number;
      this.sum -= old;
      this.sumSq -= old * old;
    } else {
      this.count++;
    }
    this.buf[this.head] = interval;
    this.head = (this.head + 1) % this.size;
    this.sum += interval;
    this.sumSq += interval * interval;
    // Running add/subtract accumulates rounding error over days; refresh the sums now and then.
    if (++this.sinceRecompute >= this.size) this.recompute();
  }

  get length(): number {
    return this.count;
  }

  mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count;
  }

  stdDev(): number {
    if (this.count === 0) return 0;
    const m = this.mean();
    return Math.sqrt(Math.max(0, this.sumSq / this.count - m * m));
  }

  private recompute(): void {
    this.sinceRecompute = 0;
    let s = 0;
    let sq = 0;
    for (let i = 0; i < this.count; i++) {
      const v = this.buf[i] as number;
      s += v;
      sq += v * v;
    }
    this.sum = s;
    this.sumSq = sq;
  }
}

interface Track {
  readonly window: ArrivalWindow;
  last: number;
  /** Forced down (by a direct-failure report) until the next heartbeat. */
  suspected: boolean;
}

/**
 * Per-member phi-accrual detector. Feed it `heartbeat(id, now)` whenever news arrives that a
 * member is alive; ask `isAvailable(id, now)`. All times are monotonic milliseconds.
 *
 * Recovery: an interval that ends a period in which the member was judged down is an
 * outage, not a sample of the heartbeat rhythm, so it is not added to the window (else a
 * partition of a minute would teach the detector to wait minutes before the next verdict).
 * The heartbeat itself still counts: the member is available again at once.
 */
export class PhiAccrualDetector {
  private readonly tracks = new Map<string, Track>();
  readonly options: PhiOptions;

  constructor(options: Partial<PhiOptions> = {}) {
    const o = { ...PHI_DEFAULTS, ...options };
    if (!Number.isInteger(o.windowSize) || o.windowSize < 2) throw new RangeError(`windowSize must be an integer >= 2, got ${o.windowSize}`);
    if (!(o.threshold > 0)) throw new RangeError(`phi threshold must be > 0, got ${o.threshold}`);
    if (!(o.minStdDevMs > 0)) throw new RangeError(`minStdDevMs must be > 0, got ${o.minStdDevMs}`);
    if (!(o.acceptablePauseMs >= 0)) throw new RangeError(`acceptablePauseMs must be >= 0, got ${o.acceptablePauseMs}`);
    if (!(o.bootstrapIntervalMs > 0)) throw new RangeError(`bootstrapIntervalMs must be > 0, got ${o.bootstrapIntervalMs}`);
    this.options = Object.freeze(o);
  }

  /** Records news that `id` is alive at `now`. The first call starts tracking it. */
  heartbeat(id: string, now: number): void {
    const t = this.tracks.get(id);
    if (t === undefined) {
      const window = new ArrivalWindow(this.options.windowSize);
      window.add(this.options.bootstrapIntervalMs * 0.5);
      window.add(this.options.bootstrapIntervalMs * 1.5);
      this.tracks.set(id, { window, last: now, suspected: false });
      return;
    }
    const interval = now - t.last;
    if (interval < 0) return; // out-of-order input; keep the later arrival
    if (!t.suspected && this.phiOfTrack(t, now) < this.options.threshold) t.window.add(interval);
    t.last = now;
    t.suspected = false;
  }

  /** Suspicion level of `id` at `now`; 0 for a member never heard of. */
  phi(id: string, now: number): number {
    const t = this.tracks.get(id);
    return t === undefined ? 0 : this.phiOfTrack(t, now);
  }

  /**
   * False once phi reaches the threshold or the member was suspected by `suspect`, until the
   * next heartbeat. A member never heard of is not judged (true).
   */
  isAvailable(id: string, now: number): boolean {
    const t = this.tracks.get(id);
    if (t === undefined) return true;
    return !t.suspected && this.phiOfTrack(t, now) < this.options.threshold;
  }

  /** Judges `id` down now, whatever phi says, until its next heartbeat. No-op if untracked. */
  suspect(id: string): void {
    const t = this.tracks.get(id);
    if (t !== undefined) t.suspected = true;
  }

  /** Withdraws a `suspect` verdict (phi still applies). */
  unsuspect(id: string): void {
    const t = this.tracks.get(id);
    if (t !== undefined) t.suspected = false;
  }

  /** Monotonic time of the last heartbeat of `id`, or undefined if untracked. */
  lastHeartbeat(id: string): number | undefined {
    return this.tracks.get(id)?.last;
  }

  /** Fitted (mean, standard deviation) of `id`'s intervals, before the pause and floor apply. */
  stats(id: string): { mean: number; stdDev: number; samples: number } | undefined {
    const t = this.tracks.get(id);
    if (t === undefined) return undefined;
    return { mean: t.window.mean(), stdDev: t.window.stdDev(), samples: t.window.length };
  }

  /**
   * Forgives `ms` of silence for every member, as of `now`: this node itself was stalled (a
   * GC pause, a suspended VM), so nothing could arrive meanwhile and that time says nothing
   * about them. Their windows are kept; a last heartbeat never moves past `now`.
   */
  forgive(ms: number, now: number): void {
    if (!(ms > 0)) return;
    for (const t of this.tracks.values()) t.last = Math.max(t.last, Math.min(now, t.last + ms));
  }

  /** Stops tracking `id` (e.g. it was removed); a later heartbeat starts afresh. */
  forget(id: string): void {
    this.tracks.delete(id);
  }

  /** Ids currently tracked. */
  ids(): IterableIterator<string> {
    return this.tracks.keys();
  }

  private phiOfTrack(t: Track, now: number): number {
    const o = this.options;
    const mean = t.window.mean() + o.acceptablePauseMs;
    const sd = Math.max(t.window.stdDev(), o.minStdDevMs);
    return phiOf(now - t.last, mean, sd);
  }
}
