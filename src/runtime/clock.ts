/**
 * Time as an input. Everything outside src/runtime/ asks a Clock instead of reading
 * Date.now() or performance.now(), so simulations can drive time by hand and replay.
 */
export interface Clock {
  /** Wall-clock milliseconds since the epoch (for lastModified stamps and logs only). */
  now(): number;
  /** Monotonic milliseconds for measuring durations and deadlines. */
  monotonic(): number;
}

/** The real clock of the process. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
};
