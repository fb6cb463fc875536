import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/observability/logger.js';
import { DECODED_ENTRY_OVERHEAD } from '../../../src/replica/decoded-cache.js';
import { LocalReplica } from '../../../src/replica/local-replica.js';
import { seededRandom } from '../../../src/runtime/index.js';
import { hintKey, MemoryStore, objectKey } from '../../../src/storage/index.js';
import type { BatchOp, Namespace } from '../../../src/storage/store.js';
import { decodeObject, merge, type VersionedObject, type VersionVector, versionDigest } from '../../../src/version/index.js';
import { RottableStore, rotStoredObject } from '../../helpers/rot.js';

const write = (v: string) => ({ value: new TextEncoder().encode(v), contentType: 'text/plain', deleted: false });

/**
 * A memory store whose next batch fails (a disk error), to provoke the failure path, and
 * which counts object reads.
 */
class FlakyStore extends MemoryStore {
  failNext = false;
  objectReads = 0;
  override async batch(ops: readonly BatchOp[]): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('disk error');
    }
    return super.batch(ops);
  }
  failReads = false;
  override async getShared(ns: Namespace, key: Uint8Array): Promise<Uint8Array | undefined> {
    if (ns === 'obj') this.objectReads++;
    if (this.failReads) throw new Error('disk read error');
    return super.getShared(ns, key);
  }
}

