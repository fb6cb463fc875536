import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeObject,
  encodeObject,
  isVersioned,
  merge,
  mint,
  type VersionedObject,
  versioned,
} from '../../../src/version/index.js';
import { objectArb } from './sim.js';

const write = (v: string) => ({ value: new TextEncoder().encode(v), contentType: 'text/plain', deleted: false });

describe('versioned objects remember their encoding', () => {
  it('mint, merge and the decoder build objects that keep their encoding in themselves', () => {
    const a = mint(undefined, {}, write('a'), 'n1.1', 1).object;
    const b = mint(undefined, {}, write('b'), 'n2.1', 2).object;
    expect(isVersioned(a)).toBe(true);
    expect(isVersioned(merge(a, b))).toBe(true);
    expect(isVersioned(decodeObject(encodeObject(a)))).toBe(true);
    expect(isVersioned({ clock: a.clock, siblings: a.siblings })).toBe(false);
  });

  it('encodes an object once: the same bytes come back on every later call', () => {
    const { object } = mint(undefined, {}, write('a'), 'n1.1', 1);
    const first = encodeObject(object);
    expect(encodeObject(object)).toBe(first);
    const merged = merge(object, mint(undefined, {}, write('b'), 'n2.1', 2).object);
    expect(encodeObject(merged)).toBe(encodeObject(merged));
  });

  it('a decoded object encodes to the very bytes it was decoded from', () => {
    const bytes = encodeObject(mint(undefined, {}, write('a'), 'n1.1', 1).object);
    const copy = new Uint8Array(bytes);
    const decoded = decodeObject(copy);
    expect(encodeObject(decoded)).toBe(copy);
  });

  it('an object written as a literal is encoded the same way, and once too', () => {
    const { object } = mint(undefined, {}, write('a'), 'n1.1', 1);
    const literal: VersionedObject = { clock: { ...object.clock }, siblings: [...object.siblings] };
    const bytes = encodeObject(literal);
    expect(encodeObject(literal)).toBe(bytes);
    expect(bytes).toEqual(encodeObject(object));
  });

  it('the remembered bytes are not part of the object: equality, keys and JSON see clock and siblings only', () => {
    const { object } = mint(undefined, {}, write('a'), 'n1.1', 1);
    encodeObject(object);
    const literal = { clock: { ...object.clock }, siblings: [...object.siblings] };
    expect(object).toEqual(literal);
    expect(Object.keys(object)).toEqual(['clock', 'siblings']);
    expect(JSON.stringify(object)).toBe(JSON.stringify(literal));
  });

  it('any object, built either way, encodes to the same bytes, once, and decodes back to itself', () => {
    fc.assert(
      fc.property(objectArb(), (obj) => {
        const built = versioned(obj.clock, obj.siblings);
        const bytes = encodeObject(built);
        expect(encodeObject(built)).toBe(bytes);
        expect(bytes).toEqual(encodeObject({ clock: obj.clock, siblings: obj.siblings }));
        const decoded = decodeObject(bytes);
        expect(decoded).toEqual(obj);
        expect(encodeObject(decoded)).toBe(bytes);
      }),
      { numRuns: 300 },
    );
  });
});
