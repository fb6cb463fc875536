import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { coReplicas, jittered, nextPeer, scanRuns, sharedPartitions, TokenBucket } from '../../../src/antientropy/plan.js';
import { buildRing } from '../../../src/ring/index.js';

const members = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `n${i + 1}`, zone: `z${i % 3}`, weight: 1 + (i % 2) }));

describe('sharedPartitions / coReplicas', () => {
  it('is symmetric and equals the brute-force intersection of preference lists', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 4 }), fc.nat(), fc.nat(), (k, n, x, y) => {
        const ring = buildRing(members(k), { n, partitionBits: 6 });
        const a = `n${(x % k) + 1}`;
        const b = `n${(y % k) + 1}`;
        const brute: number[] = [];
        for (let p = 0; p < ring.partitions; p++) {
          const pl = ring.preferenceList(p);
          if (pl.includes(a) && pl.includes(b)) brute.push(p);
        }
        expect(sharedPartitions(ring, a, b)).toEqual(brute);
        expect(sharedPartitions(ring, b, a)).toEqual(brute);
        const peers = coReplicas(ring, a);
        expect(peers).not.toContain(a);
        if (a !== b) expect(peers.includes(b)).toBe(brute.length > 0);
      }),
      { numRuns: 200 },
    );
  });

  it('with n = 3 and three nodes, every pair shares every partition', () => {
    const ring = buildRing(members(3), { n: 3 });
    expect(sharedPartitions(ring, 'n1', 'n2').length).toBe(65536);
    expect(coReplicas(ring, 'n2')).toEqual(['n1', 'n3']);
  });
});

describe('nextPeer', () => {
  it('goes round-robin in id order and skips peers that are down', () => {
    const peers = ['a', 'b', 'c', 'd'];
    const down = new Set(['c']);
    const up = (p: string) => !down.has(p);
    const order: string[] = [];
    let last: string | undefined;
    for (let i = 0; i < 6; i++) {
      last = nextPeer(peers, last, up);
      order.push(last!);
    }
    expect(order).toEqual(['a', 'b', 'd', 'a', 'b', 'd']);
    expect(nextPeer(peers, 'bb', up)).toBe('d'); // a peer that left the list does not reset the order
    expect(nextPeer(peers, undefined, () => false)).toBeUndefined();
    expect(nextPeer([], undefined, up)).toBeUndefined();
  });

  it('visits every up peer within one cycle', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 8 }), (ids) => {
        const peers = [...ids].sort();
        const seen = new Set<string>();
        let last: string | undefined;
        for (let i = 0; i < peers.length; i++) {
          last = nextPeer(peers, last, () => true);
          seen.add(last!);
        }
        expect(seen.size).toBe(peers.length);
      }),
    );
  });
});

describe('jittered', () => {
  it('stays within ±jitter of the interval', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e7 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (ms, j, r) => {
        const d = jittered(ms, j, r);
        expect(d).toBeGreaterThanOrEqual(Math.floor(ms * (1 - j)) - 1);
        expect(d).toBeLessThanOrEqual(Math.ceil(ms * (1 + j)) + 1);
      }),
    );
  });
});

describe('TokenBucket', () => {
  it('grants a burst at once, then paces to the rate', () => {
    const b = new TokenBucket(100, 100, 0);
    expect(b.take(100, 0)).toBe(0);
    expect(b.take(50, 0)).toBe(500); // 50 tokens of debt at 100/s
    expect(b.take(50, 500)).toBe(500); // the debt was paid at 500 ms; 50 more
    expect(b.take(10, 5000)).toBe(0); // refilled (capped at the burst)
  });

  it('never lets more than burst + rate * t keys through in t ms', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 50 }), (batches) => {
        const rate = 200;
        const b = new TokenBucket(rate, rate, 0);
        let now = 0;
        let total = 0;
        for (const n of batches) {
          now += b.take(n, now); // the caller waits as told before doing the work
          total += n;
          expect(total).toBeLessThanOrEqual(rate + (rate * now) / 1000 + 1e-6);
        }
      }),
    );
  });

  it('rejects a non-positive rate', () => {
    expect(() => new TokenBucket(0, 1, 0)).toThrow(RangeError);
  });
});

describe('scanRuns', () => {
  it('covers every partition exactly once, in order, and skips at most the allowed keys per gap', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 511 }), { maxLength: 80 }).map((a) => a.sort((x, y) => x - y)),
        fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 512, maxLength: 512 }),
        fc.integer({ min: 1, max: 64 }),
        (ps, counts, maxSkipped) => {
          const runs = scanRuns(ps, (p) => counts[p]!, maxSkipped);
          const covered = runs.flatMap((r) => ps.filter((p) => p >= r.first && p <= r.last));
          expect(covered).toEqual(ps);
          for (let i = 1; i < runs.length; i++) expect(runs[i]!.first).toBeGreaterThan(runs[i - 1]!.last);
          for (const r of runs) {
            expect(ps).toContain(r.first);
            expect(ps).toContain(r.last);
            // Between consecutive requested partitions in one run, fewer than maxSkipped keys.
            const inside = ps.filter((p) => p >= r.first && p <= r.last);
            for (let i = 1; i < inside.length; i++) {
              let skipped = 0;
              for (let q = inside[i - 1]! + 1; q < inside[i]!; q++) skipped += counts[q]!;
              expect(skipped).toBeLessThan(maxSkipped);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('merges dense requests into one scan and keeps sparse ones apart', () => {
    expect(scanRuns([1, 2, 4, 9], () => 1, 32)).toEqual([{ first: 1, last: 9 }]);
    expect(scanRuns([1, 2, 4, 9], () => 100, 32)).toEqual([
      { first: 1, last: 2 },
      { first: 4, last: 4 },
      { first: 9, last: 9 },
    ]);
    expect(scanRuns([], () => 0)).toEqual([]);
  });
});
