import { describe, expect, it } from 'vitest';
import { VERSION_ENTRY_OVERHEAD, VERSION_PER_DOT, VersionCache } from '../../../src/replica/version-cache.js';
import { merge, mint } from '../../../src/version/index.js';

const w = (v: string) => ({ value: new Uint8Array(4096).fill(v.charCodeAt(0)), contentType: 'text/plain', deleted: false });

describe('VersionCache', () => {
  it('keeps the version without its values, and a key in another partition is a miss', () => {
    const c = new VersionCache(1 << 20);
    const a = mint(undefined, {}, w('a'), 'x', 1).object;
    const both = merge(a, mint(undefined, {}, w('b'), 'y', 2).object);
    c.set(5, 'k', both);
    const got = c.get(5, 'k')!;
    expect(got.clock).toEqual(both.clock);
    expect(got.siblings.map((s) => s.dot)).toEqual(both.siblings.map((s) => s.dot));
    // Nothing but the dot: the 4 KiB values are not kept alive by the cache.
    for (const s of got.siblings) expect(Object.keys(s)).toEqual(['dot']);
    expect(c.get(4, 'k')).toBeUndefined();
    expect(c.get(5, 'other')).toBeUndefined();
    expect(c.stats).toMatchObject({ entries: 1, hits: 1, misses: 2 });
    // Charged per key, clock entry and sibling.
    expect(c.stats.bytes).toBe(1 + VERSION_ENTRY_OVERHEAD + 4 * VERSION_PER_DOT);
    c.delete('k');
    expect(c.get(5, 'k')).toBeUndefined();
    expect(c.stats.bytes).toBe(0);
  });

  it('stays within its budget, dropping the oldest keys first', () => {
    const one = 4 + VERSION_ENTRY_OVERHEAD + 2 * VERSION_PER_DOT;
    const c = new VersionCache(10 * one);
    const v = mint(undefined, {}, w('a'), 'x', 1).object;
    for (let i = 0; i < 100; i++) c.set(0, `k${String(i).padStart(3, '0')}`, v);
    expect(c.stats.entries).toBe(10);
    expect(c.stats.bytes).toBeLessThanOrEqual(10 * one);
    expect(c.get(0, 'k089')).toBeUndefined();
    expect(c.get(0, 'k090')).toBeDefined();
    expect(c.get(0, 'k099')).toBeDefined();
  });
});
