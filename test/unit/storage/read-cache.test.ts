import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { ENTRY_OVERHEAD, MAX_VALUE_BYTES, ReadCache } from '../../../src/storage/read-cache.js';

const k = (s: string): Uint8Array => new TextEncoder().encode(s);
const v = (n: number, fill = 1): Uint8Array => new Uint8Array(n).fill(fill);
const cost = (key: string, n: number): number => key.length + n + ENTRY_OVERHEAD;

describe('ReadCache', () => {
  it('returns what was set, per distinct byte key (binary keys included)', () => {
    const c = new ReadCache(1 << 20);
    const long = new Uint8Array(3000).fill(0xe9);
    c.set(long, v(3, 9));
    expect(c.get(long.slice())).toEqual(v(3, 9));
    expect(c.get(long.subarray(1))).toBeUndefined();
    c.set(k('a'), v(3, 1));
    c.set(new Uint8Array([0, 0xff]), v(3, 2));
    c.set(new Uint8Array([0, 0xfe]), v(3, 3));
    expect(c.get(k('a'))).toEqual(v(3, 1));
    expect(c.get(new Uint8Array([0, 0xff]))).toEqual(v(3, 2));
    expect(c.get(new Uint8Array([0, 0xfe]))).toEqual(v(3, 3));
    expect(c.get(k('b'))).toBeUndefined();
    // A view into a larger buffer is the same key as a standalone copy of its bytes.
    const big = new Uint8Array([9, 9, 0x61, 9]);
    expect(c.get(big.subarray(2, 3))).toEqual(v(3, 1));
  });

  it('charges key, value and overhead, and replacing or deleting a key gives its bytes back', () => {
    const c = new ReadCache(1 << 20);
    c.set(k('a'), v(100));
    expect(c.bytes).toBe(cost('a', 100));
    c.set(k('a'), v(10));
    expect(c.bytes).toBe(cost('a', 10));
    c.delete(k('a'));
    c.delete(k('never'));
    expect(c.bytes).toBe(0);
    expect(c.size).toBe(0);
  });

  it('evicts the oldest entries first (a rewrite keeps its place in line)', () => {
    const one = cost('k0', 50);
    const c = new ReadCache(3 * one);
    c.set(k('k0'), v(50));
    c.set(k('k1'), v(50));
    c.set(k('k2'), v(50));
    c.set(k('k0'), v(50, 7)); // rewritten in place: still the oldest
    expect(c.get(k('k0'))).toEqual(v(50, 7));
    c.set(k('k3'), v(50)); // over budget: the oldest (k0) goes
    expect(c.get(k('k0'))).toBeUndefined();
    expect(c.get(k('k1'))).toEqual(v(50));
    expect(c.get(k('k2'))).toEqual(v(50));
    expect(c.get(k('k3'))).toEqual(v(50));
    expect(c.bytes).toBeLessThanOrEqual(3 * one);
  });

  it('keeps first-in first-out order over many evictions, deletes, rewrites and clears (model check)', () => {
    // A model of the intended order: an array of keys, oldest first. Eviction resumes where it
    // stopped, so this also covers the cache's running iterator going past deleted entries,
    // finishing, and starting over.
    const size = 8;
    const one = cost('k00', 20);
    const c = new ReadCache(size * one);
    const order: string[] = [];
    const values = new Map<string, number>();
    let seed = 7;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let step = 0; step < 5000; step++) {
      const name = `k${String(next(20)).padStart(2, '0')}`;
      const roll = next(100);
      if (roll < 70) {
        const fill = next(250) + 1;
        c.set(k(name), v(20, fill));
        if (!values.has(name)) order.push(name);
        values.set(name, fill);
        while (order.length > size) values.delete(order.shift() as string);
      } else if (roll < 95) {
        c.delete(k(name));
        if (values.delete(name)) order.splice(order.indexOf(name), 1);
      } else if (roll < 96) {
        c.clear();
        order.length = 0;
        values.clear();
      } else {
        for (const key of order) expect(c.get(k(key))).toEqual(v(20, values.get(key)));
      }
      expect(c.size).toBe(order.length);
      expect(c.bytes).toBe(order.length * one);
    }
    for (let i = 0; i < 20; i++) {
      const name = `k${String(i).padStart(2, '0')}`;
      expect(c.get(k(name))).toEqual(values.has(name) ? v(20, values.get(name)) : undefined);
    }
  });

  it('keeps nothing it dropped reachable: a wave of deletes after evictions frees the values', async () => {
    // A full collection on demand, without starting the test process with --expose-gc.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // In a plain function: an async function's suspended frame could keep its last value alive.
    const churn = (): WeakRef<Uint8Array>[] => {
      const one = cost('k0000', 200);
      const c = new ReadCache(500 * one);
      const refs: WeakRef<Uint8Array>[] = [];
      // 2000 inserts through a 500-entry cache: eviction runs (and keeps its iterator) all along.
      for (let i = 0; i < 2000; i++) {
        const value = v(200, i % 251);
        refs.push(new WeakRef(value));
        c.set(k(`k${String(i).padStart(4, '0')}`), value);
      }
      expect(c.size).toBe(500);
      // Then everything goes through delete(), which shrinks the Map into smaller tables.
      for (let i = 1500; i < 2000; i++) c.delete(k(`k${String(i).padStart(4, '0')}`));
      expect(c.size).toBe(0);
      kept.push(c);
      return refs;
    };
    const kept: ReadCache[] = []; // the emptied cache itself stays alive
    const refs = churn();
    // WeakRefs read in this turn stay alive until it ends: collect in a later one.
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
    expect(refs.map((r, i) => (r.deref() === undefined ? -1 : i)).filter((i) => i >= 0)).toEqual([]);
    expect(kept[0]?.size).toBe(0);
  });

  it("keeps no value over MAX_VALUE_BYTES or a sixteenth of its size, and drops the key's old one", () => {
    const c = new ReadCache(16 * 1024, 4096);
    c.set(k('a'), v(10));
    c.set(k('a'), v(1025));
    expect(c.get(k('a'))).toBeUndefined();
    expect(c.bytes).toBe(0);
    const big = new ReadCache(2 ** 40);
    expect(big.maxValueBytes).toBe(MAX_VALUE_BYTES);
    big.set(k('b'), v(MAX_VALUE_BYTES));
    big.set(k('c'), v(MAX_VALUE_BYTES + 1));
    expect(big.get(k('b'))).toEqual(v(MAX_VALUE_BYTES));
    expect(big.get(k('c'))).toBeUndefined();
  });

  it('with size 0 holds nothing; a bad size is refused', () => {
    const c = new ReadCache(0);
    c.set(k('a'), v(0));
    expect(c.size).toBe(0);
    expect(() => new ReadCache(-1)).toThrow(RangeError);
    expect(() => new ReadCache(1.5)).toThrow(RangeError);
  });
});
