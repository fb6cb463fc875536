import { describe, expect, it } from 'vitest';
import { systemRandom } from '../../../src/runtime/random.js';

describe('systemRandom.bytes', () => {
  it('answers the length asked for, small and large, across many pool refills', () => {
    for (const len of [0, 1, 6, 7, 100, 511, 512, 513, 4096, 10_000]) {
      for (let i = 0; i < 50; i++) expect(systemRandom.bytes(len)).toHaveLength(len);
    }
  });

  it('never hands out the same bytes twice, nor a view that later calls change', () => {
    // 2,000 six-byte draws (three pool refills): a repeat of 48 random bits would be a bug.
    const seen = new Set<string>();
    const kept: { copy: Uint8Array; original: Uint8Array }[] = [];
    for (let i = 0; i < 2_000; i++) {
      const b = systemRandom.bytes(6);
      const hex = Buffer.from(b).toString('hex');
      expect(seen.has(hex), `repeat of ${hex} at draw ${i}`).toBe(false);
      seen.add(hex);
      if (i % 100 === 0) kept.push({ copy: b.slice(), original: b });
    }
    for (const { copy, original } of kept) expect(original).toEqual(copy);
  });

  it('is not constant: every byte value turns up in a large enough draw', () => {
    const counts = new Uint32Array(256);
    for (let i = 0; i < 200; i++) for (const x of systemRandom.bytes(64)) counts[x] = (counts[x] ?? 0) + 1;
    expect(counts.every((c) => c > 0)).toBe(true);
  });
});