describe('LocalReplica', () => {
  const stores: (MemoryStore | RottableStore)[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });

  /** A started replica on `store` (opened here, closed after the test). */
  async function on<S extends MemoryStore | RottableStore>(store: S): Promise<{ r: LocalReplica; store: S }> {
    stores.push(store);
    await store.open();
    const r = new LocalReplica({ store, random: seededRandom(1), log: silentLogger() }, { actor: 'n1.abc' });
    await r.start();
    return { r, store };
  }

  const replica = (): Promise<{ r: LocalReplica; store: FlakyStore }> => on(new FlakyStore());

  it('counts hints only once they are durable, and a failed write parks none', async () => {
    const { r, store } = await replica();
    await r.coordinate(0, 'k', {}, write('a'), 1, ['n2']);
    expect(r.pendingHints).toBe(1);
    // The same owner and key again: one hint, not two.
    await r.addHints(0, 'k', ['n2']);
    expect(r.pendingHints).toBe(1);
    store.failNext = true;
    await expect(r.coordinate(0, 'k2', {}, write('b'), 2, ['n3'])).rejects.toThrow('disk error');
    expect(r.pendingHints).toBe(1);
    expect(await r.read(0, 'k2')).toBeUndefined();
    store.failNext = true;
    await expect(r.addHints(0, 'k', ['n4'])).rejects.toThrow('disk error');
    expect(r.pendingHints).toBe(1);
  });

  it('clears a hint only while it still carries the change counter delivery read', async () => {
    const { r, store } = await replica();
    const hk = hintKey('n2', 0, 'k');
    await r.coordinate(0, 'k', {}, write('a'), 1, ['n2']);
    const read = (await store.get('hint', hk)) as Uint8Array;
    expect(read).toBeDefined();
    // A newer write re-parks the hint while the old copy is on its way.
    const second = await r.coordinate(0, 'k', (await r.read(0, 'k'))!.clock, write('b'), 2, ['n2']);
    const now = (await store.get('hint', hk)) as Uint8Array;
    expect(Buffer.from(now).equals(Buffer.from(read))).toBe(false);
    expect(await r.clearHint('n2', 0, 'k', read)).toBe(false);
    expect(await store.get('hint', hk)).toEqual(now);
    expect(r.pendingHints).toBe(1);
    // The counter of the newest hint clears it; a hint that is gone is not counted twice.
    expect(await r.clearHint('n2', 0, 'k', now)).toBe(true);
    expect(await store.get('hint', hk)).toBeUndefined();
    expect(r.pendingHints).toBe(0);
    expect(await r.clearHint('n2', 0, 'k', now)).toBe(false);
    expect(r.pendingHints).toBe(0);
    expect(second.object.siblings).toHaveLength(1);
  });

  /** The stored copy of `key` (partition 0) rots on disk. */
  const rot = (store: MemoryStore, key: string): Promise<void> => rotStoredObject(store, objectKey(0, key));

  it('a write replaces a stored copy that rotted on disk, and tells the listeners what it replaced', async () => {
    const { r, store } = await replica();
    const seen: { before: unknown; replacedCorrupt: boolean }[] = [];
    r.onWrite((_p, _k, before, _after, replacedCorrupt) => seen.push({ before, replacedCorrupt }));
    const first = await r.coordinate(0, 'k', {}, write('a'), 1);
    await rot(store, 'k');
    await expect(r.read(0, 'k')).rejects.toThrow(/corrupt object/);
    // A replica write: verified against the store (as anti-entropy's are), so the version
    // cache's memory of the old copy does not hide the rot.
    const incoming = (await (await replica()).r.coordinate(0, 'k', first.object.clock, write('b'), 2)).object;
    expect((await r.apply(0, 'k', incoming, [], true)).changed).toBe(true);
    expect((await r.read(0, 'k'))!.siblings.map((x) => new TextDecoder().decode(x.value))).toEqual(['b']);
    expect(seen.at(-1)).toEqual({ before: undefined, replacedCorrupt: true });
    // After a restart (nothing cached), a coordinated write over a rotten copy mints under a
    // fresh actor, as for a key never held: its own earlier dots for the key are unknown.
    // (With the version cached, the write replaces the copy from what the cache knows.)
    await rot(store, 'k');
    const restarted = new LocalReplica({ store, random: seededRandom(2), log: silentLogger() }, { actor: 'n1.abc' });
    await restarted.start();
    const context = incoming.clock;
    const again = await restarted.coordinate(0, 'k', context, write('c'), 3);
    expect(again.dot.actor).toMatch(/^n1\.abc~/);
    expect((await restarted.read(0, 'k'))!.siblings.map((x) => new TextDecoder().decode(x.value))).toEqual(['c']);
  });

  it('a verified write reads past the store\'s read cache: a copy that rotted beneath it is replaced, not merged with the cached bytes', async () => {
    const { r, store } = await on(new RottableStore());
    const first = await r.coordinate(0, 'k', {}, write('a'), 1);
    expect((await r.read(0, 'k'))!.siblings).toHaveLength(1); // the store caches the bytes it read
    await store.rotBeneathCache(objectKey(0, 'k'));
    // The cache still hides the damage from readers...
    expect((await r.read(0, 'k'))!.siblings).toHaveLength(1);
    const [onDisk] = await store.getMany('obj', [objectKey(0, 'k')]);
    expect(() => decodeObject(onDisk!)).toThrow(/corrupt object/);
    // ...but not from a verified write (anti-entropy's repairs, read repair of a damaged copy):
    // the same version again replaces the damaged copy with a healthy one.
    expect((await r.apply(0, 'k', first.object, [], true)).changed).toBe(true);
    const [repaired] = await store.getMany('obj', [objectKey(0, 'k')]);
    expect(decodeObject(repaired!).siblings.map((x) => new TextDecoder().decode(x.value))).toEqual(['a']);
  });

  it('forgetCached makes the next plain write read the store, so it sees a damaged copy and says it replaced one', async () => {
    const { r, store } = await on(new RottableStore());
    const seen: boolean[] = [];
    r.onWrite((_p, _k, _before, _after, replacedCorrupt) => seen.push(replacedCorrupt));
    const first = await r.coordinate(0, 'k', {}, write('a'), 1);
    await r.read(0, 'k');
    await store.rotBeneathCache(objectKey(0, 'k'));
    r.forgetCached(0, 'k');
    const incoming = (await (await replica()).r.coordinate(0, 'k', first.object.clock, write('b'), 2)).object;
    expect((await r.apply(0, 'k', incoming)).changed).toBe(true);
    expect(seen).toEqual([false, true]);
    const [stored] = await store.getMany('obj', [objectKey(0, 'k')]);
    expect(decodeObject(stored!).siblings.map((x) => new TextDecoder().decode(x.value))).toEqual(['b']);
  });

  it('forgetCached also waits for a write in progress: what that write read from the cache is not remembered', async () => {
    class GatedStore extends RottableStore {
      gate: Promise<void> | undefined;
      override async getShared(ns: Namespace, key: Uint8Array): Promise<Uint8Array | undefined> {
        const bytes = await super.getShared(ns, key);
        await this.gate;
        return bytes;
      }
    }
    const { r, store } = await on(new GatedStore());
    const first = await r.coordinate(0, 'k', {}, write('a'), 1);
    await r.read(0, 'k');
    await store.rotBeneathCache(objectKey(0, 'k'));
    // A write of the same version (a no-op) reads the cached, healthy bytes, and is held there.
    let release!: () => void;
    store.gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    // Restarted: its version cache is empty, the store's read cache still warm.
    const restarted = new LocalReplica({ store, random: seededRandom(2), log: silentLogger() }, { actor: 'n1.abc' });
    await restarted.start();
    const noop = restarted.apply(0, 'k', first.object);
    await new Promise<void>((resolve) => setImmediate(resolve));
    restarted.forgetCached(0, 'k'); // a scan found the damage meanwhile
    release();
    expect((await noop).changed).toBe(false);
    await new Promise<void>((resolve) => setImmediate(resolve));
    // The no-op remembered the healthy version it read; the forget queued behind it dropped it.
    expect(restarted.cachedVersion(0, 'k')).toBeUndefined();
  });

  it('a read error that is not corruption still fails the write, and replaces nothing', async () => {
    const { r, store } = await replica();
    await r.coordinate(0, 'k', {}, write('a'), 1);
    const incoming = (await (await replica()).r.coordinate(0, 'k', {}, write('b'), 2)).object;
    store.failReads = true;
    await expect(r.apply(0, 'k', incoming, [], true)).rejects.toThrow('disk read error');
    store.failReads = false;
    expect((await r.read(0, 'k'))!.siblings.map((x) => new TextDecoder().decode(x.value))).toEqual(['a']);
  });

  it('mints under a fresh actor when it holds nothing for the key, then under its own', async () => {
    const { r } = await replica();
    const first = await r.coordinate(0, 'k', {}, write('a'), 1);
    expect(first.dot.actor).toMatch(/^n1\.abc~/);
    const second = await r.coordinate(0, 'k', first.object.clock, write('b'), 2);
    expect(second.dot.actor).toBe('n1.abc');
    expect(second.object.siblings).toHaveLength(1);
  });
});

