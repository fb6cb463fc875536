import { Buffer } from 'node:buffer';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RingkvError } from '../../../src/errors.js';
import type { VersionedObject } from '../../../src/version/index.js';
import { decodeObject, decodeUnlessCorrupt, encodeObject, isCorruptObject, mint, OBJECT_FORMAT } from '../../../src/version/index.js';
import { objectArb, universeArb } from './sim.js';

const RUNS = { numRuns: 1000 };

function corrupt(bytes: Uint8Array): RingkvError {
  let caught: unknown;
  try {
    decodeObject(bytes);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(RingkvError);
  expect((caught as RingkvError).code).toBe('INTERNAL');
  return caught as RingkvError;
}

/** An object with many actors, unicode content types and values of every size class. */
function bigObject(): VersionedObject {
  let obj: VersionedObject | undefined;
  for (let i = 0; i < 300; i++) {
    const write = {
      value: new Uint8Array(i % 7 === 0 ? 0 : i * 3).fill(i),
      contentType: i % 2 ? 'application/json; charset=utf-8' : 'text/ünïcødé; 😀',
      deleted: i % 11 === 0,
    };
    obj = mint(obj, {}, write, `node-${i % 150}.${i}`, 1_700_000_000_000 + i).object;
  }
  return obj!;
}

describe('object codec', () => {
  it('round-trips arbitrary objects', () => {
    fc.assert(
      fc.property(fc.oneof(objectArb(), objectArb({ wellFormed: true }), objectArb({ smallPools: true })), (obj) => {
        const bytes = encodeObject(obj);
        expect(bytes[0]).toBe(OBJECT_FORMAT);
        expect(decodeObject(bytes)).toEqual(obj);
      }),
      RUNS,
    );
  });

  it('round-trips reachable objects and is deterministic', () => {
    fc.assert(
      fc.property(universeArb, (objs) => {
        for (const obj of objs) {
          const bytes = encodeObject(obj);
          const back = decodeObject(bytes);
          expect(back).toEqual(obj);
          expect(encodeObject(back)).toEqual(bytes);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('round-trips a large object with many actors, and stores each actor once', () => {
    const obj = bigObject();
    expect(obj.siblings).toHaveLength(300);
    const bytes = encodeObject(obj);
    expect(decodeObject(bytes)).toEqual(obj);
    const needle = Buffer.from('node-7.7');
    expect(Buffer.from(bytes).indexOf(needle)).toBeGreaterThanOrEqual(0);
    expect(Buffer.from(bytes).indexOf(needle, Buffer.from(bytes).indexOf(needle) + 1)).toBe(-1);
  });

  it('round-trips empty objects, empty values and edge numbers', () => {
    const objs: VersionedObject[] = [
      { clock: {}, siblings: [] },
      { clock: Object.fromEntries([['__proto__', 1]]), siblings: [] },
      {
        clock: { a: Number.MAX_SAFE_INTEGER },
        siblings: [
          {
            dot: { actor: 'a', counter: Number.MAX_SAFE_INTEGER },
            value: new Uint8Array(0),
            contentType: '',
            lastModified: -1.5,
            deleted: true,
          },
        ],
      },
    ];
    for (const obj of objs) expect(decodeObject(encodeObject(obj))).toEqual(obj);
  });

  it('decodes values as views of the input, as plain Uint8Arrays', () => {
    const obj = mint(undefined, {}, { value: new Uint8Array([1, 2, 3]), contentType: 'x', deleted: false }, 'a', 1).object;
    const bytes = Buffer.from(encodeObject(obj));
    const back = decodeObject(bytes);
    const value = back.siblings[0]!.value;
    expect(value.constructor).toBe(Uint8Array);
    expect(value.buffer).toBe(bytes.buffer);
    expect([...value]).toEqual([1, 2, 3]);
  });

  it('decodes from a subarray of a larger buffer', () => {
    fc.assert(
      fc.property(objectArb(), fc.uint8Array({ maxLength: 16 }), fc.uint8Array({ maxLength: 16 }), (obj, pre, post) => {
        const bytes = encodeObject(obj);
        const big = new Uint8Array(pre.length + bytes.length + post.length);
        big.set(pre);
        big.set(bytes, pre.length);
        big.set(post, pre.length + bytes.length);
        expect(decodeObject(big.subarray(pre.length, pre.length + bytes.length))).toEqual(obj);
      }),
      RUNS,
    );
  });

  it('rejects every truncation', () => {
    fc.assert(
      fc.property(objectArb(), fc.nat(), (obj, n) => {
        const bytes = encodeObject(obj);
        corrupt(bytes.subarray(0, n % bytes.length));
      }),
      RUNS,
    );
    const bytes = encodeObject(bigObject());
    for (let n = 0; n < bytes.length; n += 1 + Math.floor(bytes.length / 200)) corrupt(bytes.subarray(0, n));
    corrupt(bytes.subarray(0, bytes.length - 1));
  });

  it('rejects any changed byte', () => {
    fc.assert(
      fc.property(objectArb(), fc.nat(), fc.integer({ min: 1, max: 255 }), (obj, i, delta) => {
        const bytes = new Uint8Array(encodeObject(obj));
        const at = i % bytes.length;
        bytes[at] = (bytes[at]! + delta) & 0xff;
        corrupt(bytes);
      }),
      RUNS,
    );
  });

  it('rejects appended bytes', () => {
    fc.assert(
      fc.property(objectArb(), fc.uint8Array({ minLength: 1, maxLength: 8 }), (obj, extra) => {
        const bytes = encodeObject(obj);
        corrupt(Buffer.concat([bytes, extra]));
      }),
      RUNS,
    );
  });

  it('rejects random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        corrupt(bytes);
      }),
      RUNS,
    );
  });

  it('names the problem in its message, and calls only damage (short, or failing the checksum) corrupt', () => {
    const short = corrupt(new Uint8Array([]));
    expect(short.message).toMatch(/truncated/);
    expect(isCorruptObject(short)).toBe(true);
    // A format this version does not know, with a valid checksum: refused, but not damage.
    const newer = new Uint8Array([9, 0, 0, 0, 0, 0]);
    new DataView(newer.buffer).setUint32(2, crc32(newer.subarray(0, 2)), true);
    const unknown = corrupt(newer);
    expect(unknown.message).toMatch(/unknown format 9/);
    expect(isCorruptObject(unknown)).toBe(false);
    const bytes = new Uint8Array(encodeObject({ clock: { a: 1 }, siblings: [] }));
    bytes[bytes.length - 1]! ^= 1;
    const flipped = corrupt(bytes);
    expect(flipped.message).toMatch(/checksum/);
    expect(isCorruptObject(flipped)).toBe(true);
    expect(isCorruptObject(new Error('corrupt object: checksum mismatch'))).toBe(false);
    // decodeUnlessCorrupt: undefined for damage only.
    expect(decodeUnlessCorrupt(bytes)).toBeUndefined();
    expect(decodeUnlessCorrupt(new Uint8Array([]))).toBeUndefined();
    expect(() => decodeUnlessCorrupt(newer)).toThrow(/unknown format 9/);
    expect(decodeUnlessCorrupt(encodeObject({ clock: { a: 1 }, siblings: [] }))?.clock).toEqual({ a: 1 });
  });

  it('refuses to encode objects that could not round-trip', () => {
    const s = mint(undefined, {}, { value: new Uint8Array([1]), contentType: 'x', deleted: false }, 'a', 1).object.siblings[0]!;
    const bad: VersionedObject[] = [
      { clock: { '': 1 }, siblings: [] },
      { clock: { a: 0 }, siblings: [] },
      { clock: { a: 1.5 }, siblings: [] },
      { clock: { '\uDC00': 1 }, siblings: [] },
      { clock: { a: 1 }, siblings: [s, s] },
      { clock: { a: 1 }, siblings: [{ ...s, dot: { actor: 'a', counter: 0 } }] },
      { clock: { a: 1 }, siblings: [{ ...s, contentType: 'x\uD800' }] },
    ];
    for (const obj of bad) expect(() => encodeObject(obj)).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
  });
});
