import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareBytes,
  hintKey,
  hintOwnerRange,
  MAX_PARTITION,
  objectKey,
  objectKeyPartition,
  parseHintKey,
  parseObjectKey,
  partitionRange,
  utf8,
} from '../../../src/storage/keys.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const sign = (n: number): number => Math.sign(n);
const inRange = (k: Uint8Array, r: { gte: Uint8Array; lt: Uint8Array }): boolean =>
  compareBytes(k, r.gte) >= 0 && compareBytes(k, r.lt) < 0;

// Well-formed strings over all of Unicode (astral planes, U+0000, U+FEFF, U+FFFF...).
const anyKey = fc.string({ unit: 'binary', maxLength: 24 });
const partition = fc.integer({ min: 0, max: MAX_PARTITION });
// Partitions clustered at the edges as well as anywhere.
const edgyPartition = fc.oneof(partition, fc.constantFrom(0, 1, 255, 256, MAX_PARTITION - 1, MAX_PARTITION));
const ownerId = fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }).filter((id) => !id.includes('\u0000'));

describe('utf8', () => {
  it('round-trips, including a leading BOM and U+0000', () => {
    for (const text of ['', 'abc', '\ufeffbom', 'a\u0000b', '\u{1f600}', 'é']) {
      expect(utf8.decode(utf8.encode(text))).toBe(text);
    }
    expect(hex(utf8.encode('é'))).toBe('c3a9');
  });

  it('decode rejects malformed UTF-8 instead of substituting', () => {
    expect(() => utf8.decode(Uint8Array.of(0xff))).toThrow(TypeError);
    expect(() => utf8.decode(Uint8Array.of(0xc3))).toThrow(TypeError);
  });
});

describe('compareBytes', () => {
  it('orders byte-wise with a prefix first', () => {
    expect(compareBytes(Uint8Array.of(), Uint8Array.of(0))).toBeLessThan(0);
    expect(compareBytes(Uint8Array.of(1), Uint8Array.of(0, 255))).toBeGreaterThan(0);
    expect(compareBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(0);
    expect(compareBytes(Uint8Array.of(0xff), Uint8Array.of(0xff, 0))).toBeLessThan(0);
  });

  it('agrees with Buffer.compare', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 6 }), fc.uint8Array({ maxLength: 6 }), (a, b) => {
        expect(sign(compareBytes(a, b))).toBe(Buffer.compare(Buffer.from(a), Buffer.from(b)));
      }),
    );
  });
});

describe('objectKey', () => {
  it('is the 2-byte big-endian partition followed by the UTF-8 key', () => {
    expect(hex(objectKey(0x0102, 'ab'))).toBe('01026162');
    expect(hex(objectKey(0, ''))).toBe('0000');
    expect(hex(objectKey(MAX_PARTITION, 'é'))).toBe('ffffc3a9');
  });

  it('round-trips', () => {
    fc.assert(
      fc.property(edgyPartition, anyKey, (p, key) => {
        expect(parseObjectKey(objectKey(p, key))).toEqual({ partition: p, key });
      }),
    );
  });

  it('preserves (partition, key bytes) order', () => {
    fc.assert(
      fc.property(edgyPartition, anyKey, edgyPartition, anyKey, (p1, k1, p2, k2) => {
        const expected = p1 !== p2 ? sign(p1 - p2) : sign(compareBytes(utf8.encode(k1), utf8.encode(k2)));
        expect(sign(compareBytes(objectKey(p1, k1), objectKey(p2, k2)))).toBe(expected);
      }),
    );
  });

  it('rejects partitions outside 0..65535 and keys with lone surrogates', () => {
    for (const p of [-1, 65536, 1.5, Number.NaN]) expect(() => objectKey(p, 'k')).toThrow(RangeError);
    expect(() => objectKey(0, 'a\ud800')).toThrow(TypeError);
    expect(() => objectKey(0, '\udc00b')).toThrow(TypeError);
  });

  it('parseObjectKey rejects bytes too short or not UTF-8', () => {
    expect(() => parseObjectKey(Uint8Array.of(1))).toThrow(RangeError);
    expect(() => parseObjectKey(Uint8Array.of(0, 0, 0xff))).toThrow(TypeError);
  });
});

describe('partitionRange', () => {
  it('contains exactly the keys of its partition', () => {
    fc.assert(
      fc.property(edgyPartition, edgyPartition, anyKey, (p, q, key) => {
        expect(inRange(objectKey(q, key), partitionRange(p))).toBe(p === q);
      }),
    );
  });

  it('works for the first and last partitions', () => {
    expect(inRange(objectKey(0, ''), partitionRange(0))).toBe(true);
    expect(inRange(objectKey(MAX_PARTITION, '\u{10ffff}'.repeat(4)), partitionRange(MAX_PARTITION))).toBe(true);
    expect(() => partitionRange(MAX_PARTITION + 1)).toThrow(RangeError);
  });
});

describe('hintKey', () => {
  it('is the UTF-8 owner id, 0x00, then the object key', () => {
    expect(hex(hintKey('n1', 2, 'k'))).toBe(`${hex(utf8.encode('n1'))}00${hex(objectKey(2, 'k'))}`);
  });

  it('round-trips', () => {
    fc.assert(
      fc.property(ownerId, edgyPartition, anyKey, (owner, p, key) => {
        expect(parseHintKey(hintKey(owner, p, key))).toEqual({ ownerId: owner, partition: p, key });
      }),
    );
  });

  it('orders one owner by (partition, key bytes)', () => {
    fc.assert(
      fc.property(ownerId, edgyPartition, anyKey, edgyPartition, anyKey, (owner, p1, k1, p2, k2) => {
        expect(sign(compareBytes(hintKey(owner, p1, k1), hintKey(owner, p2, k2)))).toBe(
          sign(compareBytes(objectKey(p1, k1), objectKey(p2, k2))),
        );
      }),
    );
  });

  it('hintOwnerRange contains exactly that owner, even when another id extends it', () => {
    const owners = fc.oneof(ownerId, fc.constantFrom('n', 'n1', 'n\u0001', 'n\u0001x', 'm', 'o'));
    fc.assert(
      fc.property(owners, owners, edgyPartition, anyKey, (owner, other, p, key) => {
        expect(inRange(hintKey(other, p, key), hintOwnerRange(owner))).toBe(owner === other);
      }),
    );
    expect(inRange(hintKey('n\u0001', 0, ''), hintOwnerRange('n'))).toBe(false);
  });

  it('rejects empty owner ids, ids with U+0000, and malformed hint keys', () => {
    expect(() => hintKey('', 0, 'k')).toThrow(TypeError);
    expect(() => hintKey('a\u0000b', 0, 'k')).toThrow(TypeError);
    expect(() => hintOwnerRange('a\u0000')).toThrow(TypeError);
    expect(() => parseHintKey(utf8.encode('no separator'))).toThrow(RangeError);
    expect(() => parseHintKey(Uint8Array.of(0, 0, 1))).toThrow(RangeError);
    expect(() => parseHintKey(Uint8Array.of(0x61, 0, 1))).toThrow(RangeError);
  });
});

describe('objectKeyPartition', () => {
  it('is the partition objectKey wrote, for any key', () => {
    fc.assert(fc.property(edgyPartition, anyKey, (p, k) => objectKeyPartition(objectKey(p, k)) === p));
  });

  it('rejects bytes too short to be an object key', () => {
    expect(() => objectKeyPartition(Uint8Array.of(1))).toThrow(RangeError);
  });
});
