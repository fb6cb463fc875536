import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bucketCount,
  bucketHashes,
  diffBuckets,
  diffKeys,
  diffLeaves,
  HashTree,
  keyVersionHash,
  leafHashes,
  leafOf,
  partitionsInBuckets,
  root,
  treeOf,
} from '../../../src/antientropy/tree.js';

/** Leaf arrays compared as bytes (expect's element-wise deep equality is slow in a hot property). */
function sameLeaves(a: HashTree, b: HashTree): boolean {
  return Buffer.from(a.leaves.buffer).equals(Buffer.from(b.leaves.buffer));
}

/** key -> [partition, digest] */
type Data = Map<string, readonly [number, number]>;

const entriesOf = (d: Data): [number, string, number][] => [...d].map(([k, [p, v]]) => [p, k, v]);

/** The keys of one partition with their digests. */
function keysIn(d: Data, partition: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, [p, v]] of d) if (p === partition) out.set(k, v);
  return out;
}

/**
 * Partitions drawn from a few values per bucket, across a few buckets, so keys share leaves
 * and leaves share buckets (the cases where XOR could hide a difference).
 */
function partitionArb(partitions: number): fc.Arbitrary<number> {
  const per = partitions / bucketCount(partitions);
  return fc
    .tuple(fc.integer({ min: 0, max: Math.min(3, bucketCount(partitions) - 1) }), fc.integer({ min: 0, max: Math.min(2, per - 1) }))
    .map(([b, i]) => b * per + i);
}

const keyArb = fc.oneof(fc.string({ maxLength: 6 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 4 }));
const digestArb = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 0xffffffff }));

const allCache = new Map<number, number[]>();
function allPartitions(partitions: number): number[] {
  let all = allCache.get(partitions);
  if (!all) {
    all = Array.from({ length: partitions }, (_, i) => i);
    allCache.set(partitions, all);
  }
  return all;
}

/** A base data set, and a second one that differs from it in exactly the keys of D. */
const pairArb = (partitions: number) =>
  fc
    .record({
      base: fc.uniqueArray(fc.tuple(keyArb, partitionArb(partitions), digestArb), { selector: ([k]) => k, maxLength: 40 }),
      added: fc.uniqueArray(fc.tuple(keyArb, partitionArb(partitions), digestArb), { selector: ([k]) => k, maxLength: 6 }),
      changes: fc.array(fc.tuple(fc.nat(), fc.boolean(), digestArb), { maxLength: 8 }),
      shared: fc.subarray(Array.from({ length: Math.min(partitions, 64) }, (_, i) => i), { minLength: 0 }),
      sharedAll: fc.boolean(),
    })
    .map(({ base, added, changes, shared, sharedAll }) => {
      const a: Data = new Map(base.map(([k, p, v]) => [k, [p, v] as const]));
      const b: Data = new Map(a);
      const d = new Set<string>();
      // Changes: delete a key from b, or give it another version in b.
      const keys = [...a.keys()];
      for (const [i, del, v] of changes) {
        if (keys.length === 0) break;
        const k = keys[i % keys.length]!;
        const [p, old] = a.get(k)!;
        if (del) {
          b.delete(k);
          d.add(k);
        } else if (v !== old) {
          b.set(k, [p, v]);
          d.add(k);
        }
      }
      // Keys only b holds.
      for (const [k, p, v] of added) {
        if (a.has(k)) continue;
        b.set(k, [p, v]);
        d.add(k);
      }
      return { a, b, d, shared: sharedAll ? allPartitions(partitions) : shared, sharedAll };
    });

/** Everything an exchange does, on two in-memory trees: root -> buckets -> leaves -> keys. */
function exchange(ta: HashTree, tb: HashTree, a: Data, b: Data, shared: readonly number[]) {
  const ba = bucketHashes(ta, shared);
  const bb = bucketHashes(tb, shared);
  const rootsDiffer = root(ba) !== root(bb);
  const buckets = diffBuckets(ba, bb);
  const candidates = partitionsInBuckets(ta, shared, buckets);
  const partitions = diffLeaves(candidates, leafHashes(ta, candidates), leafHashes(tb, candidates));
  const keys = new Set<string>();
  for (const p of partitions) for (const k of diffKeys(keysIn(a, p), keysIn(b, p))) keys.add(k);
  return { rootsDiffer, buckets, partitions, keys };
}

