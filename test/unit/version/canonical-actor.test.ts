import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalActor, canonicalActorIn } from '../../../src/version/bytes.js';
import { decodeContext, decodeObject, encodeContext, encodeObject, mint } from '../../../src/version/index.js';

describe('canonicalActor', () => {
  it('always answers a string equal to its input, whatever was seen before (slots are shared and replaced)', () => {
    // Random strings, arbitrary code units included: whatever the table held before, the
    // answer is equal to the input (a string that lost its slot comes back as itself).
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

  it('stays exact when far more actors pass than the table has slots (every slot is replaced many times)', () => {
    // 5000 distinct names through 1024 slots: by pigeonhole most share a slot with another.
    const names = Array.from({ length: 5000 }, (_, i) => `n${i % 7}.node~${i.toString(36)}`);
    for (const round of [0, 1]) {
      for (const name of names) expect(canonicalActor(name), `round ${round}`).toBe(name);
    }
    // A name seen again right after itself comes back from its slot, still equal.
    for (const name of names.slice(0, 50)) {
      canonicalActor(name);
      expect(canonicalActor(`${name}`)).toBe(name);
    }
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

  it('decodes exactly the bytes it is given when the table holds a different string in that slot', () => {
    // Fill every slot, then decode names of the same lengths that differ from a table entry in
    // one character: a decoder that trusted the slot (or the hash) would hand back the wrong name.
    const names = Array.from({ length: 4096 }, (_, i) => `n${i % 5}.e${(i * 7919).toString(36)}`);
    for (const name of names) canonicalActor(name);
    const value = new Uint8Array([7]);
    for (const name of names.slice(0, 400)) {
      const last = name.charCodeAt(name.length - 1);
      const near = name.slice(0, -1) + String.fromCharCode(last === 0x7a ? 0x79 : last + 1);
      for (const actor of [name, near, `${near}\u00e9`, near.toUpperCase()]) {
        const obj = mint(undefined, {}, { value, contentType: `text/${actor}`, deleted: false }, actor, 1).object;
        const back = decodeObject(encodeObject(obj).slice());
        expect(Object.keys(back.clock)).toEqual([actor]);
        expect(back.siblings[0]?.dot.actor).toBe(actor);
        expect(back.siblings[0]?.contentType).toBe(`text/${actor}`);
        expect(Object.keys(decodeContext(encodeContext({ [actor]: 3 })))).toEqual([actor]);
      }
    }
  });

  it('canonicalActorIn answers the slice of its range, whether or not the table holds it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.string({ maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 70 })), { minLength: 1, maxLength: 20 }),
        fc.boolean(),
        (parts, seed) => {
          if (seed) for (const p of parts) canonicalActor(p);
          const joined = parts.join(';');
          let at = 0;
          for (const p of parts) {
            expect(canonicalActorIn(joined, at, at + p.length)).toBe(p);
            at += p.length + 1;
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
