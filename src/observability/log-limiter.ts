/**
 * At most one log line per interval for one kind of event, for events that can come with
 * every request (a peer answering what this node cannot read, reads of an object with many
 * siblings): the first is logged, the rest are counted and the count goes with the next line.
 */
import type { Clock } from '../runtime/clock.js';

export class LogLimiter {
  #lastAt = Number.NEGATIVE_INFINITY;
  #heldBack = 0;

  constructor(
    private readonly clock: Clock,
    private readonly intervalMs: number,
  ) {}

  /**
   * Whether to log this event: the number of events held back since the last line logged
   * (log it, with that number), or undefined (do not; it is counted).
   */
  take(): number | undefined {
    const now = this.clock.monotonic();
    if (now - this.#lastAt < this.intervalMs) {
      this.#heldBack++;
      return undefined;
    }
    this.#lastAt = now;
    const held = this.#heldBack;
    this.#heldBack = 0;
    return held;
  }
}