describe('LocalReplica version cache', () => {
  const stores: MemoryStore[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });

  async function replica(versionCacheBytes?: number, actor = 'n1.abc'): Promise<{ r: LocalReplica; store: FlakyStore }> {
    const store = new FlakyStore();
    stores.push(store);
    await store.open();
    // No key filter: these count the store reads the version cache saves, new keys included.
    const init = versionCacheBytes === undefined ? { actor, keyFilter: false } : { actor, versionCacheBytes, keyFilter: false };
    const r = new LocalReplica({ store, random: seededRandom(1), log: silentLogger() }, init);
    await r.start();
    return { r, store };
  }

  it('writes without reading the old copy when a newer version arrives or the context covers it', async () => {
    const { r, store } = await replica();
    const { r: other } = await replica(0, 'n2.abc');
    const first = await r.coordinate(0, 'k', {}, write('a'), 1);
    expect(store.objectReads).toBe(1); // a new key: nothing known, so it reads (and finds nothing)
    const second = await r.coordinate(0, 'k', first.object.clock, write('b'), 2);
    // A newer version made elsewhere from this one.
    await other.apply(0, 'k', second.object);
    const third = await other.coordinate(0, 'k', second.object.clock, write('c'), 3);
    expect(await r.apply(0, 'k', third.object)).toEqual({ object: third.object, changed: true });
    // The same version again (a retried replica write): nothing changes, nothing is read.
    expect((await r.apply(0, 'k', third.object)).changed).toBe(false);
    expect(store.objectReads).toBe(1);
    expect(r.versionCacheStats).toMatchObject({ entries: 1, hits: 3, misses: 1 });
    // An older version, or a write whose context misses a sibling, needs the values: it reads.
    expect((await r.apply(0, 'k', first.object)).changed).toBe(false);
    expect(store.objectReads).toBe(2);
    await r.coordinate(0, 'k', {}, write('d'), 4);
    expect(store.objectReads).toBe(3);
    expect((await r.read(0, 'k'))!.siblings.map((x) => new TextDecoder().decode(x.value))).toEqual(['d', 'c']);
  });

  it('reads the store when the cache is off, and after a write whose outcome is unknown', async () => {
    const { r: off, store: offStore } = await replica(0);
    const a = await off.coordinate(0, 'k', {}, write('a'), 1);
    await off.coordinate(0, 'k', a.object.clock, write('b'), 2);
    expect(offStore.objectReads).toBe(2);
    expect(off.versionCacheStats).toBeUndefined();

    const { r, store } = await replica();
    const v1 = await r.coordinate(0, 'k', {}, write('a'), 1);
    store.failNext = true;
    await expect(r.coordinate(0, 'k', v1.object.clock, write('b'), 2)).rejects.toThrow('disk error');
    const reads = store.objectReads;
    await r.coordinate(0, 'k', v1.object.clock, write('c'), 3);
    expect(store.objectReads).toBe(reads + 1);
  });

  it('is keyed by partition too: the same key in another partition is another object', async () => {
    const { r, store } = await replica();
    const a = await r.coordinate(0, 'k', {}, write('a'), 1);
    const b = await r.coordinate(1, 'k', {}, write('b'), 2);
    const reads = store.objectReads;
    await r.coordinate(0, 'k', a.object.clock, write('a2'), 3);
    expect(store.objectReads).toBe(reads + 1);
    expect((await r.read(1, 'k'))!.clock).toEqual(b.object.clock);
    expect((await r.read(0, 'k'))!.siblings).toHaveLength(1);
  });

  it('gives exactly what a replica without it gives, over any mix of writes, merges, drops, reaps and failures (model check)', async () => {
    const key = fc.constantFrom('a', 'b', 'c');
    const op = fc.oneof(
      fc.record({ t: fc.constant('mint' as const), key, part: fc.nat(1), ctx: fc.nat(3), del: fc.boolean() }),
      fc.record({ t: fc.constant('remote' as const), key, part: fc.nat(1), ctx: fc.nat(3) }),
      fc.record({ t: fc.constant('apply' as const), key, part: fc.nat(1), pick: fc.nat(40) }),
      fc.record({ t: fc.constant('drop' as const), key, part: fc.nat(1), pick: fc.nat(40) }),
      fc.record({ t: fc.constant('reap' as const), key, part: fc.nat(1), pick: fc.nat(40) }),
      fc.record({ t: fc.constant('fail' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        // The cache holds about four entries here, so evictions happen all along.
        const sides = [await replica(1600), await replica(0)];
        const remote = await replica(0, 'n2.abc');
        const events: string[][] = [[], []];
        sides.forEach(({ r }, i) => {
          r.onWrite((p, k, before, after) => {
            events[i]!.push(`${p}/${k} ${before === undefined ? '-' : versionDigest(before)} ${after === undefined ? '-' : versionDigest(after)}`);
          });
        });
        // Versions seen so far (for contexts, incoming versions and expectations).
        const pool: VersionedObject[] = [];
        const pick = (n: number): VersionedObject | undefined => pool[n % Math.max(1, pool.length)];
        const contextFor = async (n: number, p: number, k: string): Promise<VersionVector> => {
          if (n === 0) return {};
          if (n === 1) return (await sides[1]!.r.read(p, k))?.clock ?? {};
          return pick(n)?.clock ?? {};
        };
        let now = 0;
        for (const o of ops) {
          now++;
          if (o.t === 'fail') {
            for (const { store } of sides) store.failNext = true;
            continue;
          }
          const outcome = async (f: (r: LocalReplica) => Promise<unknown>) => {
            const results = [];
            for (const { r } of sides) results.push(await f(r).then((v) => ({ ok: v }), (e: Error) => ({ err: e.message })));
            expect(results[0]).toEqual(results[1]);
            return results[0] as { ok?: unknown };
          };
          if (o.t === 'mint') {
            const ctx = await contextFor(o.ctx, o.part, o.key);
            const w = { ...write(`v${now}`), deleted: o.del };
            const res = await outcome((r) => r.coordinate(o.part, o.key, ctx, w, now));
            if (res.ok) pool.push((res.ok as { object: VersionedObject }).object);
          } else if (o.t === 'remote') {
            // A version minted on another replica, from what that one holds merged with ours.
            const ours = await sides[1]!.r.read(o.part, o.key);
            if (ours) await remote.r.apply(o.part, o.key, ours);
            const ctx = await contextFor(o.ctx, o.part, o.key);
            pool.push((await remote.r.coordinate(o.part, o.key, ctx, write(`r${now}`), now)).object);
          } else if (o.t === 'apply') {
            const incoming = pick(o.pick);
            const other = pick(o.pick + 1);
            if (incoming === undefined) continue;
            // Sometimes a merge of two known versions (as read repair sends).
            const version = other !== undefined && o.pick % 3 === 0 ? merge(incoming, other) : incoming;
            await outcome((r) => r.apply(o.part, o.key, version));
          } else {
            const current = await sides[1]!.r.read(o.part, o.key);
            const expected = o.pick % 2 === 0 && current ? current : pick(o.pick);
            if (expected === undefined) continue;
            await outcome((r) => (o.t === 'drop' ? r.dropIfSame(o.part, o.key, expected) : r.reap(o.part, o.key, expected)));
          }
          expect(events[0]).toEqual(events[1]);
          for (const k of ['a', 'b', 'c']) {
            for (const p of [0, 1]) expect(await sides[0]!.r.read(p, k)).toEqual(await sides[1]!.r.read(p, k));
          }
        }
        for (const { store } of [...sides, remote]) await store.close();
        stores.splice(0);
      }),
      { numRuns: 300 },
    );
  });
});

