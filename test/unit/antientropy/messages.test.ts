import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeFetchReply,
  decodeFetchRequest,
  decodeFlags,
  decodeKeysReply,
  decodeLeavesReply,
  decodeObjectItems,
  decodePartitionsRequest,
  decodeRootReply,
  decodeRootRequest,
  encodeFetchReply,
  encodeFetchRequest,
  encodeFlags,
  encodeKeysReply,
  encodeLeavesReply,
  encodeObjectItems,
  encodePartitionsRequest,
  encodeRootReply,
  encodeRootRequest,
  type RootReply,
} from '../../../src/antientropy/messages.js';
import { RingkvError } from '../../../src/errors.js';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const partitions = fc.uniqueArray(fc.integer({ min: 0, max: 65535 }), { maxLength: 300 }).map((a) => a.sort((x, y) => x - y));
const key = fc.string({ minLength: 1, maxLength: 20 });

describe('anti-entropy messages', () => {
  it('round-trip the root request and every root reply', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), u32, fc.uint32Array({ maxLength: 256 }), (checksum, from, root, buckets) => {
        expect(decodeRootRequest(encodeRootRequest({ checksum, from, root }))).toEqual({ checksum, from, root });
        const replies: RootReply[] = [
          { status: 'same' },
          { status: 'differ', buckets },
          { status: 'ring-mismatch', checksum },
        ];
        for (const r of replies) expect(decodeRootReply(encodeRootReply(r))).toEqual(r);
      }),
      { numRuns: 500 },
    );
  });

  it('keep an equal-roots round trip small: a 32-hex checksum request and a 1-byte reply', () => {
    const req = encodeRootRequest({ checksum: 'f'.repeat(32), from: 'node-1', root: 0xffffffff });
    expect(req.length).toBeLessThanOrEqual(1 + 32 + 1 + 6 + 5);
    expect(encodeRootReply({ status: 'same' }).length).toBe(1);
  });

  it('round-trip partition lists as ascending deltas (about a byte each)', () => {
    fc.assert(
      fc.property(partitions, (ps) => {
        expect(decodePartitionsRequest(encodePartitionsRequest(ps))).toEqual(ps);
      }),
      { numRuns: 500 },
    );
    const dense = Array.from({ length: 4096 }, (_, i) => i);
    expect(encodePartitionsRequest(dense).length).toBeLessThan(4096 + 4);
    expect(() => encodePartitionsRequest([3, 3])).toThrow(RangeError);
    expect(() => encodePartitionsRequest([4, 2])).toThrow(RangeError);
  });

  it('round-trip leaves, key lists, fetches, object items and flags', () => {
    fc.assert(
      fc.property(
        fc.uint32Array({ maxLength: 300 }),
        fc.array(fc.uniqueArray(fc.tuple(key, u32), { selector: ([k]) => k, maxLength: 10 }), { maxLength: 10 }),
        fc.array(fc.record({ partition: fc.integer({ min: 0, max: 65535 }), key }), { maxLength: 20 }),
        fc.array(fc.option(fc.uint8Array({ maxLength: 40 }), { nil: undefined }), { maxLength: 20 }),
        fc.array(fc.boolean(), { maxLength: 40 }),
        (leaves, lists, refs, objects, flags) => {
          expect(decodeLeavesReply(encodeLeavesReply(leaves))).toEqual(leaves);
          expect(decodeKeysReply(encodeKeysReply(lists))).toEqual(lists.map((l) => new Map(l)));
          expect(decodeFetchRequest(encodeFetchRequest('sum', refs))).toEqual({ checksum: 'sum', refs });
          expect(decodeFetchReply(encodeFetchReply(objects))).toEqual(objects);
          const items = refs.map((r, i) => ({ ...r, object: Uint8Array.of(i & 0xff, 1, 2) }));
          expect(decodeObjectItems(encodeObjectItems(items))).toEqual(items);
          expect(decodeFlags(encodeFlags(flags))).toEqual(flags);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reject malformed input with BAD_REQUEST instead of guessing', () => {
    const bad = (f: () => unknown): void => {
      try {
        f();
      } catch (err) {
        expect(err).toBeInstanceOf(RingkvError);
        expect((err as RingkvError).code).toBe('BAD_REQUEST');
        return;
      }
      throw new Error('accepted malformed input');
    };
    bad(() => decodeRootReply(Uint8Array.of(9)));
    bad(() => decodeRootRequest(Uint8Array.of(1)));
    bad(() => decodeLeavesReply(Uint8Array.of(3, 1, 2, 3)));
    bad(() => decodeFetchReply(Uint8Array.of(1, 7)));
    bad(() => decodePartitionsRequest(Uint8Array.of(0, 5))); // trailing bytes
    bad(() => decodePartitionsRequest(Uint8Array.of(0xff, 0xff, 0xff, 0x7f))); // absurd count
    // A root above 2^32 is not a hash.
    const w = encodeRootRequest({ checksum: 'c', from: 'n', root: 0 });
    const big = new Uint8Array([...w.subarray(0, w.length - 1), 0x80, 0x80, 0x80, 0x80, 0x20]);
    bad(() => decodeRootRequest(big));
  });
});
