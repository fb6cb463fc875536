import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/observability/logger.js';
import { KeyFilter } from '../../../src/replica/key-filter.js';
import { LocalReplica, type LocalReplicaInit } from '../../../src/replica/local-replica.js';
import { seededRandom } from '../../../src/runtime/index.js';
import { MemoryStore, objectKey } from '../../../src/storage/index.js';
import type { Namespace } from '../../../src/storage/store.js';

const write = (v: string) => ({ value: new TextEncoder().encode(v), contentType: 'text/plain', deleted: false });
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('KeyFilter', () => {
  it('gives up past its bound: it answers nothing more and keeps no table', () => {
    // A 1 KiB bound: layers of 256 and 512 bytes (~200 and ~400 keys), no room for a third.
    const f = new KeyFilter(1024);
    f.markComplete();
    for (let i = 0; i < 500; i++) f.add(`key-${i}`);
    expect(f.gaveUp).toBe(false);
    expect(f.bytes).toBe(768);
    expect(f.absent('never-added')).toBe(true);
    for (let i = 500; i < 1000; i++) f.add(`key-${i}`);
    expect(f.gaveUp).toBe(true);
    expect(f.complete).toBe(false);
    expect(f.absent('never-added')).toBe(false);
    expect(f.bytes).toBeLessThan(64);
    f.markComplete();
    expect(f.absent('never-added')).toBe(false);
  });

  it('never calls an added key absent (any strings, any number of layers)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ unit: 'grapheme', maxLength: 40 }), { maxLength: 300 }), (keys) => {
        const f = new KeyFilter();
        for (const k of keys) f.add(k);
        f.markComplete();
        for (const k of keys) expect(f.absent(k)).toBe(false);
      }),
    );
  });

  it('answers nothing until the start scan is marked complete', () => {
    const f = new KeyFilter();
    expect(f.absent('never-added')).toBe(false);
    f.markComplete();
    expect(f.absent('never-added')).toBe(true);
    expect(f.stats).toMatchObject({ hits: 1, misses: 0 });
  });

  it('grows by layers past its first capacity, keeps every key, and rules out nearly all others', () => {
    const f = new KeyFilter();
    const n = 300_000;
    for (let i = 0; i < n; i++) f.add(`key-${i}`);
    f.markComplete();
    // The first layer takes ~105k keys in 128 KiB, the second ~210k in 256 KiB.
    expect(f.bytes).toBe(384 * 1024);
    expect(f.size).toBeGreaterThan(n * 0.99);
    for (let i = 0; i < n; i++) if (f.absent(`key-${i}`)) throw new Error(`key-${i} reported absent`);
    let falsePositives = 0;
    const probes = 100_000;
    for (let i = 0; i < probes; i++) if (!f.absent(`other-${i}`)) falsePositives++;
    // Each layer is built for ~0.8 % when full; two layers stay well under 3 %.
    expect(falsePositives / probes).toBeLessThan(0.03);
  });
});

/** A memory store that counts object reads, and whose key scan can be held back or made to fail. */
class ScanStore extends MemoryStore {
  objectReads = 0;
  scanGate: Promise<void> | undefined;
  failScan = false;
  override async getShared(ns: Namespace, key: Uint8Array): Promise<Uint8Array | undefined> {
    if (ns === 'obj') this.objectReads++;
    return super.getShared(ns, key);
  }
  override async *keys(ns: Namespace): AsyncIterable<Uint8Array> {
    if (ns === 'obj') {
      if (this.scanGate) await this.scanGate;
      if (this.failScan) throw new Error('disk error while scanning');
    }
    yield* super.keys(ns);
  }
}