describe('LocalReplica decoded-object cache', () => {
  const stores: MemoryStore[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });

  const text = (o: VersionedObject | undefined): string[] => (o?.siblings ?? []).map((x) => new TextDecoder().decode(x.value));

  async function replica(opts: { objectCacheBytes?: number; decodedCacheBytes?: number } = {}): Promise<{ r: LocalReplica; store: MemoryStore }> {
    const store = new MemoryStore(opts.objectCacheBytes === undefined ? {} : { objectCacheBytes: opts.objectCacheBytes });
    stores.push(store);
    await store.open();
    const init = opts.decodedCacheBytes === undefined ? { actor: 'n1.abc' } : { actor: 'n1.abc', decodedCacheBytes: opts.decodedCacheBytes };
    const r = new LocalReplica({ store, random: seededRandom(1), log: silentLogger() }, init);
    await r.start();
    return { r, store };
  }

  it('hands out the same decoded object while the store hands out the same bytes', async () => {
    const { r } = await replica({ objectCacheBytes: 1 << 20 });
    await r.coordinate(0, 'k', {}, write('a'), 1);
    const first = await r.read(0, 'k');
    expect(text(first)).toEqual(['a']);
    expect(await r.read(0, 'k')).toBe(first);
    expect(r.decodedCacheStats).toMatchObject({ entries: 1, hits: 1, misses: 1 });
  });

  it('decodes again once the stored bytes change, by this replica or under it', async () => {
    const { r, store } = await replica({ objectCacheBytes: 1 << 20 });
    const a = await r.coordinate(0, 'k', {}, write('a'), 1);
    const first = await r.read(0, 'k');
    await r.coordinate(0, 'k', a.object.clock, write('b'), 2);
    const second = await r.read(0, 'k');
    expect(second).not.toBe(first);
    expect(text(second)).toEqual(['b']);
    // Bytes replaced without this replica knowing (as a restore from a backup would): the
    // cached object was decoded from other bytes, so it is not handed out.
    const other = await replica();
    await other.r.coordinate(0, 'k', {}, write('c'), 3);
    const bytes = await other.store.get('obj', objectKey(0, 'k'));
    await store.put('obj', objectKey(0, 'k'), bytes as Uint8Array);
    expect(text(await r.read(0, 'k'))).toEqual(['c']);
  });

  it('still reads correctly when the store returns fresh bytes each time or the cache is off', async () => {
    const { r } = await replica();
    await r.coordinate(0, 'k', {}, write('a'), 1);
    const first = await r.read(0, 'k');
    const second = await r.read(0, 'k');
    expect(second).not.toBe(first);
    expect(second).toEqual(first);
    const { r: off } = await replica({ objectCacheBytes: 1 << 20, decodedCacheBytes: 0 });
    await off.coordinate(0, 'k', {}, write('a'), 1);
    const x = await off.read(0, 'k');
    expect(await off.read(0, 'k')).not.toBe(x);
    expect(off.decodedCacheStats).toBeUndefined();
    expect(text(await off.read(0, 'k'))).toEqual(['a']);
  });

  it('does not keep objects too large for the store to cache', async () => {
    const { r } = await replica({ objectCacheBytes: 1 << 20 });
    await r.coordinate(0, 'big', {}, write('x'.repeat(2000)), 1);
    await r.coordinate(0, 'small', {}, write('y'), 2);
    const big = await r.read(0, 'big');
    expect(await r.read(0, 'big')).not.toBe(big);
    expect(await r.read(0, 'big')).toEqual(big);
    const small = await r.read(0, 'small');
    expect(await r.read(0, 'small')).toBe(small);
  });

  it('keeps within its budget: an evicted key is decoded again', async () => {
    // Room for about one entry: each is charged its key, its bytes and DECODED_ENTRY_OVERHEAD.
    const { r } = await replica({ objectCacheBytes: 1 << 20, decodedCacheBytes: DECODED_ENTRY_OVERHEAD + 200 });
    await r.coordinate(0, 'k1', {}, write('a'), 1);
    await r.coordinate(0, 'k2', {}, write('b'), 2);
    const k1 = await r.read(0, 'k1');
    expect(await r.read(0, 'k1')).toBe(k1);
    await r.read(0, 'k2');
    const again = await r.read(0, 'k1');
    expect(again).not.toBe(k1);
    expect(text(again)).toEqual(['a']);
  });
});
