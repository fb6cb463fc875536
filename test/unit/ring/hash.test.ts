import murmurHash3 from 'murmurhash3js-revisited';
import { describe, expect, it } from 'vitest';
import { buildRing, keyHash, mix32 } from '../../../src/ring/index.js';
import { seededRandom } from '../../../src/runtime/random.js';

describe('keyHash', () => {
  it('is MurmurHash3 x86 32-bit, seed 0 (published reference vectors)', () => {
    expect(keyHash('')).toBe(0);
    expect(keyHash('hello')).toBe(0x248bfa47);
    expect(keyHash('The quick brown fox jumps over the lazy dog')).toBe(0x2e4ff723);
  });

  it('hashes the UTF-8 bytes of the key', () => {
    expect(keyHash('é')).toBe(murmurHash3.x86.hash32([0xc3, 0xa9], 0));
    expect(keyHash('😀')).toBe(murmurHash3.x86.hash32([0xf0, 0x9f, 0x98, 0x80], 0));
  });

  it('is pinned: changing these values re-partitions every existing cluster', () => {
    expect(keyHash('user:42')).toBe(3349586805);
    expect(keyHash('cart:42')).toBe(1618059682);
    expect(keyHash('ключ')).toBe(2589532226);
    expect(keyHash('😀')).toBe(3199479546);
  });

  it('returns an unsigned 32-bit integer', () => {
    for (const k of ['a', 'b', 'hello', 'user:1', 'x'.repeat(513)]) {
      const h = keyHash(k);
      expect(Number.isInteger(h) && h >= 0 && h <= 0xffffffff).toBe(true);
    }
  });
});

describe('mix32', () => {
  it('is pinned (rendezvous scores depend on it)', () => {
    expect(mix32(0)).toBe(0);
    expect(mix32(1)).toBe(2261973619);
    expect(mix32(2)).toBe(229111015);
    expect(mix32(0xdeadbeef)).toBe(707447538);
    expect(mix32(0xffffffff)).toBe(2578835075);
  });

  it('treats its input as 32 bits and returns an unsigned 32-bit integer', () => {
    expect(mix32(-1)).toBe(mix32(0xffffffff));
    expect(mix32(2 ** 32 + 5)).toBe(mix32(5));
    expect(mix32(-123) >= 0).toBe(true);
  });

  it('has no collisions on 2^16 consecutive inputs (it is a bijection)', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 1 << 16; i++) seen.add(mix32(i));
    expect(seen.size).toBe(1 << 16);
  });

  it('avalanches: flipping one input bit flips about half the output bits', () => {
    const rnd = seededRandom(7);
    let flipped = 0;
    let trials = 0;
    // Also check each output bit separately: none may be stuck or nearly so.
    const perBit = new Array<number>(32).fill(0);
    for (let t = 0; t < 2000; t++) {
      const x = Math.floor(rnd.next() * 2 ** 32);
      const hx = mix32(x);
      for (let b = 0; b < 32; b++) {
        const d = (hx ^ mix32(x ^ (1 << b))) >>> 0;
        for (let o = 0; o < 32; o++) {
          if ((d >>> o) & 1) {
            flipped++;
            perBit[o] = perBit[o]! + 1;
          }
        }
        trials++;
      }
    }
    expect(flipped / trials).toBeGreaterThan(15.5);
    expect(flipped / trials).toBeLessThan(16.5);
    for (const c of perBit) expect(Math.abs(c / trials - 0.5)).toBeLessThan(0.03);
  });
});

/** Pearson's chi-square statistic of bucket counts against a uniform expectation. */
function chiSquare(counts: readonly number[], total: number): number {
  const expected = total / counts.length;
  return counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
}

describe('partitionOf', () => {
  const ring16 = buildRing([], { n: 3 });

  it('is the top bits of keyHash and is pinned', () => {
    expect(ring16.partitions).toBe(65536);
    expect(ring16.partitionOf('')).toBe(0);
    expect(ring16.partitionOf('hello')).toBe(9355);
    expect(ring16.partitionOf('user:42')).toBe(51110);
    expect(ring16.partitionOf('cart:42')).toBe(24689);
    expect(ring16.partitionOf('ключ')).toBe(39513);
    expect(ring16.partitionOf('hello')).toBe(keyHash('hello') >>> 16);
  });

  it('does not depend on the members', () => {
    const ring = buildRing([{ id: 'a', zone: 'z', weight: 1 }], { n: 1 });
    for (const k of ['hello', 'user:42', 'x']) expect(ring.partitionOf(k)).toBe(ring16.partitionOf(k));
  });

  it('with fewer bits is a prefix of the 16-bit partition', () => {
    const ring8 = buildRing([], { n: 3, partitionBits: 8 });
    expect(ring8.partitions).toBe(256);
    for (let i = 0; i < 1000; i++) {
      const key = `k${i}`;
      expect(ring8.partitionOf(key)).toBe(ring16.partitionOf(key) >>> 8);
    }
  });

  // 255 degrees of freedom: mean 255, standard deviation ~22.6. Inputs are fixed, so these are
  // sanity bounds (about ±6σ), not a flaky statistical test.
  const ring8 = buildRing([], { n: 3, partitionBits: 8 });
  const KEYS = 100_000;

  it('spreads random keys uniformly over 256 buckets (chi-square)', () => {
    const rnd = seededRandom(42);
    const counts = new Array<number>(256).fill(0);
    const seen = new Set<string>();
    while (seen.size < KEYS) {
      const key = Buffer.from(rnd.bytes(1 + rnd.int(24))).toString('base64');
      if (seen.has(key)) continue;
      seen.add(key);
      const p = ring8.partitionOf(key);
      counts[p] = counts[p]! + 1;
    }
    const chi = chiSquare(counts, KEYS);
    expect(chi).toBeGreaterThan(120);
    expect(chi).toBeLessThan(390);
  });

  it('spreads sequential structured keys uniformly over 256 buckets (chi-square)', () => {
    const counts = new Array<number>(256).fill(0);
    for (let i = 0; i < KEYS; i++) {
      const p = ring8.partitionOf(`user:${i}`);
      counts[p] = counts[p]! + 1;
    }
    const chi = chiSquare(counts, KEYS);
    expect(chi).toBeGreaterThan(120);
    expect(chi).toBeLessThan(390);
  });
});
