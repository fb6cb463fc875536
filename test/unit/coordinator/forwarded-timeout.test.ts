/**
 * The timeout a forwarded write's coordinator gets out of what is left of the request's own:
 * less a margin for its reply (at most a tenth of what is left), so the forwarding node hears
 * its answer before giving up itself; always a whole ms, at least 1.
 */
import { describe, expect, it } from 'vitest';
import { COORDINATOR_DEFAULTS, forwardedTimeoutMs } from '../../../src/coordinator/coordinator.js';

describe('forwardedTimeoutMs', () => {
  it.each([
    [5000, 500, 4500],
    [10_000, 500, 9500],
    [1000, 500, 900],
    [100, 500, 90],
    [1000, 20, 980],
    [1000, 0, 1000],
    [999.7, 500, 899],
    [1, 500, 1],
    [0.4, 500, 1],
  ])('%d ms left, margin %d: %d', (left, margin, expected) => {
    expect(forwardedTimeoutMs(left, margin)).toBe(expected);
  });

  it('is always a whole number of ms below what is left (or 1), never more', () => {
    for (let left = 1; left <= 20_000; left += 7.3) {
      const t = forwardedTimeoutMs(left, COORDINATOR_DEFAULTS.forwardMarginMs);
      expect(Number.isInteger(t)).toBe(true);
      expect(t).toBeGreaterThanOrEqual(1);
      expect(t).toBeLessThanOrEqual(Math.max(1, left));
      expect(left - t).toBeLessThanOrEqual(Math.min(COORDINATOR_DEFAULTS.forwardMarginMs, left * 0.1) + 1);
    }
  });
});
