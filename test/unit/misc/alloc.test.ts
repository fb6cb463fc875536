import { describe, expect, it } from 'vitest';
import { allocBytes } from '../../../src/alloc.js';

describe('allocBytes', () => {
  it('always returns a plain Uint8Array of the size asked, at every size class', () => {
    for (const n of [0, 1, 64, 65, 300, 4095, 4096, 100_000]) {
      const b = allocBytes(n);
      expect(b.constructor).toBe(Uint8Array);
      expect(b.length).toBe(n);
    }
  });

  it('hands out non-overlapping memory', () => {
    const a = allocBytes(300).fill(1);
    const b = allocBytes(300).fill(2);
    expect(a.every((x) => x === 1)).toBe(true);
    expect(b.every((x) => x === 2)).toBe(true);
  });
});
