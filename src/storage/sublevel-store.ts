import type { AbstractLevel, AbstractPutOptions, AbstractSublevel } from 'abstract-level';
import { RingkvError } from '../errors.js';
import { compareBytes } from './keys.js';
import { STORE_LAYOUT } from './layout.js';
import { ReadCache } from './read-cache.js';
import { NAMESPACES, type BatchOp, type Namespace, type RangeOptions, type Store } from './store.js';

type Bytes = Uint8Array;

/** An abstract-level database with binary keys and values (classic-level, memory-level). */
export type BinaryLevel = AbstractLevel<Buffer | Uint8Array | string, Bytes, Bytes>;

type Sublevel = AbstractSublevel<BinaryLevel, Buffer | Uint8Array | string, Bytes, Bytes>;

/** What a concrete backend decides; everything else is shared. */
export interface SublevelStoreInit {
  /** The root database, not yet opened. */
  readonly db: BinaryLevel;
  /** Options passed on every put, del and batch (classic-level reads `sync`). */
  readonly writeOptions: AbstractPutOptions<Bytes, Bytes> & { readonly sync?: boolean };
  /**
   * Take ownership of a value being written. memory-level keeps a reference to the caller's
   * buffer, so it must copy; LevelDB copies into its write batch itself.
   */
  readonly ownInput: (value: Bytes) => Bytes;
  /**
   * Hand a stored key or value to the caller as a plain Uint8Array that it may mutate
   * without touching the store.
   */
  readonly ownOutput: (value: Bytes) => Bytes;
  /** Turn a failure of `db.open()` into the error `open()` rejects with. */
  readonly openFailed: (cause: unknown) => Error;
  /**
   * Serve get() with the database's synchronous read (abstract-level `getSync`). Worth it for
   * LevelDB: see {@link SublevelStore.get}.
   */
  readonly syncReads?: boolean;
  /**
   * Start an idle store's write at the end of the event loop's current I/O round
   * (setImmediate) instead of at once, so every write that requests read in the same round
   * make is one database write. Worth it for LevelDB: see {@link SublevelStore.#commit}.
   */
  readonly deferCommit?: boolean;
  /**
   * Hand batches to the database's implementation (`_batch`, abstract-level's documented
   * private API for implementations) with keys already prefixed, skipping abstract-level's
   * per-op cloning, encoding and hook plumbing: for LevelDB that was a tenth of a replica
   * write's CPU. Only for a database whose `_batch` copies its input (classic-level does).
   */
  readonly directWrites?: boolean;
  /**
   * With `syncReads`, read through the database's implementation (`_getSync`) with the key
   * prefixed here, skipping the sublevel's and the root's option, encoding and status
   * plumbing (a fifth of a 5 µs LevelDB read in a microbenchmark). Only for a database whose
   * `_getSync` returns a fresh buffer (classic-level does).
   */
  readonly directReads?: boolean;
  /**
   * Keep recently read values of one namespace in memory, up to `maxBytes` (see ReadCache),
   * and serve get() from there. A write drops its keys' entries once it lands (or fails), so
   * the cache never shows what the database does not hold.
   */
  readonly readCache?: { readonly ns: Namespace; readonly maxBytes: number };
}

/** The implementation side of an abstract-level database, for `directWrites` and `directReads`. */
interface DirectLevel {
  _batch(ops: { type: 'put' | 'del'; key: Uint8Array; value?: Uint8Array }[], options: object): Promise<void>;
  _getSync(key: Uint8Array, options: { keyEncoding: 'view'; valueEncoding: 'view' }): Uint8Array | undefined;
}

/** The options `_getSync` is called with by `directReads`: binary key in, binary value out. */
const DIRECT_READ_OPTIONS = { keyEncoding: 'view', valueEncoding: 'view' } as const;

type LevelOp =
  | { type: 'put'; ns: Namespace; sublevel: Sublevel; key: Bytes; value: Bytes }
  | { type: 'del'; ns: Namespace; sublevel: Sublevel; key: Bytes };

