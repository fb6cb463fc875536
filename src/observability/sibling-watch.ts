/**
 * How many siblings reads hand to clients. Siblings pile up when clients write without the
 * context of what they read (each such write adds one) or never resolve what they get; an
 * object with hundreds of them is slow to read and merge everywhere, and nothing else shows
 * it coming. ringkv never refuses such a write (SPEC §2: a write without context makes a
 * sibling), so it says so instead: a histogram of every answer with two or more siblings, and
 * a warning, at most one per interval, naming a key that came back with `warnAt` or more.
 * Answers with one value cost nothing here (the caller only calls for two or more).
 */
import type { Clock } from '../runtime/clock.js';
import { LogLimiter } from './log-limiter.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

/** Siblings at which a read's key is logged (the threshold Riak warned at, too). */
export const SIBLING_WARN_AT = 25;
/** At most one warning per this many milliseconds; the others are counted in the next one. */
export const SIBLING_WARN_INTERVAL_MS = 60_000;

export class SiblingWatch {
  readonly #warnings: LogLimiter;

  constructor(
    private readonly c: { readonly metrics: Metrics; readonly log: Logger; readonly clock: Clock },
    private readonly warnAt = SIBLING_WARN_AT,
    intervalMs = SIBLING_WARN_INTERVAL_MS,
  ) {
    this.#warnings = new LogLimiter(c.clock, intervalMs);
  }

  /** A read of `key` answered with `count` (two or more) siblings. */
  observe(key: string, count: number): void {
    this.c.metrics.readSiblings.observe(count);
    if (count < this.warnAt) return;
    const unloggedSince = this.#warnings.take();
    if (unloggedSince === undefined) return;
    this.c.log.warn(
      { key, siblings: count, unloggedSince },
      'a read returned many siblings: clients are writing without the context they read, or not resolving siblings',
    );
  }
}
