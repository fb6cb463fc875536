/**
 * This node's replica of its partitions: the only code that reads or writes versioned
 * objects in the Store. Every change to a key goes through one per-key critical section;
 * the object and its hints change in one atomic batch, and write listeners (the
 * anti-entropy hash tree, kept in memory) hear of every change after it is durable.
 */
import type { Logger } from '../observability/logger.js';
import type { CacheStats } from '../observability/metrics.js';
import type { Random } from '../runtime/random.js';
import { type BatchOp, hintKey, objectKey, parseObjectKey, type Store } from '../storage/index.js';
import {
  type Actor,
  contextCoversAll,
  type Dot,
  decodeObject,
  decodeUnlessCorrupt,
  encodeObject,
  isCorruptObject,
  isDeleted,
  merge,
  mergeKeepsIncoming,
  mint,
  sameVersion,
  type VersionedObject,
  type VersionStamp,
  type VersionVector,
  versioned,
  type WriteValue,
} from '../version/index.js';
import { DECODED_CACHE_BYTES, DecodedCache } from './decoded-cache.js';
import { KEY_FILTER_MAX_BYTES, KeyFilter } from './key-filter.js';
import { KeyLock } from './key-lock.js';
import { VersionCache } from './version-cache.js';

/**
 * Called after a key's stored version changed (anti-entropy keeps its trees current with it).
 * `before` is the version replaced (its values may not have been read), undefined when the
 * key was new here, or when `replacedCorrupt` says the stored copy it replaced (or removed)
 * was damaged; `after` is undefined when the key was removed from the store (a reaped
 * tombstone, a damaged stray).
 */
export type WriteListener = (
  partition: number,
  key: string,
  before: VersionStamp | undefined,
  after: VersionedObject | undefined,
  replacedCorrupt: boolean,
) => void;

const ABSENT = { before: undefined, corrupt: false } as const;
const ABSENT_CORRUPT = { before: undefined, corrupt: true } as const;

/** Hint values: a change counter, so delivery deletes a hint only if no newer write re-parked it. */
function hintValue(seq: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, seq);
  return b;
}

/** Default bound of the version cache (see VersionCache). */
export const VERSION_CACHE_BYTES = 4 * 1024 * 1024;

export interface LocalReplicaInit {
  readonly actor: Actor;
  /** Bytes for the version cache; 0 turns it off. Default {@link VERSION_CACHE_BYTES}. */
  readonly versionCacheBytes?: number;
  /** Bytes for the decoded-object cache; 0 turns it off. Default {@link DECODED_CACHE_BYTES}. */
  readonly decodedCacheBytes?: number;
  /** Keep a filter of the keys held, so writes and reads of absent keys skip the store. Default true. */
  readonly keyFilter?: boolean;
  /** Bound of the key filter's tables. Default {@link KEY_FILTER_MAX_BYTES}. */
  readonly keyFilterMaxBytes?: number;
}

export class LocalReplica {
  private readonly lock = new KeyLock();
  /** Stored versions of recent keys; read and changed only under the key's lock. */
  private readonly versions: VersionCache | undefined;
  /** Recently read objects, decoded (see DecodedCache); undefined when off. */
  private readonly decoded: DecodedCache | undefined;
  /** Keys ever held here (see KeyFilter); undefined when off. */
  private readonly keys: KeyFilter | undefined;
  /** The scan that fills `keys` with what the store held at start (see start). */
  private keyScan: Promise<void> | undefined;
  private keyFilterWarned = false;
  private readonly listeners: WriteListener[] = [];
  private hintSeq = 0;
  /** Number of hints in the store; kept in memory, recounted at start. */
  private hintCount = 0;

  constructor(
    private readonly components: { store: Store; random: Random; log: Logger },
    private readonly init: LocalReplicaInit,
  ) {
    const bytes = init.versionCacheBytes ?? VERSION_CACHE_BYTES;
    this.versions = bytes > 0 ? new VersionCache(bytes) : undefined;
    const decodedBytes = init.decodedCacheBytes ?? DECODED_CACHE_BYTES;
    this.decoded = decodedBytes > 0 ? new DecodedCache(decodedBytes) : undefined;
    this.keys = init.keyFilter === false ? undefined : new KeyFilter(init.keyFilterMaxBytes);
  }

