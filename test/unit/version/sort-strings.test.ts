import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareStrings, sortStrings } from '../../../src/version/bytes.js';

describe('sortStrings', () => {
  it('sorts in place in code-unit order, as Array#sort with compareStrings, short and long arrays alike', () => {
    // Short arrays take the insertion sort, longer ones Array#sort; both must agree with it.
    const strings = fc.array(fc.oneof(fc.string({ maxLength: 6 }), fc.string({ unit: 'binary', maxLength: 4 }), fc.constantFrom('a', 'b', 'é', '😀')), {
      maxLength: 40,
    });
    fc.assert(
      fc.property(strings, (input) => {
        const expected = [...input].sort(compareStrings);
        const copy = [...input];
        const out = sortStrings(copy);
        expect(out).toBe(copy);
        expect(out).toEqual(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('orders by UTF-16 code units, not by code point or locale', () => {
    // U+FF5E (one unit 0xFF5E) sorts after U+1F600 (surrogates 0xD83D 0xDE00) by code units.
    expect(sortStrings(['\uFF5E', '😀', 'B', 'a', 'A'])).toEqual(['A', 'B', 'a', '😀', '\uFF5E']);
  });
});