describe('LocalReplica key filter', () => {
  const stores: MemoryStore[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });

  async function openStore(): Promise<ScanStore> {
    const store = new ScanStore();
    stores.push(store);
    await store.open();
    return store;
  }

  /** A replica on `store`; its warnings go to `warnings`, and `init` adds to its settings. */
  function replicaOn(store: ScanStore, warnings?: string[], init?: Partial<LocalReplicaInit>): LocalReplica {
    const log = silentLogger();
    if (warnings) log.warn = ((_o: unknown, msg?: string) => warnings.push(msg ?? '')) as typeof log.warn;
    return new LocalReplica({ store, random: seededRandom(1), log }, { actor: 'n1.abc', ...init });
  }

  it('writes and reads keys never held here without a store read', async () => {
    const store = await openStore();
    const r = replicaOn(store);
    await r.start();
    await r.keyScanDone;
    expect(r.keyFilterComplete).toBe(true);
    const first = await r.coordinate(0, 'new', {}, write('a'), 1);
    expect(first.dot.actor).toMatch(/^n1\.abc~/); // still a fresh actor: nothing held
    const incoming = await replicaOn(await openStore()).coordinate(0, 'other', {}, write('b'), 2);
    expect((await r.apply(0, 'other', incoming.object)).changed).toBe(true);
    expect(await r.read(0, 'missing')).toBeUndefined();
    expect(await r.readStored(0, 'missing')).toBeUndefined();
    expect(store.objectReads).toBe(0);
    expect(r.keyFilterStats).toMatchObject({ entries: 2, hits: 4 });
    // Keys written since are held: read from the store as before.
    expect(text((await r.read(0, 'new'))!.siblings[0]!.value)).toBe('a');
    expect(store.objectReads).toBe(1);
  });

  it('never treats a key the store held at start as absent: a write merges with it', async () => {
    const store = await openStore();
    const before = replicaOn(store);
    await before.start();
    const stored = await before.coordinate(0, 'k', {}, write('old'), 1);
    // A new replica on the same store (a restart): the scan must find 'k'.
    const r = replicaOn(store);
    await r.start();
    await r.keyScanDone;
    // A write without context must keep the stored sibling, so it has to read it.
    const next = await r.coordinate(0, 'k', {}, write('new'), 2);
    expect(next.object.siblings.map((s) => text(s.value)).sort()).toEqual(['new', 'old']);
    expect(next.object.clock[stored.dot.actor]).toBe(stored.dot.counter);
    expect(store.objectReads).toBeGreaterThan(0);
    // Asked once per write, not again on the way to the store.
    expect(r.keyFilterStats).toMatchObject({ hits: 0, misses: 1 });
  });

  it('answers nothing while its scan runs: absent keys are read from the store meanwhile', async () => {
    const store = await openStore();
    let open!: () => void;
    store.scanGate = new Promise((resolve) => {
      open = resolve;
    });
    const r = replicaOn(store);
    await r.start();
    expect(r.keyFilterComplete).toBe(false);
    await r.coordinate(0, 'a', {}, write('a'), 1);
    expect(store.objectReads).toBe(1);
    open();
    await r.keyScanDone;
    await r.coordinate(0, 'b', {}, write('b'), 2);
    expect(store.objectReads).toBe(1);
    // 'a', written while the scan ran, is held: its next write reads it.
    await r.coordinate(0, 'a', {}, write('a2'), 3);
    expect(store.objectReads).toBe(2);
  });

  it('stays unused if its scan fails, and says so', async () => {
    const store = await openStore();
    store.failScan = true;
    const warnings: string[] = [];
    const r = replicaOn(store, warnings);
    await r.start();
    await r.keyScanDone;
    expect(r.keyFilterComplete).toBe(false);
    expect(warnings.some((w) => w.includes('key filter scan failed'))).toBe(true);
    await r.coordinate(0, 'x', {}, write('x'), 1);
    expect(store.objectReads).toBe(1);
  });

  it('gives up past its bound, during the start scan or on a write, and says so once', async () => {
    const many = 1000; // more than a 1 KiB filter takes (~600 keys)
    const bound = { keyFilterMaxBytes: 1024 };
    const seeded = await openStore();
    await seeded.batch(
      Array.from({ length: many }, (_, i) => ({ type: 'put' as const, ns: 'obj' as const, key: objectKey(0, `k${i}`), value: new Uint8Array(1) })),
    );
    const warnings: string[] = [];
    const r = replicaOn(seeded, warnings, bound);
    await r.start();
    await r.keyScanDone;
    expect(r.keyFilterComplete).toBe(false);
    expect(warnings.filter((w) => w.includes('outgrew its bound'))).toHaveLength(1);
    await r.coordinate(0, 'x', {}, write('x'), 1);
    expect(seeded.objectReads).toBe(1);

    // On writes: the scan finds nothing, then the writes outgrow it.
    const empty = await openStore();
    const w: string[] = [];
    const r2 = replicaOn(empty, w, bound);
    await r2.start();
    await r2.keyScanDone;
    expect(r2.keyFilterComplete).toBe(true);
    const source = replicaOn(await openStore());
    for (let i = 0; i < many; i++) await r2.apply(0, `k${i}`, (await source.coordinate(0, `k${i}`, {}, write('v'), 2)).object);
    expect(r2.keyFilterComplete).toBe(false);
    expect(w.filter((x) => x.includes('outgrew its bound'))).toHaveLength(1);
    const reads = empty.objectReads;
    await r2.coordinate(0, 'y', {}, write('y'), 3);
    expect(empty.objectReads).toBe(reads + 1);
  });

  it('can be turned off', async () => {
    const store = await openStore();
    const r = replicaOn(store, undefined, { keyFilter: false });
    await r.start();
    expect(r.keyScanDone).toBeUndefined();
    expect(r.keyFilterStats).toBeUndefined();
    await r.coordinate(0, 'x', {}, write('x'), 1);
    expect(store.objectReads).toBe(1);
  });
});