  /** The decoded-object cache's figures (see read), or undefined if it is off. */
  get decodedCacheStats(): CacheStats | undefined {
    return this.decoded?.stats;
  }

  /** The version cache's figures, or undefined if it is off. */
  get versionCacheStats(): CacheStats | undefined {
    return this.versions?.stats;
  }

  /** The key filter's figures (see KeyFilter.stats), or undefined if it is off. */
  get keyFilterStats(): CacheStats | undefined {
    return this.keys?.stats;
  }

  /** True once the key filter answers (its start scan is done); false while scanning, failed or off. */
  get keyFilterComplete(): boolean {
    return this.keys?.complete === true;
  }

  /**
   * Settles once the key filter holds every key the store held at start (or its scan failed,
   * leaving it unused); undefined before start().
   */
  get keyScanDone(): Promise<void> | undefined {
    return this.keyScan;
  }

  /**
   * Recount parked hints (call once at start), and begin filling the key filter from the
   * store's keys in the background: until that scan ends the filter answers nothing, so the
   * node serves at once and merely reads the store for absent keys meanwhile.
   */
  async start(): Promise<void> {
    if (this.keys !== undefined && this.keyScan === undefined) this.keyScan = this.scanKeys(this.keys);
    // Hint change counters need only be unique within this process's life and differ from
    // any value a hint read before a restart could carry; a random high start does both.
    this.hintSeq = this.components.random.int(2 ** 40) * 1024;
    let n = 0;
    for await (const _ of this.components.store.keys('hint')) n++;
    this.hintCount = n;
  }

  /** Add every object key in the store to `filter`, then let it answer; on any failure it stays unused. */
  private async scanKeys(filter: KeyFilter): Promise<void> {
    try {
      for await (const k of this.components.store.keys('obj')) {
        filter.add(parseObjectKey(k).key);
        if (filter.gaveUp) break;
      }
      if (filter.gaveUp) {
        this.warnKeyFilterGaveUp();
        return;
      }
      filter.markComplete();
      this.components.log.info({ keys: filter.size, bytes: filter.bytes }, 'key filter ready');
    } catch (err) {
      this.components.log.warn({ err: String(err) }, 'key filter scan failed; absent keys are read from the store');
    }
  }

  private warnKeyFilterGaveUp(): void {
    if (this.keyFilterWarned) return;
    this.keyFilterWarned = true;
    const bytes = this.init.keyFilterMaxBytes ?? KEY_FILTER_MAX_BYTES;
    this.components.log.warn({ bytes }, 'key filter outgrew its bound; absent keys are read from the store until restart');
  }

  get pendingHints(): number {
    return this.hintCount;
  }

  onWrite(listener: WriteListener): void {
    this.listeners.push(listener);
  }

  /**
   * The stored object for a key, or undefined. Decoding never mutates its input (sibling values
   * become views of it), so the store's shared bytes will do; a key read again is usually
   * answered with the object decoded last time (see DecodedCache).
   */
  read(partition: number, key: string): Promise<VersionedObject | undefined> {
    // A `then`, not an async function: this is on every GET's path.
    return this.readStored(partition, key).then((bytes) => this.decodeStored(key, bytes));
  }

  private decodeStored(key: string, bytes: Uint8Array | undefined): VersionedObject | undefined {
    if (bytes === undefined) return undefined;
    return this.decoded === undefined ? decodeObject(bytes) : this.decoded.decode(key, bytes);
  }

  /**
   * The key's stored version if the version cache knows it (no store read), else undefined.
   * Safe outside the key's lock, for a reader: an entry is set only once its write has landed
   * and is dropped before a removal, so what this returns was the stored version at some
   * moment during the call, as a store read would be.
   */
  cachedVersion(partition: number, key: string): VersionStamp | undefined {
    return this.versions?.get(partition, key);
  }

