import fc from 'fast-check';
import murmurHash3 from 'murmurhash3js-revisited';
import { describe, expect, it } from 'vitest';
import { keyHash } from '../../../src/ring/index.js';
import { objectKey, parseObjectKey } from '../../../src/storage/keys.js';
import { utf8Length, writeUtf8 } from '../../../src/utf8.js';
import { Reader, Writer } from '../../../src/wire.js';

const enc = new TextEncoder();

describe('utf8Length / writeUtf8', () => {
  it('measure and write exactly what TextEncoder encodes, for any well-formed string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 64 }), fc.nat(8), (s, pos) => {
        const expected = enc.encode(s);
        expect(utf8Length(s)).toBe(expected.length);
        const buf = new Uint8Array(pos + expected.length + 3).fill(0xee);
        expect(writeUtf8(buf, pos, s, expected.length)).toBe(pos + expected.length);
        expect(buf.subarray(pos, pos + expected.length)).toEqual(expected);
        // Nothing outside [pos, end) is touched.
        expect(buf.subarray(0, pos).every((b) => b === 0xee)).toBe(true);
        expect(buf.subarray(pos + expected.length).every((b) => b === 0xee)).toBe(true);
      }),
    );
  });

  it('report -1 for a lone surrogate', () => {
    expect(utf8Length('a\ud800')).toBe(-1);
    expect(utf8Length('\udc00b')).toBe(-1);
    expect(utf8Length('\ud83d\ude00')).toBe(4);
  });
});

describe('Writer.str', () => {
  it('round-trips any well-formed string and lays out the same bytes as before', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 40 }), { maxLength: 8 }), (strs) => {
        const w = new Writer(4);
        for (const s of strs) w.str(s);
        const r = new Reader(w.finish());
        for (const s of strs) expect(r.str()).toBe(s);
        expect(r.done()).toBe(true);
        const old = new Writer(4);
        for (const s of strs) old.bytes(enc.encode(s));
        expect(w.finish()).toEqual(old.finish());
      }),
    );
  });

  it('keeps a leading U+FEFF (a key may start with one; a decoder drops it by default)', () => {
    const r = new Reader(new Writer().str('\ufeffx').str('\ufeff').finish());
    expect(r.str()).toBe('\ufeffx');
    expect(r.str()).toBe('\ufeff');
  });

  it('writes a lone surrogate as U+FFFD, as TextEncoder does', () => {
    const r = new Reader(new Writer().str('x\ud800').finish());
    expect(r.str()).toBe('x\ufffd');
  });
});

describe('keyHash and objectKey without TextEncoder', () => {
  it('keyHash hashes the UTF-8 bytes, also for keys longer than its scratch buffer', () => {
    for (const key of ['a', 'é'.repeat(300), 'x'.repeat(1024), 'x'.repeat(1025), '😀'.repeat(400)]) {
      expect(keyHash(key)).toBe(murmurHash3.x86.hash32(enc.encode(key), 0));
    }
  });

  it('objectKey is the partition then the UTF-8 bytes, and parses back', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }), (p, key) => {
        const bytes = objectKey(p, key);
        expect(bytes.subarray(2)).toEqual(enc.encode(key));
        expect(parseObjectKey(bytes)).toEqual({ partition: p, key });
      }),
    );
  });
});
