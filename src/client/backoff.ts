/**
 * Full-jitter exponential backoff (pure given a Random): the wait before retry `k` (1-based)
 * is uniform in [0, min(maxMs, baseMs * 2^(k-1))). Full jitter spreads clients that failed
 * together, so they do not come back together.
 */
import type { Random } from '../runtime/random.js';
import type { BackoffOptions } from './types.js';

export const BACKOFF_DEFAULTS = { baseMs: 50, maxMs: 2_000 } as const;

/** The wait before retry number `retry` (1 for the first retry). */
export function backoffDelay(retry: number, random: Random, opts: BackoffOptions = {}): number {
  const baseMs = opts.baseMs ?? BACKOFF_DEFAULTS.baseMs;
  const maxMs = opts.maxMs ?? BACKOFF_DEFAULTS.maxMs;
  // Cap the exponent so 2^k never overflows into Infinity on absurd retry counts.
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(retry, 1) - 1, 30));
  return random.next() * ceiling;
}