  /**
   * The stored bytes of a key (encodeObject's format), not decoded or verified, or undefined;
   * the caller must not mutate them. For a peer's read: it decodes (and verifies) them itself,
   * so decoding here too would only be thrown away. A corrupt copy then fails the read at the
   * reader, which counts this replica as failed, as when the replica refused it.
   */
  readStored(partition: number, key: string): Promise<Uint8Array | undefined> {
    // A key never held here needs no store read (see KeyFilter).
    if (this.keys?.absent(key) === true) return Promise.resolve(undefined);
    return this.readFromStore(partition, key);
  }

  /** readStored without asking the key filter (for callers that already did). */
  private readFromStore(partition: number, key: string): Promise<Uint8Array | undefined> {
    try {
      return this.components.store.getShared('obj', objectKey(partition, key));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Mint a new version as the coordinating replica, for a client's write: one whose context
   * would leave the key with a version that could not be handed back as a context is refused
   * (BAD_CONTEXT; see mint's `returnable`). When this replica holds nothing for the
   * key it cannot prove it has seen all of its own earlier dots for it (data may have been
   * handed off or lost), so it mints under a fresh, never-used actor id: its new dot can then
   * never be mistaken for, or dominate, a version it did not see (the KV679 class of bug).
   */
  coordinate(
    partition: number,
    key: string,
    context: VersionVector,
    write: WriteValue,
    now: number,
    hintsFor: readonly string[] = [],
  ): Promise<{ object: VersionedObject; dot: Dot }> {
    // Not async itself (here and in apply): the lock's promise is the answer, and an async
    // wrapper would add a frame and a promise per write for nothing.
    return this.lock.run(key, async () => {
      // The usual write carries the context of the version it replaces: then mint needs only
      // that version's clock, which the version cache may know without a read.
      const stamp = this.versions?.get(partition, key);
      if (stamp !== undefined && contextCoversAll(context, stamp)) {
        const minted = mint(versioned(stamp.clock, []), context, write, this.init.actor, now, true);
        await this.persist(partition, key, stamp, minted.object, hintsFor);
        return minted;
      }
      // A key never held here (see KeyFilter) is not read: the usual insert.
      const { before, corrupt } = this.keys?.absent(key) === true ? ABSENT : await this.readForWrite(partition, key);
      const actor = before ? this.init.actor : this.freshActor();
      const minted = mint(before, context, write, actor, now, true);
      await this.persist(partition, key, before, minted.object, hintsFor, true, corrupt);
      return minted;
    });
  }

  /**
   * Merge a version received from another replica (replication, hint delivery, read repair,
   * anti-entropy). Returns the merged object and whether anything changed here. With
   * `verifyStored`, the stored copy is read and decoded even when the version cache knows its
   * version (anti-entropy's repairs: the copy may have rotted on disk under the cache).
   */
  apply(
    partition: number,
    key: string,
    incoming: VersionedObject,
    hintsFor: readonly string[] = [],
    verifyStored = false,
  ): Promise<{ object: VersionedObject; changed: boolean }> {
    return this.lock.run(key, async () => {
      // The usual replication case, a newer version arriving, needs only the stored version's
      // stamp, which the version cache may know without a read.
      if (verifyStored) this.forgetNow(partition, key);
      const stamp = verifyStored ? undefined : this.versions?.get(partition, key);
      if (stamp !== undefined && mergeKeepsIncoming(stamp, incoming)) {
        const changed = !sameVersion(stamp, incoming);
        if (changed || hintsFor.length > 0) await this.persist(partition, key, stamp, incoming, hintsFor, changed);
        return { object: incoming, changed };
      }
      const { before, corrupt } = this.keys?.absent(key) === true ? ABSENT : await this.readForWrite(partition, key);
      let object = before ? merge(before, incoming) : incoming;
      // The usual replication case: the incoming version supersedes ours. Keep `incoming`
      // itself (the same version; contents are identified by dots) so persist stores the
      // bytes it arrived as instead of encoding and checksumming the value again.
      if (before && object !== incoming && sameVersion(object, incoming)) object = incoming;
      const changed = !before || !sameVersion(before, object);
      if (changed || hintsFor.length > 0) await this.persist(partition, key, before, object, hintsFor, changed, corrupt);
      return { object, changed };
    });
  }

  /**
   * Forget what this replica and its store remember of the key's stored copy (its version,
   * the store's cached bytes), so that the next write or read of it goes to the database: for
   * a copy found damaged there. Without this a write would take the cached version for the
   * stored one and merge past the damage (the anti-entropy tree would then drift from the
   * store), and a repair would find the cached healthy bytes and change nothing. Done at once
   * (a cache miss only means a read of the store), and again under the key's lock: a write in
   * progress may have read the cached copy, and would record its version once it is done.
   */
  forgetCached(partition: number, key: string): void {
    this.forgetNow(partition, key);
    void this.lock.run(key, async () => this.forgetNow(partition, key));
  }

  /** forgetCached's work, for a caller that holds the key's lock. */
  private forgetNow(partition: number, key: string): void {
    this.versions?.delete(key);
    this.components.store.uncache('obj', objectKey(partition, key));
  }

  /** Park hints for owners that missed the current version of a key (the object is already here). */
  async addHints(partition: number, key: string, owners: readonly string[]): Promise<void> {
    if (owners.length === 0) return;
    await this.lock.run(key, async () => {
      const { ops, added } = await this.hintOps(partition, key, owners);
      await this.components.store.batch(ops);
      this.hintCount += added;
    });
  }

  /**
   * Delete a hint only if it still carries `seq` (no newer write re-parked it meanwhile).
   * Returns true if it was deleted.
   */
  async clearHint(owner: string, partition: number, key: string, seq: Uint8Array): Promise<boolean> {
    return this.lock.run(key, async () => {
      const hk = hintKey(owner, partition, key);
      const cur = await this.components.store.get('hint', hk);
      if (!cur || !bytesEqual(cur, seq)) return false;
      await this.components.store.del('hint', hk);
      this.hintCount = Math.max(0, this.hintCount - 1);
      return true;
    });
  }

  private freshActor(): Actor {
    const b = this.components.random.bytes(6);
    let s = '';
    for (const x of b) s += x.toString(36).padStart(2, '0');
    return `${this.init.actor}~${s}`;
  }

  /** Hint puts for `owners`, and how many of them are new (counted once the batch commits). */
  private async hintOps(partition: number, key: string, owners: readonly string[]): Promise<{ ops: BatchOp[]; added: number }> {
    const ops: BatchOp[] = [];
    let added = 0;
    for (let i = 0; i < owners.length; i++) {
      const owner = owners[i] as string;
      // An owner named twice (hintsFor comes from peers) is one hint: counted twice, the count
      // would never fall back to 0 once it is delivered, and a leave waits for 0.
      if (i > 0 && owners.indexOf(owner) < i) continue;
      const hk = hintKey(owner, partition, key);
      if ((await this.components.store.get('hint', hk)) === undefined) added++;
      ops.push({ type: 'put', ns: 'hint', key: hk, value: hintValue(++this.hintSeq) });
    }
    return { ops, added };
  }

  /**
   * The stored object, read inside the key's critical section (the caller holds the lock),
   * which is what makes it safe to record its version in the version cache: no change to the
   * key can land between this read and the next one made under the lock.
   */
  private async readLocked(partition: number, key: string): Promise<VersionedObject | undefined> {
    // Straight to the store: the writers asked the key filter before coming here, and the
    // removers (dropIfSame, reap) expect the key to be held.
    const object = this.decodeStored(key, await this.readFromStore(partition, key));
    if (object === undefined) this.versions?.delete(key);
    else this.versions?.set(partition, key, object);
    return object;
  }

  /**
   * For a writer whose read of the stored copy threw `err`: a copy that fails to decode
   * (damaged on disk, see isCorruptObject) counts as absent, so the write replaces it. Nothing
   * in it can be read any more, and keeping it would fail every later write of the key on this
   * replica, and every anti-entropy repair of it. A coordinator then mints under a fresh actor,
   * as for a key it never held. Logged loudly; any version only that copy held is lost, which
   * is what the other replicas are for. Any other error is rethrown.
   */
  private replacingCorrupt(partition: number, key: string, err: unknown): typeof ABSENT_CORRUPT {
    if (!isCorruptObject(err)) throw err;
    this.components.log.error({ partition, key, err: String(err) }, 'stored copy is corrupt; replacing it with the version being written');
    return ABSENT_CORRUPT;
  }

  /**
   * readLocked for a writer, with a damaged copy as absent (see replacingCorrupt). A `then`,
   * not an async function: no extra frame per write.
   */
  private readForWrite(partition: number, key: string): Promise<{ before: VersionedObject | undefined; corrupt: boolean }> {
    return this.readLocked(partition, key).then(
      (before) => ({ before, corrupt: false }),
      (err: unknown) => this.replacingCorrupt(partition, key, err),
    );
  }

  /**
   * Delete the key's stored copy if it is still damaged (see isCorruptObject); for a copy this
   * node only held as a stray, which has nothing left to hand over. Returns true if deleted.
   */
  async dropCorrupt(partition: number, key: string): Promise<boolean> {
    return this.lock.run(key, async () => {
      const bytes = await this.readFromStore(partition, key);
      if (bytes === undefined || decodeUnlessCorrupt(bytes) !== undefined) return false;
      this.versions?.delete(key);
      await this.components.store.del('obj', objectKey(partition, key));
      for (const l of this.listeners) l(partition, key, undefined, undefined, true);
      return true;
    });
  }

  private async persist(
    partition: number,
    key: string,
    before: VersionStamp | undefined,
    after: VersionedObject,
    hintsFor: readonly string[],
    changed = true,
    replacedCorrupt = false,
  ): Promise<void> {
    // The usual write parks no hint: skip hintOps' await (an async frame per write) and its
    // result object.
    let ops: BatchOp[];
    let added = 0;
    if (hintsFor.length === 0) ops = [];
    else ({ ops, added } = await this.hintOps(partition, key, hintsFor));
    if (changed) {
      // Before the write goes out: the filter must never call a stored key absent. A key held
      // already (`before`) is in the filter, or in the start scan's snapshot.
      if (before === undefined) this.keys?.add(key);
      if (this.keys?.gaveUp === true) this.warnKeyFilterGaveUp();
      ops.push({ type: 'put', ns: 'obj', key: objectKey(partition, key), value: encodeObject(after) });
    }
    try {
      await this.components.store.batch(ops);
    } catch (err) {
      // Whether the write landed is not known for every store: forget the key's version.
      this.versions?.delete(key);
      throw err;
    }
    this.hintCount += added;
    if (!changed) return;
    this.versions?.set(partition, key, after);
    for (const l of this.listeners) l(partition, key, before, after, replacedCorrupt);
  }

  /** Delete the key's object (the caller holds the lock and has read it as `before`). */
  private async remove(partition: number, key: string, before: VersionedObject): Promise<void> {
    // Forgotten first: whatever the delete's outcome, the cache must not claim a version.
    this.versions?.delete(key);
    await this.components.store.del('obj', objectKey(partition, key));
    for (const l of this.listeners) l(partition, key, before, undefined, false);
  }

  // ---------------------------------------------------------------- anti-entropy (tombstone reaping)

  /** Delete the key if its stored version is still `expected` (after a hand-off to its owners). */
  async dropIfSame(partition: number, key: string, expected: VersionedObject): Promise<boolean> {
    return this.lock.run(key, async () => {
      const before = await this.readLocked(partition, key);
      if (!before || !sameVersion(before, expected)) return false;
      await this.remove(partition, key, before);
      return true;
    });
  }

  /**
   * Delete a tombstone for good, but only if the stored object is still exactly `expected`
   * (same version) and every sibling of it is a tombstone: a write that arrived after the
   * reaper checked the replicas wins. Listeners see the removal (`after` undefined).
   * Returns true if the key was deleted.
   */
  async reap(partition: number, key: string, expected: VersionedObject): Promise<boolean> {
    return this.lock.run(key, async () => {
      const before = await this.readLocked(partition, key);
      if (!before || before.siblings.length === 0 || !isDeleted(before) || !sameVersion(before, expected)) return false;
      await this.remove(partition, key, before);
      return true;
    });
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