describe('keyVersionHash', () => {
  it('is a bijection of the digest for a fixed key: two versions of a key never cancel', () => {
    fc.assert(
      fc.property(keyArb, digestArb, digestArb, (k, x, y) => {
        fc.pre(x !== y);
        expect(keyVersionHash(k, x)).not.toBe(keyVersionHash(k, y));
      }),
      { numRuns: 2000 },
    );
  });

  it('is an unsigned 32-bit value, and depends on the key', () => {
    fc.assert(
      fc.property(keyArb, keyArb, digestArb, (k1, k2, d) => {
        const h = keyVersionHash(k1, d);
        expect(Number.isInteger(h) && h >= 0 && h <= 0xffffffff).toBe(true);
        if (k1 !== k2) expect(keyVersionHash(k2, d)).not.toBe(h); // a 2^-32 coincidence would flake once in 4e9 runs
      }),
      { numRuns: 2000 },
    );
  });

  it('distinguishes keys that are permutations or prefixes of each other (pinned)', () => {
    const hs = ['ab', 'ba', 'a', 'a\u0000', '', 'é', 'e\u0301'].map((k) => keyVersionHash(k, 7));
    expect(new Set(hs).size).toBe(hs.length);
  });
});

describe('HashTree', () => {
  it.each([65536, 256, 16, 1])('lays out %i partitions in at most 256 buckets', (partitions) => {
    const t = new HashTree(partitions);
    expect(t.buckets).toBe(Math.min(256, partitions));
    let covered = 0;
    let misplaced = 0;
    for (let b = 0; b < t.buckets; b++) {
      const { first, end } = t.bucketRange(b);
      expect(first).toBe(covered);
      for (let p = first; p < end; p++) if (t.bucketOf(p) !== b) misplaced++;
      covered = end;
    }
    expect(misplaced).toBe(0);
    expect(covered).toBe(partitions);
  });

  it('rejects partition counts that are not powers of two, and partitions out of range', () => {
    expect(() => new HashTree(100)).toThrow(RangeError);
    expect(() => new HashTree(0)).toThrow(RangeError);
    const t = new HashTree(16);
    expect(() => t.toggle(16, 'k', 1)).toThrow(RangeError);
    expect(() => t.toggle(-1, 'k', 1)).toThrow(RangeError);
  });

  it('uses 256 KiB of leaves for 65536 partitions', () => {
    expect(new HashTree(65536).leaves.byteLength).toBe(256 * 1024);
  });
});

