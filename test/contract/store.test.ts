import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { MemoryLevel } from 'memory-level';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LevelStore, StoreOpenError } from '../../src/storage/level-store.js';
import { MemoryStore } from '../../src/storage/memory-store.js';
import { waitFor } from '../helpers/ports.js';
import { storeContract } from './store.contract.js';

const s = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : new TextDecoder().decode(bytes);

const tempDir = (): Promise<string> => mkdtemp(join(tmpdir(), 'ringkv-store-'));

storeContract('MemoryStore', async () => ({
  store: new MemoryStore(),
  persistent: false,
  cleanup: async () => {},
}));

// The default object cache, none, and one so small that nearly every write evicts.
for (const [name, objectCacheBytes] of [
  ['LevelStore', undefined],
  ['LevelStore without object cache', 0],
  ['LevelStore with a 2 KiB object cache (constant eviction)', 2048],
] as const) {
  storeContract(name, async () => {
    const dir = await tempDir();
    return {
      store: new LevelStore({ location: join(dir, 'db'), ...(objectCacheBytes === undefined ? {} : { objectCacheBytes }) }),
      persistent: true,
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  });
}

storeContract('MemoryStore with an object cache (asynchronous reads)', async () => ({
  store: new MemoryStore({ objectCacheBytes: 1 << 20 }),
  persistent: false,
  cleanup: async () => {},
}));

describe('object cache with asynchronous reads', () => {
  it('a value read before a write landed is not cached over that write', async () => {
    const store = new MemoryStore({ objectCacheBytes: 1 << 20 });
    await store.open();
    await store.put('obj', s('k'), s('v1'));
    // Empty the cache (the data stays) so the next read misses and goes to the database.
    await store.close();
    await store.open();
    type Get = { _get: (...a: unknown[]) => Promise<unknown> };
    const proto = MemoryLevel.prototype as unknown as Get;
    const original = proto._get;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const spy = vi.spyOn(proto, '_get').mockImplementationOnce(async function (this: unknown, ...args: unknown[]) {
      const result = original.apply(this, args); // reads v1 now
      await gate; // answers only after the write below has landed
      return result;
    });
    try {
      const pending = store.get('obj', s('k'));
      await store.put('obj', s('k'), s('v2'));
      release();
      expect(text(await pending)).toBe('v1');
      expect(text(await store.get('obj', s('k')))).toBe('v2');
    } finally {
      spy.mockRestore();
      await store.close();
    }
  });
});

describe('object cache, values read on a miss', () => {
  // A write leaves nothing cached, and close() + open() empties the cache anyway and keeps the
  // data, so the reads below miss and go to the database, and the cache is filled from them.
  const cached: [string, () => Promise<{ store: MemoryStore | LevelStore; done: () => Promise<void> }>][] = [
    ['MemoryStore', async () => ({ store: new MemoryStore({ objectCacheBytes: 1 << 20 }), done: async () => {} })],
    [
      'LevelStore',
      async () => {
        const dir = await tempDir();
        return { store: new LevelStore({ location: join(dir, 'db') }), done: () => rm(dir, { recursive: true, force: true }) };
      },
    ],
  ];
  /** An open store holding k = 'abc' with nothing in its cache. */
  async function withKeyNotCached(make: (typeof cached)[number][1]): Promise<Awaited<ReturnType<typeof make>>> {
    const made = await make();
    try {
      await made.store.open();
      await made.store.put('obj', s('k'), s('abc'));
      await made.store.close();
      await made.store.open();
      return made;
    } catch (err) {
      await made.store.close();
      await made.done();
      throw err;
    }
  }

  for (const [name, make] of cached) {
    it(`${name}: a value from get() on a miss is the caller's own; what the cache keeps is not it`, async () => {
      const { store, done } = await withKeyNotCached(make);
      try {
        const mine = await store.get('obj', s('k')); // miss: fills the cache
        expect(store.readCacheStats?.misses).toBe(1);
        mine!.fill(0x7a);
        expect(text(await store.getShared('obj', s('k')))).toBe('abc'); // hit
        expect(text(await store.get('obj', s('k')))).toBe('abc');
        expect(store.readCacheStats?.hits).toBe(2);
      } finally {
        await store.close();
        await done();
      }
    });

    it(`${name}: getShared() on a miss caches what it returns; get() after it still copies`, async () => {
      const { store, done } = await withKeyNotCached(make);
      try {
        const shared = await store.getShared('obj', s('k')); // miss: caches these very bytes
        expect(store.readCacheStats?.misses).toBe(1);
        expect(await store.getShared('obj', s('k'))).toBe(shared); // hit: the same bytes
        const mine = await store.get('obj', s('k')); // hit: a copy
        expect(mine).not.toBe(shared);
        mine!.fill(0x7a);
        expect(text(await store.getShared('obj', s('k')))).toBe('abc');
        expect(text(shared)).toBe('abc');
      } finally {
        await store.close();
        await done();
      }
    });
  }
});

describe('LevelStore', () => {
  let dir: string;
  const opened: LevelStore[] = [];
  const track = (store: LevelStore): LevelStore => {
    opened.push(store);
    return store;
  };

  beforeEach(async () => {
    dir = await tempDir();
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
    await rm(dir, { recursive: true, force: true });
  });

  it('writes issued in one turn of the event loop go to LevelDB as one atomic write', async () => {
    const store = track(new LevelStore({ location: join(dir, 'db') }));
    await store.open();
    const spy = vi.spyOn(ClassicLevel.prototype as unknown as { _batch: (...a: unknown[]) => Promise<void> }, '_batch');
    try {
      await Promise.all([
        store.put('obj', s('k1'), s('v1')),
        store.batch([
          { type: 'put', ns: 'hint', key: s('h'), value: s('x') },
          { type: 'del', ns: 'obj', key: s('gone') },
        ]),
        store.put('obj', s('k2'), s('v2')),
        store.del('meta', s('m')),
      ]);
      expect(spy).toHaveBeenCalledTimes(1);
      const ops = spy.mock.calls[0]?.[0] as { type: string; key: Uint8Array }[];
      expect(ops.map((o) => o.type)).toEqual(['put', 'put', 'del', 'put', 'del']);
    } finally {
      spy.mockRestore();
    }
    // Keys were prefixed per namespace exactly as the sublevels read them.
    expect(text(await store.get('obj', s('k1')))).toBe('v1');
    expect(text(await store.get('obj', s('k2')))).toBe('v2');
    expect(text(await store.get('hint', s('h')))).toBe('x');
    expect(await store.get('meta', s('h'))).toBeUndefined();
  });

  it('ends the tables its compactions write at 1 MiB (what bounds the tables it maps)', async () => {
    const location = join(dir, 'db');
    // The smallest memtable LevelDB allows: it flushes every 64 KiB, and each level-0 table
    // (random keys span the whole key range) overlaps all of level 1, so compactions rewrite
    // level 1 into tables of the maximum size.
    const store = track(new LevelStore({ location, writeBufferSize: 64 * 1024 }));
    await store.open();
    // Random bytes, one entry per 4 KiB block: snappy cannot shrink a block, so a table's
    // size is its data's size.
    const value = randomBytes(4096);
    for (let i = 0; i < 2048; i++) {
      value.writeUInt32LE(i, 0);
      await store.put('obj', randomBytes(16), value);
    }
    const tables = async (): Promise<number[]> => {
      const names = (await readdir(location)).filter((n) => n.endsWith('.ldb'));
      const sizes = await Promise.all(names.map((n) => stat(join(location, n)).then((st) => st.size, () => 0)));
      return sizes.sort((a, b) => b - a);
    };
    // 8 MiB written: compaction outputs of (near) full size appear once level 1 holds several.
    const full = 900 * 1024;
    const sizes = await waitFor('level-1 tables of full size', async () => {
      const got = await tables();
      return got.filter((n) => n >= full).length >= 3 ? got : undefined;
    });
    // LevelDB ends a table after the entry that takes it past the limit, then appends its
    // index block: ~12 KiB over here. LevelDB's own 2 MiB would give tables of ~2 MiB.
    expect(sizes[0]).toBeLessThanOrEqual(1.1 * 1024 * 1024);
  });

  it('a failed group write fails every caller in it, and the store keeps working', async () => {
    const store = track(new LevelStore({ location: join(dir, 'db') }));
    await store.open();
    const spy = vi
      .spyOn(ClassicLevel.prototype as unknown as { _batch: (...a: unknown[]) => Promise<void> }, '_batch')
      .mockRejectedValueOnce(new Error('disk on fire'));
    try {
      const results = await Promise.allSettled([store.put('obj', s('a'), s('1')), store.put('obj', s('b'), s('2'))]);
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
      expect(await store.get('obj', s('a'))).toBeUndefined();
      await store.put('obj', s('c'), s('3'));
      expect(text(await store.get('obj', s('c')))).toBe('3');
    } finally {
      spy.mockRestore();
    }
  });

  describe('object cache', () => {
    type GetSync = { _getSync: (...a: unknown[]) => unknown };

    it('serves objects already read from memory, other namespaces from LevelDB; a write drops its key', async () => {
      const location = join(dir, 'db');
      const first = track(new LevelStore({ location }));
      await first.open();
      await first.put('obj', s('old'), s('on disk'));
      await first.close();
      const store = track(new LevelStore({ location }));
      await store.open();
      const spy = vi.spyOn(ClassicLevel.prototype as unknown as GetSync, '_getSync');
      try {
        // A write does not fill the cache: the first read goes to LevelDB, the next to memory.
        await store.put('obj', s('new'), s('written'));
        expect(store.readCacheStats!.entries).toBe(0);
        expect(text(await store.get('obj', s('new')))).toBe('written');
        expect(text(await store.get('obj', s('new')))).toBe('written');
        expect(spy).toHaveBeenCalledTimes(1);
        expect(text(await store.get('obj', s('old')))).toBe('on disk');
        expect(text(await store.get('obj', s('old')))).toBe('on disk');
        expect(spy).toHaveBeenCalledTimes(2);
        // Rewriting a cached key drops its entry; the read after it gets the new value.
        await store.put('obj', s('old'), s('rewritten'));
        expect(store.readCacheStats!.entries).toBe(1);
        expect(text(await store.get('obj', s('old')))).toBe('rewritten');
        expect(spy).toHaveBeenCalledTimes(3);
        await store.put('hint', s('h'), s('hint'));
        expect(text(await store.get('hint', s('h')))).toBe('hint');
        expect(text(await store.get('hint', s('h')))).toBe('hint');
        expect(spy).toHaveBeenCalledTimes(5);
        await store.del('obj', s('new'));
        expect(await store.get('obj', s('new'))).toBeUndefined();
        expect(store.readCacheStats).toMatchObject({ hits: 2, misses: 4 });
      } finally {
        spy.mockRestore();
      }
    });

    it('a write that failed drops the cached value; the next read gets the stored one', async () => {
      const store = track(new LevelStore({ location: join(dir, 'db') }));
      await store.open();
      await store.put('obj', s('a'), s('1'));
      expect(text(await store.get('obj', s('a')))).toBe('1');
      expect(store.readCacheStats!.entries).toBe(1);
      const spy = vi
        .spyOn(ClassicLevel.prototype as unknown as { _batch: (...a: unknown[]) => Promise<void> }, '_batch')
        .mockRejectedValueOnce(new Error('disk on fire'));
      try {
        await expect(store.put('obj', s('a'), s('2'))).rejects.toThrow('disk on fire');
      } finally {
        spy.mockRestore();
      }
      expect(store.readCacheStats!.entries).toBe(0);
      expect(text(await store.get('obj', s('a')))).toBe('1');
      await store.del('obj', s('a'));
      expect(await store.get('obj', s('a'))).toBeUndefined();
    });

    it('a value read while its write was in flight is not left stale in the cache', async () => {
      const store = track(new LevelStore({ location: join(dir, 'db') }));
      await store.open();
      await store.put('obj', s('k'), s('v1'));
      const write = store.put('obj', s('k'), s('v2'));
      // Read before the write lands (it waits for the end of the I/O round): the old value.
      expect(text(await store.get('obj', s('k')))).toBe('v1');
      await write;
      expect(text(await store.get('obj', s('k')))).toBe('v2');
    });

    it('a write of a value too large to cache drops the key’s entry, and reads of it are not cached', async () => {
      const store = track(new LevelStore({ location: join(dir, 'db') }));
      await store.open();
      await store.put('obj', s('k'), s('small'));
      expect(text(await store.get('obj', s('k')))).toBe('small');
      expect(store.readCacheStats!.entries).toBe(1);
      const big = new Uint8Array(4096).fill(7);
      await store.put('obj', s('k'), big);
      expect(store.readCacheStats!.entries).toBe(0);
      expect(await store.get('obj', s('k'))).toEqual(big);
      expect(store.readCacheStats!.entries).toBe(0);
    });

    it('stays within its size, evicting the oldest entries', async () => {
      const store = track(new LevelStore({ location: join(dir, 'db'), objectCacheBytes: 4096 }));
      await store.open();
      for (let i = 0; i < 100; i++) await store.put('obj', s(`key-${i}`), new Uint8Array(100).fill(i));
      // Reads fill the cache.
      for (let i = 0; i < 100; i++) await store.get('obj', s(`key-${i}`));
      const stats = store.readCacheStats!;
      expect(stats.bytes).toBeLessThanOrEqual(4096);
      expect(stats.entries).toBeGreaterThan(5);
      // The newest are cached, the oldest evicted; both still read back correctly.
      const before = stats.misses;
      expect(await store.get('obj', s('key-99'))).toEqual(new Uint8Array(100).fill(99));
      expect(store.readCacheStats!.misses).toBe(before);
      expect(await store.get('obj', s('key-0'))).toEqual(new Uint8Array(100).fill(0));
      expect(store.readCacheStats!.misses).toBe(before + 1);
    });

    it('is emptied by close, and a reopened store reads LevelDB again', async () => {
      const store = track(new LevelStore({ location: join(dir, 'db') }));
      await store.open();
      await store.put('obj', s('k'), s('v'));
      expect(text(await store.get('obj', s('k')))).toBe('v');
      expect(store.readCacheStats!.entries).toBe(1);
      await store.close();
      expect(store.readCacheStats!.entries).toBe(0);
      await store.open();
      const misses = store.readCacheStats!.misses;
      expect(text(await store.get('obj', s('k')))).toBe('v');
      expect(store.readCacheStats!.misses).toBe(misses + 1);
    });
  });

  it('creates a missing location, parents included', async () => {
    const store = track(new LevelStore({ location: join(dir, 'a', 'b', 'c') }));
    await store.open();
    await store.put('obj', s('k'), s('v'));
    expect(text(await store.get('obj', s('k')))).toBe('v');
  });

  it('a fresh instance on the same location reads what an earlier one wrote', async () => {
    const location = join(dir, 'db');
    const first = track(new LevelStore({ location }));
    await first.open();
    await first.batch([
      { type: 'put', ns: 'obj', key: s('o'), value: s('object') },
      { type: 'put', ns: 'hint', key: s('h'), value: s('hint') },
    ]);
    await first.del('obj', s('o'));
    await first.close();
    const second = track(new LevelStore({ location }));
    await second.open();
    expect(await second.get('obj', s('o'))).toBeUndefined();
    expect(text(await second.get('hint', s('h')))).toBe('hint');
  });

  it('with sync: true writes are acknowledged and kept', async () => {
    const location = join(dir, 'db');
    const store = track(new LevelStore({ location, sync: true }));
    await store.open();
    await store.put('meta', s('epoch'), s('1'));
    await store.batch([{ type: 'put', ns: 'meta', key: s('epoch'), value: s('2') }]);
    await store.close();
    const again = track(new LevelStore({ location }));
    await again.open();
    expect(text(await again.get('meta', s('epoch')))).toBe('2');
  });

  it('refuses a location already held by another open store, naming it', async () => {
    const location = join(dir, 'db');
    const first = track(new LevelStore({ location }));
    await first.open();
    const second = track(new LevelStore({ location }));
    const failure = await second.open().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(StoreOpenError);
    expect((failure as StoreOpenError).reason).toBe('locked');
    expect((failure as Error).message).toContain(location);
    expect((failure as Error).message).toMatch(/locked/);
    // The holder is unaffected, and the loser stays closed.
    await first.put('obj', s('k'), s('v'));
    await expect(second.get('obj', s('k'))).rejects.toThrow(/store is not open/);
    // Once released, the location can be opened.
    await first.close();
    await second.open();
    expect(text(await second.get('obj', s('k')))).toBe('v');
  });

  it('rejects a location that is a file, naming it', async () => {
    const location = join(dir, 'file');
    await writeFile(location, 'not a database');
    const store = track(new LevelStore({ location }));
    await expect(store.open()).rejects.toThrow(StoreOpenError);
    await expect(store.open()).rejects.toThrow(`cannot open store at ${JSON.stringify(location)}: the path`);
    await expect(store.open()).rejects.toMatchObject({ reason: 'not-a-directory', location });
  });

  it('rejects a location below a file', async () => {
    await writeFile(join(dir, 'file'), 'x');
    const location = join(dir, 'file', 'db');
    const store = track(new LevelStore({ location }));
    await expect(store.open()).rejects.toMatchObject({ reason: 'not-a-directory', location });
    await store.close();
  });

  it.skipIf(process.getuid?.() === 0)('rejects a location it may not write, naming it', async () => {
    const parent = join(dir, 'readonly');
    await mkdir(parent);
    await chmod(parent, 0o500);
    const location = join(parent, 'db');
    const store = track(new LevelStore({ location }));
    await expect(store.open()).rejects.toMatchObject({ reason: 'permission-denied', location });
  });

  it('rejects an empty location at construction', () => {
    expect(() => new LevelStore({ location: '' })).toThrow(TypeError);
  });
});
