import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VERSION_ENTRY_OVERHEAD, VersionCache } from '../../../src/replica/version-cache.js';
import { merge, mint, sameVersion } from '../../../src/version/index.js';
import { objectArb } from '../version/sim.js';

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
    // Charged for the key, the packed version and a fixed overhead: more actors, more bytes.
    const oneActor = new VersionCache(1 << 20);
    oneActor.set(5, 'k', a);
    expect(c.stats.bytes).toBeGreaterThan(oneActor.stats.bytes);
    expect(oneActor.stats.bytes).toBeGreaterThan(1 + VERSION_ENTRY_OVERHEAD);
    c.delete('k');
    expect(c.get(5, 'k')).toBeUndefined();
    expect(c.stats.bytes).toBe(0);
  });

  it('stays within its budget, dropping the oldest keys first', () => {
    const v = mint(undefined, {}, w('a'), 'x', 1).object;
    const probe = new VersionCache(1 << 20);
    probe.set(0, 'k000', v);
    const one = probe.stats.bytes;
    const c = new VersionCache(10 * one);
    for (let i = 0; i < 100; i++) c.set(0, `k${String(i).padStart(3, '0')}`, v);
    expect(c.stats.entries).toBe(10);
    expect(c.stats.bytes).toBeLessThanOrEqual(10 * one);
    expect(c.get(0, 'k089')).toBeUndefined();
    expect(c.get(0, 'k090')).toBeDefined();
    expect(c.get(0, 'k099')).toBeDefined();
  });

  it('gives back exactly the version it was given, whatever the actors hold (digits, separators, any text)', () => {
    fc.assert(
      fc.property(objectArb(), fc.nat(1 << 20), (o, partition) => {
        const c = new VersionCache(1 << 20);
        c.set(partition, 'key', o);
        const got = c.get(partition, 'key');
        expect(got).toBeDefined();
        expect(sameVersion(got!, o)).toBe(true);
        expect(got!.siblings.map((s) => s.dot)).toEqual(o.siblings.map((s) => s.dot));
        expect({ ...got!.clock }).toEqual({ ...o.clock });
        expect(c.get(partition + 1, 'key')).toBeUndefined();
      }),
      { numRuns: 500 },
    );
    const odd = mint(undefined, {}, w('a'), '12:3;4:x', 7).object;
    const c = new VersionCache(1 << 20);
    c.set(3, 'k', odd);
    expect(c.get(3, 'k')!.clock).toEqual(odd.clock);
  });
});