/** Writes that arrived while another write was in flight; they go to the database as one batch. */
interface CommitGroup {
  readonly ops: LevelOp[];
  readonly done: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

// Entries pulled from a level iterator per round trip; small enough that an early `break`
// wastes little, large enough to amortise the per-call cost.
const ITERATOR_BATCH = 128;
/**
 * The same for keys alone, which are small (at most ~1.5 KB): a full scan of 300k keys took
 * 1.77 s in batches of 128 and 1.07-1.12 s in batches of 1024 (4096: no better). Every start
 * scans all keys this way (see KeyFilter).
 */
const KEY_ITERATOR_BATCH = 1024;

/**
 * A Store over one abstract-level database with one sublevel per Namespace. Batches go
 * through the root database with a `sublevel` on each op, so they are atomic across
 * namespaces. Implementations only choose the database and its copy semantics.
 */
export class SublevelStore implements Store {
  readonly #init: SublevelStoreInit;
  readonly #db: BinaryLevel;
  // Present exactly while the store is usable: set at the end of open(), cleared at the start
  // of close(). Sublevels are recreated on every open because closing the root closes them.
  #subs: Record<Namespace, Sublevel> | undefined;
  /** A database write is in flight; new writes join #group instead of starting their own. */
  #writing = false;
  /** The database write in flight, if any (close() waits for it). */
  #inflight: Promise<void> | undefined;
  /** The close() in progress, if any (open() lets it finish first). */
  #closing: Promise<void> | undefined;
  #group: CommitGroup | undefined;
  readonly #cache: ReadCache | undefined;
  readonly #cacheNs: Namespace | undefined;
  #cacheHits = 0;
  #cacheMisses = 0;
  /** Writes to the cached namespace that have ended, landed or failed (see #forget, #cacheFill). */
  #cacheWrites = 0;

  protected constructor(init: SublevelStoreInit) {
    this.#init = init;
    this.#db = init.db;
    if (init.readCache !== undefined && init.readCache.maxBytes > 0) {
      this.#cache = new ReadCache(init.readCache.maxBytes);
      this.#cacheNs = checkNamespace(init.readCache.ns, 'readCache');
    }
  }

