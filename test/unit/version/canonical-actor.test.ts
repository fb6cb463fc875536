import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalActor } from '../../../src/version/bytes.js';
import { decodeContext, decodeObject, encodeContext, encodeObject, mint } from '../../../src/version/index.js';

describe('canonicalActor', () => {
  it('always answers a string equal to its input, whatever was seen before (slots are shared and replaced)', () => {
    // Many distinct strings through a 1024-slot table: collisions replace slots, and a string
    // that lost its slot must still come back equal to itself.
    const actors = fc.array(fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 70 }), fc.constantFrom('n1', 'n2', 'n1~abc', '__proto__', '0', '123', 'constructor', '')), {
      minLength: 1,
      maxLength: 300,
    });
    fc.assert(
      fc.property(actors, (input) => {
        for (const a of input) expect(canonicalActor(a)).toBe(a);
        // And again, now that the table holds some of them.
        for (const a of input) expect(canonicalActor(a)).toBe(a);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps decoded clocks and dots equal to what was encoded, actors repeated across objects or not', () => {
    const value = new Uint8Array([1, 2, 3]);
    let obj = mint(undefined, {}, { value, contentType: 'text/plain', deleted: false }, 'n1.abc', 1).object;
    obj = mint(obj, {}, { value, contentType: 'text/plain', deleted: false }, 'n2.def', 2).object;
    for (let i = 0; i < 3; i++) {
      const back = decodeObject(encodeObject(obj).slice());
      expect(back.clock).toEqual(obj.clock);
      expect(back.siblings.map((s) => s.dot)).toEqual(obj.siblings.map((s) => s.dot));
      expect(decodeContext(encodeContext(obj.clock))).toEqual(obj.clock);
    }
  });
});
