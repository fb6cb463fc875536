import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { httpDate } from '../../../src/http/http-date.js';

describe('httpDate', () => {
  it('is new Date(ms).toUTCString() for any time, seen before or not, whatever shared its cache slot', () => {
    const base = 1_795_000_000_000;
    // Seconds 256 apart share a slot; fractions of a second share a second.
    const times = fc.oneof(
      fc.integer({ min: -8_640_000_000_000, max: 8_640_000_000_000 }),
      fc.integer({ min: 0, max: 4 }).chain((k) => fc.integer({ min: 0, max: 999 }).map((f) => base + k * 256_000 + f)),
      fc.double({ noNaN: false }),
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0.5, -1, -1000.5, 8.64e15, 8.64e15 + 1, -8.64e15 - 1, 2 ** 31 * 1000 + 1, 2 ** 32 * 1000 + 7),
    );
    fc.assert(
      fc.property(fc.array(times, { minLength: 1, maxLength: 50 }), (list) => {
        for (const ms of [...list, ...list]) expect(httpDate(ms)).toBe(new Date(ms).toUTCString());
      }),
      { numRuns: 500 },
    );
  });
});