  async open(): Promise<void> {
    // A close() still letting its writes land has not closed the database yet: opened now,
    // the store would find it open, and that close would then shut it under a store that
    // reports itself open (every operation refused, and the next close() never returning).
    while (this.#closing !== undefined) await this.#closing.catch(() => undefined);
    if (this.#subs !== undefined) return;
    try {
      await this.#db.open();
    } catch (err) {
      throw this.#init.openFailed(err);
    }
    // A close() that raced with this open() wins: leave the store closed.
    if (this.#db.status !== 'open' || this.#subs !== undefined || this.#closing !== undefined) return;
    const subs = {} as Record<Namespace, Sublevel>;
    for (const ns of NAMESPACES) {
      subs[ns] = this.#db.sublevel<Bytes, Bytes>(STORE_LAYOUT.sublevels[ns], {
        separator: STORE_LAYOUT.separator,
        keyEncoding: STORE_LAYOUT.keyEncoding,
        valueEncoding: STORE_LAYOUT.valueEncoding,
      });
    }
    // A new sublevel opens itself a tick later; getSync() would refuse it until then.
    await Promise.all(NAMESPACES.map((ns) => subs[ns].open()));
    if (this.#db.status !== 'open' || this.#subs !== undefined || this.#closing !== undefined) return;
    this.#subs = subs;
  }

  /** The read cache's figures since the store was made, or undefined if it has none. */
  get readCacheStats(): { entries: number; bytes: number; hits: number; misses: number } | undefined {
    const cache = this.#cache;
    if (cache === undefined) return undefined;
    return { entries: cache.size, bytes: cache.bytes, hits: this.#cacheHits, misses: this.#cacheMisses };
  }

  close(): Promise<void> {
    this.#subs = undefined;
    this.#cache?.clear();
    const closing = this.#close();
    this.#closing = closing;
    const done = (): void => {
      if (this.#closing === closing) this.#closing = undefined;
    };
    closing.then(done, done);
    return closing;
  }

  async #close(): Promise<void> {
    // Writes accepted before close() still land: start the waiting group now, and let every
    // write in flight (and the group each one hands over to) finish before the database closes.
    this.#flush();
    while (this.#inflight !== undefined) await this.#inflight.catch(() => undefined);
    await this.#db.close();
  }

  /**
   * With `syncReads`, the read runs on the calling thread. An async LevelDB get is a trip
   * through libuv's thread pool: a promise, a queued work item, a wake-up of a pool thread and
   * one of the event loop, ~15 µs of CPU for a read that takes ~3 µs from LevelDB's memtable,
   * block cache or the OS page cache, and far more once the machine is oversubscribed and
   * every hand-off is a context switch (profiles of a loaded node showed classic-level's
   * `_get` at a quarter of all samples). A read that must go to a cold disk blocks the event
   * loop instead; for a store whose working set is in the page cache that is the better trade.
   */
  get(ns: Namespace, key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.#get(ns, key, false, 'get');
  }

  getShared(ns: Namespace, key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.#get(ns, key, true, 'getShared');
  }

  /**
   * Not an async function: with `syncReads` the whole read happens in this call, and the
   * promise is made once, at the end. (As async functions, a local read on the GET path went
   * through five nested frames, each a promise and a trip through the microtask queue.)
   * Failures are rejections, never throws, as from an async function.
   */
  #get(ns: Namespace, key: Uint8Array, shared: boolean, op: string): Promise<Uint8Array | undefined> {
    let sub: Sublevel;
    try {
      sub = this.#sub(ns, op);
      checkBytes(key, 'key');
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.#init.syncReads) return this.#getAsync(sub, ns, key, shared, op);
    try {
      if (ns === this.#cacheNs) return Promise.resolve(this.#getCachedSync(sub, key, shared));
      const value = this.#getSync(sub, key);
      return Promise.resolve(value === undefined ? undefined : this.#init.ownOutput(value));
    } catch (err) {
      return Promise.reject(this.#failed(err, op));
    }
  }

  async #getAsync(sub: Sublevel, ns: Namespace, key: Uint8Array, shared: boolean, op: string): Promise<Uint8Array | undefined> {
    try {
      if (ns === this.#cacheNs) {
        const hit = this.#cacheHit(key, shared);
        if (hit !== undefined) return hit;
        const writes = this.#cacheWrites;
        const read = await sub.get(key);
        return read === undefined ? undefined : this.#cacheFill(key, this.#init.ownOutput(read), shared, writes);
      }
      const value = await sub.get(key);
      return value === undefined ? undefined : this.#init.ownOutput(value);
    } catch (err) {
      throw this.#failed(err, op);
    }
  }

  /**
   * `shared`: the caller promises not to mutate the result, so a hit hands out the cached bytes
   * themselves and a miss caches the very bytes it returns (a fresh buffer from the database,
   * or memory-level's copy). Otherwise the caller may mutate what it gets, and the cached
   * bytes stay private: a hit is copied out, a miss copied in. A copy is a malloc'd backing
   * store per value (~1 µs of allocation and GC bookkeeping for 400 bytes on a loaded node).
   */
  #getCachedSync(sub: Sublevel, key: Uint8Array, shared: boolean): Uint8Array | undefined {
    const hit = this.#cacheHit(key, shared);
    if (hit !== undefined) return hit;
    const read = this.#getSync(sub, key);
    // A synchronous read: no write can land while it runs, so the guard is the current count.
    return read === undefined ? undefined : this.#cacheFill(key, this.#init.ownOutput(read), shared, this.#cacheWrites);
  }

  /** The cached value (or a copy, unless `shared`), counting the hit or the miss. */
  #cacheHit(key: Uint8Array, shared: boolean): Uint8Array | undefined {
    const hit = (this.#cache as ReadCache).get(key);
    if (hit === undefined) {
      this.#cacheMisses++;
      return undefined;
    }
    this.#cacheHits++;
    return shared ? hit : copyOf(hit);
  }

  /**
   * Cache `value`, just read, and return it. Only if the store is still open (a close() may
   * have cleared the cache meanwhile) and no write ended since `writesBefore` (while an
   * asynchronous read was out): it may have been this key's, and the value read could be the
   * one that write replaced.
   */
  #cacheFill(key: Uint8Array, value: Uint8Array, shared: boolean, writesBefore: number): Uint8Array {
    const cache = this.#cache as ReadCache;
    if (this.#subs !== undefined && writesBefore === this.#cacheWrites && cache.accepts(value.byteLength)) {
      cache.set(key, shared ? value : copyOf(value));
    }
    return value;
  }

  #getSync(sub: Sublevel, key: Uint8Array): Uint8Array | undefined {
    if (!this.#init.directReads) return sub.getSync(key);
    // As abstract-level would: never hand the implementation a database that is not open.
    if (this.#db.status !== 'open') throw storeClosed('get');
    return (this.#db as unknown as DirectLevel)._getSync(sub.prefixKey(key, 'view', false), DIRECT_READ_OPTIONS);
  }

  uncache(ns: Namespace, key: Uint8Array): void {
    if (ns !== this.#cacheNs || this.#cache === undefined) return;
    this.#cache.delete(key);
    // A read out meanwhile must not fill the cache with what it read before this call.
    this.#cacheWrites++;
  }

  async getMany(ns: Namespace, keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    const sub = this.#sub(ns, 'getMany');
    if (!Array.isArray(keys)) throw new TypeError('getMany: keys must be an array');
    for (const [i, key] of keys.entries()) checkBytes(key, `keys[${i}]`);
    if (keys.length === 0) return [];
    try {
      const values = await sub.getMany(keys.slice());
      return values.map((v) => (v === undefined ? undefined : this.#init.ownOutput(v)));
    } catch (err) {
      throw this.#failed(err, 'getMany');
    }
  }

  async put(ns: Namespace, key: Uint8Array, value: Uint8Array): Promise<void> {
    const sub = this.#sub(ns, 'put');
    checkBytes(key, 'key');
    checkBytes(value, 'value');
    try {
      await this.#commit([{ type: 'put', ns, sublevel: sub, key, value: this.#init.ownInput(value) }]);
    } catch (err) {
      throw this.#failed(err, 'put');
    }
  }

  async del(ns: Namespace, key: Uint8Array): Promise<void> {
    const sub = this.#sub(ns, 'del');
    checkBytes(key, 'key');
    try {
      await this.#commit([{ type: 'del', ns, sublevel: sub, key }]);
    } catch (err) {
      throw this.#failed(err, 'del');
    }
  }

  async batch(ops: readonly BatchOp[]): Promise<void> {
    const subs = this.#subsOrThrow('batch');
    if (!Array.isArray(ops)) throw new TypeError('batch: ops must be an array');
    // Validate every op before writing any: the all-or-nothing promise must also hold for
    // malformed input, which abstract-level would otherwise coerce (e.g. a string value).
    // A loop, and messages built only on failure: this runs on every replica write.
    const levelOps = new Array<LevelOp>(ops.length);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as BatchOp;
      if (typeof op !== 'object' || op === null) throw new TypeError(`batch op ${i} is not an object`);
      const ns = NAMESPACES.includes(op.ns) ? op.ns : checkNamespace(op.ns, `batch op ${i}`);
      const sublevel = subs[ns];
      if (!(op.key instanceof Uint8Array)) checkBytes(op.key, `batch op ${i} key`);
      if (op.type === 'put') {
        if (!(op.value instanceof Uint8Array)) checkBytes(op.value, `batch op ${i} value`);
        levelOps[i] = { type: 'put', ns, sublevel, key: op.key, value: this.#init.ownInput(op.value) };
      } else if (op.type === 'del') {
        levelOps[i] = { type: 'del', ns, sublevel, key: op.key };
      } else {
        throw new TypeError(`batch op ${i}: unknown type ${JSON.stringify((op as { type?: unknown }).type)}`);
      }
    }
    if (levelOps.length === 0) return;
    try {
      await this.#commit(levelOps);
    } catch (err) {
      throw this.#failed(err, 'batch');
    }
  }

  /**
   * Group commit: at most one database write is in flight; every put, del and batch that
   * arrives meanwhile joins one group that is written as a single batch when it finishes.
   * Under load that turns a thread-pool round trip per write into one per group (LevelDB
   * serialises writers anyway, so nothing runs less in parallel). With `deferCommit`, an idle
   * store also waits for the end of the current I/O round before writing, so the writes of
   * every request that arrived in that round share one write: a LevelDB write costs ~40 µs of
   * CPU alone (a thread-pool hand-off, a log append, two wake-ups) against ~10 µs each in a
   * group of eight. A group is atomic, so each caller's ops still land all or nothing, and
   * writes reach the database in call order. If a group's write fails, every caller in it
   * gets the error.
   */
  #commit(ops: LevelOp[]): Promise<void> {
    if (!this.#writing && !this.#init.deferCommit) return this.#start(ops);
    let group = this.#group;
    if (group === undefined) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const done = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      group = { ops: [], done, resolve, reject };
      this.#group = group;
      if (!this.#writing) setImmediate(() => this.#flush());
    }
    for (const op of ops) group.ops.push(op);
    return group.done;
  }

  /** Write the waiting group, if any and if no write is in flight. */
  #flush(): void {
    const next = this.#group;
    if (next === undefined || this.#writing) return;
    this.#group = undefined;
    this.#start(next.ops).then(next.resolve, next.reject);
  }

  #start(ops: LevelOp[]): Promise<void> {
    const write = this.#write(ops);
    this.#inflight = write;
    return write;
  }

  async #write(ops: LevelOp[]): Promise<void> {
    this.#writing = true;
    try {
      if (this.#init.directWrites) await this.#writeDirect(ops);
      else await this.#db.batch(ops, this.#init.writeOptions);
    } finally {
      // Landed or failed (then its outcome is unknown), the cached values of what it wrote
      // are stale: drop them. Reads fill the cache again.
      if (this.#cache !== undefined) this.#forget(ops);
      this.#writing = false;
      this.#inflight = undefined;
      this.#flush();
    }
  }

  /** Drop the cached values of the keys `ops` wrote (see #write). */
  #forget(ops: readonly LevelOp[]): void {
    const cache = this.#cache as ReadCache;
    let touched = false;
    for (const op of ops) {
      if (op.ns !== this.#cacheNs) continue;
      cache.delete(op.key);
      touched = true;
    }
    // Reads that started before this write landed must not fill the cache (see #cacheFill).
    if (touched) this.#cacheWrites++;
  }

  #writeDirect(ops: LevelOp[]): Promise<void> {
    // The implementation must never see a closed database (abstract-level guards that for
    // its public methods; here we do). Writes it accepted finish before it closes.
    // A rejection, not a throw: thrown, #write's `finally` would run before #start records
    // the write as in flight, leaving #inflight set for good (and close() waiting on it forever).
    if (this.#db.status !== 'open') return Promise.reject(storeClosed('write'));
    const plain = new Array<{ type: 'put' | 'del'; key: Uint8Array; value?: Uint8Array }>(ops.length);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as LevelOp;
      const key = op.sublevel.prefixKey(op.key, 'view', false);
      plain[i] = op.type === 'put' ? { type: 'put', key, value: op.value } : { type: 'del', key };
    }
    return (this.#db as unknown as DirectLevel)._batch(plain, this.#init.writeOptions);
  }


  /** Lazy: the range is read from a snapshot taken when iteration starts, not at this call. */
  async *entries(ns: Namespace, range?: RangeOptions): AsyncIterable<[Uint8Array, Uint8Array]> {
    const it = this.#sub(ns, 'entries').iterator(toLevelRange(range));
    const own = this.#init.ownOutput;
    try {
      for (;;) {
        const chunk = await it.nextv(ITERATOR_BATCH);
        if (chunk.length === 0) return;
        for (const [k, v] of chunk) yield [own(k), own(v)];
      }
    } catch (err) {
      throw this.#failed(err, 'entries');
    } finally {
      await it.close();
    }
  }

  /** Lazy, like {@link entries}; reads no values. */
  async *keys(ns: Namespace, range?: RangeOptions): AsyncIterable<Uint8Array> {
    const it = this.#sub(ns, 'keys').keys(toLevelRange(range));
    const own = this.#init.ownOutput;
    try {
      for (;;) {
        const chunk = await it.nextv(KEY_ITERATOR_BATCH);
        if (chunk.length === 0) return;
        for (const k of chunk) yield own(k);
      }
    } catch (err) {
      throw this.#failed(err, 'keys');
    } finally {
      await it.close();
    }
  }

  #subsOrThrow(op: string): Record<Namespace, Sublevel> {
    if (this.#subs === undefined) throw storeClosed(op);
    return this.#subs;
  }

  #sub(ns: Namespace, op: string): Sublevel {
    return this.#subsOrThrow(op)[checkNamespace(ns, op)];
  }

  /** A failure caused by a close() racing the operation reads as "closed", not as a level error. */
  #failed(err: unknown, op: string): unknown {
    if (this.#subs === undefined || isNotOpenError(err)) return storeClosed(op, err);
    return err;
  }
}

/** A standalone exact-size copy (never a view into a shared pool, so it may be kept). */
function copyOf(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

function storeClosed(op: string, cause?: unknown): RingkvError {
  const err = new RingkvError('UNAVAILABLE', `store is not open: ${op} rejected (open() it first; it may have been closed)`);
  if (cause !== undefined) err.cause = cause;
  return err;
}

function isNotOpenError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'LEVEL_DATABASE_NOT_OPEN' || code === 'LEVEL_ITERATOR_NOT_OPEN';
}

function checkNamespace(ns: unknown, where: string): Namespace {
  if (!(NAMESPACES as readonly unknown[]).includes(ns)) {
    throw new TypeError(`${where}: unknown namespace ${JSON.stringify(ns)} (expected one of ${NAMESPACES.join(', ')})`);
  }
  return ns as Namespace;
}

function checkBytes(value: unknown, what: string): void {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${what} must be a Uint8Array, got ${value === null ? 'null' : typeof value}`);
  }
}

interface LevelRange {
  gt?: Bytes;
  gte?: Bytes;
  lt?: Bytes;
  lte?: Bytes;
  limit?: number;
  reverse?: boolean;
}

/**
 * Every bound given must hold: if both an exclusive and an inclusive bound are given on one
 * side, the tighter one is kept (abstract-level would otherwise let the inclusive one win, so
 * `{ ...partitionRange(p), gt: lastSeen }` would silently restart the scan).
 */
function toLevelRange(range: RangeOptions | undefined): LevelRange {
  const out: LevelRange = {};
  if (range === undefined) return out;
  for (const bound of ['gt', 'gte', 'lt', 'lte'] as const) {
    if (range[bound] !== undefined) checkBytes(range[bound], `range.${bound}`);
  }
  const { gt, gte, lt, lte } = range;
  if (gt !== undefined && (gte === undefined || compareBytes(gt, gte) >= 0)) out.gt = gt;
  else if (gte !== undefined) out.gte = gte;
  if (lt !== undefined && (lte === undefined || compareBytes(lt, lte) <= 0)) out.lt = lt;
  else if (lte !== undefined) out.lte = lte;
  if (range.limit !== undefined) {
    const { limit } = range;
    // abstract-level reads a negative limit as "no limit"; refuse it rather than surprise.
    if (!(limit === Number.POSITIVE_INFINITY || (Number.isInteger(limit) && limit >= 0))) {
      throw new RangeError(`range.limit must be a non-negative integer or Infinity, got ${limit}`);
    }
    out.limit = limit;
  }
  if (range.reverse !== undefined) out.reverse = range.reverse;
  return out;
}
