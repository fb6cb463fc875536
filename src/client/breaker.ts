/**
 * A circuit breaker for one node. Time and randomness are injected, so tests drive it with a
 * manual clock.
 *
 * closed --(failureThreshold consecutive failures)--> open
 * open --(jittered open period passes; next request becomes the probe)--> half-open
 * half-open --(probe succeeds)--> closed;  --(probe fails)--> open, for a longer period
 *
 * Each admitted request gets a permit that reports its outcome once. Outcomes from permits
 * issued before the last state change are ignored, so a slow request started while the
 * breaker was closed cannot reopen or close it later by mistake.
 */
import type { Clock } from '../runtime/clock.js';
import type { Random } from '../runtime/random.js';
import type { BreakerOptions } from './types.js';

export const BREAKER_DEFAULTS = { failureThreshold: 5, openMs: 1_000, maxOpenMs: 30_000 } as const;

export type BreakerState = 'closed' | 'open' | 'half-open';

/** The right to send one request; report exactly one outcome. */
export interface BreakerPermit {
  /** The node answered sanely. */
  success(): void;
  /** The node failed (unreachable, timed out, 5xx). */
  failure(): void;
  /** The outcome says nothing about the node (e.g. the caller aborted). */
  release(): void;
}

export interface BreakerComponents {
  readonly clock: Clock;
  readonly random: Random;
}

export class CircuitBreaker {
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly threshold: number;
  private readonly openMs: number;
  private readonly maxOpenMs: number;
  private current: BreakerState = 'closed';
  private failures = 0;
  /** Trips in a row without a successful probe; lengthens the open period. */
  private trips = 0;
  private openUntil = 0;
  private probing = false;
  /** Bumped on every state change; permits from older generations are ignored. */
  private generation = 0;

  constructor(components: BreakerComponents, init: BreakerOptions = {}) {
    this.clock = components.clock;
    this.random = components.random;
    this.threshold = Math.max(1, init.failureThreshold ?? BREAKER_DEFAULTS.failureThreshold);
    this.openMs = Math.max(0, init.openMs ?? BREAKER_DEFAULTS.openMs);
    this.maxOpenMs = Math.max(this.openMs, init.maxOpenMs ?? BREAKER_DEFAULTS.maxOpenMs);
  }

  /** The current state; an open breaker whose period has passed reports `half-open`. */
  get state(): BreakerState {
    if (this.current === 'open' && this.clock.monotonic() >= this.openUntil) return 'half-open';
    return this.current;
  }

  /** When an open breaker will admit its probe (monotonic ms), or undefined if not open. */
  get retryAt(): number | undefined {
    return this.current === 'open' ? this.openUntil : undefined;
  }

  /** A permit to send, or undefined while the breaker is open (or its one probe is in flight). */
  tryAcquire(): BreakerPermit | undefined {
    if (this.current === 'open') {
      if (this.clock.monotonic() < this.openUntil) return undefined;
      this.transition('half-open');
    }
    if (this.current === 'half-open') {
      if (this.probing) return undefined;
      this.probing = true;
      return this.permit(true);
    }
    return this.permit(false);
  }

  private permit(probe: boolean): BreakerPermit {
    const generation = this.generation;
    let done = false;
    const once = (fn: () => void) => () => {
      if (done) return;
      done = true;
      if (generation === this.generation) fn();
    };
    return {
      success: once(() => {
        if (probe) {
          this.trips = 0;
          this.transition('closed');
        } else {
          this.failures = 0;
        }
      }),
      failure: once(() => {
        if (probe) {
          this.trip();
        } else if (++this.failures >= this.threshold) {
          this.trip();
        }
      }),
      release: once(() => {
        if (probe) this.probing = false;
      }),
    };
  }

  private trip(): void {
    this.trips++;
    const period = Math.min(this.maxOpenMs, this.openMs * 2 ** Math.min(this.trips - 1, 30));
    // 50-100% of the period: nodes tripped together do not all probe at the same instant.
    this.openUntil = this.clock.monotonic() + period * (0.5 + 0.5 * this.random.next());
    this.transition('open');
  }

  private transition(to: BreakerState): void {
    this.current = to;
    this.failures = 0;
    this.probing = false;
    this.generation++;
  }
}