describe('tree diff (property)', () => {
  for (const partitions of [65536, 256, 16]) {
    it(`finds exactly the partitions, then exactly the keys, that differ (${partitions} partitions)`, () => {
      fc.assert(
        fc.property(pairArb(partitions), ({ a, b, d, shared, sharedAll }) => {
          const ta = treeOf(partitions, entriesOf(a));
          const tb = treeOf(partitions, entriesOf(b));
          const inShared = sharedAll ? { has: () => true } : new Set(shared);
          const expectedKeys = new Set([...d].filter((k) => inShared.has((a.get(k) ?? b.get(k))![0])));
          const expectedPartitions = new Set([...expectedKeys].map((k) => (a.get(k) ?? b.get(k))![0]));

          const got = exchange(ta, tb, a, b, shared);
          expect(got.rootsDiffer).toBe(expectedKeys.size > 0);
          expect(new Set(got.buckets)).toEqual(new Set([...expectedPartitions].map((p) => ta.bucketOf(p))));
          expect(new Set(got.partitions)).toEqual(expectedPartitions);
          expect(got.keys).toEqual(expectedKeys);
        }),
        { numRuns: partitions === 65536 ? 500 : 1000 },
      );
    });
  }

  it('identical data sets agree at the root, whatever the shared set', () => {
    fc.assert(
      fc.property(pairArb(256), ({ a, shared }) => {
        const t1 = treeOf(256, entriesOf(a));
        const t2 = treeOf(256, entriesOf(new Map([...a].reverse())));
        expect(root(bucketHashes(t1, shared))).toBe(root(bucketHashes(t2, shared)));
        expect(diffBuckets(bucketHashes(t1, shared), bucketHashes(t2, shared))).toEqual([]);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('tree algebra (property)', () => {
  const opArb = fc.array(
    fc.tuple(fc.constantFrom('k1', 'k2', 'k3', 'k4', 'k5', 'x', ''), partitionArb(256), fc.option(digestArb, { nil: undefined })),
    { maxLength: 60 },
  );

  it('incremental updates (leaf ^= h(k, before) ^ h(k, after)) equal a rebuild', () => {
    fc.assert(
      fc.property(opArb, (ops) => {
        const tree = new HashTree(256);
        const state: Data = new Map();
        for (const [k, pNew, digest] of ops) {
          // A key stays in its partition (the partition is a function of the key).
          const p = state.get(k)?.[0] ?? pNew;
          const before = state.get(k)?.[1];
          tree.update(p, k, before, digest);
          if (digest === undefined) state.delete(k);
          else state.set(k, [p, digest]);
        }
        expect(sameLeaves(tree, treeOf(256, entriesOf(state)))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('is independent of insertion order (XOR)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(keyArb, partitionArb(256), digestArb), { selector: ([k]) => k, maxLength: 40 }),
        fc.infiniteStream(fc.nat()),
        (entries, rnd) => {
          const shuffled = entries
            .map((e) => [rnd.next().value as number, e] as const)
            .sort((x, y) => x[0] - y[0])
            .map(([, e]) => e);
          const t1 = treeOf(256, entries.map(([k, p, d]) => [p, k, d]));
          const t2 = treeOf(256, shuffled.map(([k, p, d]) => [p, k, d]));
          expect(sameLeaves(t1, t2)).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('a leaf equals leafOf its partition entries, and root equals the XOR of all leaves in the shared set', () => {
    fc.assert(
      fc.property(pairArb(256), ({ a, shared }) => {
        const t = treeOf(256, entriesOf(a));
        let x = 0;
        const wrong: number[] = [];
        for (const p of shared) {
          if (t.leaf(p) !== leafOf(keysIn(a, p))) wrong.push(p);
          x ^= t.leaf(p);
        }
        expect(wrong).toEqual([]);
        expect(root(bucketHashes(t, shared))).toBe(x >>> 0);
      }),
      { numRuns: 1000 },
    );
  });

  it('toggling a key version twice removes it', () => {
    fc.assert(
      fc.property(keyArb, partitionArb(65536), digestArb, (k, p, d) => {
        const t = new HashTree(65536);
        t.toggle(p, k, d);
        expect(t.leaf(p)).toBe(keyVersionHash(k, d));
        t.toggle(p, k, d);
        expect(t.leaf(p)).toBe(0);
      }),
      { numRuns: 200 },
    );
  });
});

describe('diff helpers', () => {
  it('diffKeys reports keys missing on either side and keys with different digests', () => {
    const a = new Map([
      ['same', 1],
      ['changed', 2],
      ['onlyA', 3],
    ]);
    const b = new Map([
      ['same', 1],
      ['changed', 9],
      ['onlyB', 4],
    ]);
    expect(new Set(diffKeys(a, b))).toEqual(new Set(['changed', 'onlyA', 'onlyB']));
  });

  it('diffLeaves maps differing positions back to partitions, and checks lengths', () => {
    expect(diffLeaves([3, 7, 9], Uint32Array.of(1, 2, 3), Uint32Array.of(1, 5, 3))).toEqual([7]);
    expect(() => diffLeaves([3], Uint32Array.of(1, 2), Uint32Array.of(1, 2))).toThrow(RangeError);
    expect(() => diffBuckets(new Uint32Array(2), new Uint32Array(3))).toThrow(RangeError);
  });
});
