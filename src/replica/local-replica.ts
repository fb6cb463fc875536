/**
 * This node's replica of its partitions: the only code that reads or writes versioned
 * objects in the Store. Every change to a key goes through one per-key critical section;
 * the object and its hints change in one atomic batch, and write listeners (the
 * anti-entropy hash tree, kept in memory) hear of every change after it is durable.
 */
import type { Logger } from '../observability/logger.js';
import type { CacheStats } from '../observability/metrics.js';
import type { Random } from '../runtime/random.js';
import { FifoCache } from '../storage/fifo-cache.js';
import { type BatchOp, hintKey, MAX_CACHED_OBJECT_BYTES, objectKey, type Store } from '../storage/index.js';
import {
  type Actor,
  contextCoversAll,
  type Dot,
  decodeObject,
  encodeObject,
  encodingOf,
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
import { KeyLock } from './key-lock.js';
import { VersionCache } from './version-cache.js';

/**
 * Called after a key's stored version changed (anti-entropy keeps its trees current with it).
 * `before` is the version replaced (its values may not have been read), undefined when the
 * key was new here; `after` is undefined when the key was removed from the store (a reaped
 * tombstone).
 */
export type WriteListener = (
  partition: number,
  key: string,
  before: VersionStamp | undefined,
  after: VersionedObject | undefined,
) => void;

/** Hint values: a change counter, so delivery deletes a hint only if no newer write re-parked it. */
function hintValue(seq: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, seq);
  return b;
}

/** Default bound of the version cache (see VersionCache). */
export const VERSION_CACHE_BYTES = 4 * 1024 * 1024;

/** Length of the bytes an object was decoded from (every object in the decoded cache was). */
function encodedLength(object: VersionedObject): number {
  return encodingOf(object)?.length ?? 0;
}

/** Default bound of the decoded-object cache (see LocalReplica.read). */
export const DECODED_CACHE_BYTES = 8 * 1024 * 1024;

/**
 * Bytes charged per decoded object beyond its key and its encoded bytes: the object, its clock
 * (a dictionary-mode object), the sibling list, each sibling, its dot, the view of its value
 * and the Map slot. Measured: 20k one-sibling objects (256 B values, one actor) held ~620 B
 * of V8 heap each beyond their bytes and keys, Map slots included.
 */
export const DECODED_ENTRY_OVERHEAD = 640;

export interface LocalReplicaInit {
  readonly actor: Actor;
  /** Bytes for the version cache; 0 turns it off. Default {@link VERSION_CACHE_BYTES}. */
  readonly versionCacheBytes?: number;
  /** Bytes for the decoded-object cache; 0 turns it off. Default {@link DECODED_CACHE_BYTES}. */
  readonly decodedCacheBytes?: number;
}

export class LocalReplica {
  private readonly lock = new KeyLock();
  /** Stored versions of recent keys; read and changed only under the key's lock. */
  private readonly versions: VersionCache | undefined;
  /** Recently read objects, decoded, each valid only for the very bytes it was decoded from (see read). */
  private readonly decoded: FifoCache<VersionedObject> | undefined;
  private decodedHits = 0;
  private decodedMisses = 0;
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
    this.decoded =
      decodedBytes > 0
        ? new FifoCache<VersionedObject>(decodedBytes, (key, object) => key.length + encodedLength(object) + DECODED_ENTRY_OVERHEAD)
        : undefined;
  }

  /** The decoded-object cache's figures (see read), or undefined if it is off. */
  get decodedCacheStats(): CacheStats | undefined {
    const cache = this.decoded;
    if (cache === undefined) return undefined;
    return { entries: cache.size, bytes: cache.bytes, hits: this.decodedHits, misses: this.decodedMisses };
  }

  /** The version cache's figures, or undefined if it is off. */
  get versionCacheStats(): CacheStats | undefined {
    return this.versions?.stats;
  }

  /** Recount parked hints (call once at start). */
  async start(): Promise<void> {
    // Hint change counters need only be unique within this process's life and differ from
    // any value a hint read before a restart could carry; a random high start does both.
    this.hintSeq = this.components.random.int(2 ** 40) * 1024;
    let n = 0;
    for await (const _ of this.components.store.keys('hint')) n++;
    this.hintCount = n;
  }

  get pendingHints(): number {
    return this.hintCount;
  }

  onWrite(listener: WriteListener): void {
    this.listeners.push(listener);
  }

  /**
   * The stored object for a key, or undefined.
   *
   * The store's object cache hands out the very bytes it holds (getShared), the same object on
   * every hit until a write or an eviction drops them; decoding never mutates its input (sibling
   * values become views of it), so those shared bytes will do. A key read again and again would
   * then be decoded, checksummed and its clock rebuilt from the same bytes on every read: the
   * decoded-object cache keeps the last object decoded for each key, and hands it out again
   * only when the store returned the very bytes it was decoded from (an object remembers them;
   * see encodingOf). Identity, not a version check: a write or eviction in between gives other
   * bytes, and those are decoded afresh. Objects are immutable, so sharing one is safe.
   */
  read(partition: number, key: string): Promise<VersionedObject | undefined> {
    // A `then`, not an async function: this is on every GET's path.
    return this.readStored(partition, key).then((bytes) => this.decodeRead(key, bytes));
  }

  private decodeRead(key: string, bytes: Uint8Array | undefined): VersionedObject | undefined {
    if (bytes === undefined) return undefined;
    const cache = this.decoded;
    // Bytes the store's object cache does not hold come back fresh on every read: their
    // decoded form could never be handed out again, and would only hold on to the bytes.
    if (cache === undefined || bytes.length > MAX_CACHED_OBJECT_BYTES) return decodeObject(bytes);
    const known = cache.get(key);
    if (known !== undefined && encodingOf(known) === bytes) {
      this.decodedHits++;
      return known;
    }
    this.decodedMisses++;
    const object = decodeObject(bytes);
    cache.set(key, object);
    return object;
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
    try {
      return this.components.store.getShared('obj', objectKey(partition, key));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Mint a new version as the coordinating replica. When this replica holds nothing for the
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
        const minted = mint(versioned(stamp.clock, []), context, write, this.init.actor, now);
        await this.persist(partition, key, stamp, minted.object, hintsFor);
        return minted;
      }
      const before = await this.readLocked(partition, key);
      const actor = before ? this.init.actor : this.freshActor();
      const minted = mint(before, context, write, actor, now);
      await this.persist(partition, key, before, minted.object, hintsFor);
      return minted;
    });
  }

  /**
   * Merge a version received from another replica (replication, hint delivery, read repair,
   * anti-entropy). Returns the merged object and whether anything changed here.
   */
  apply(
    partition: number,
    key: string,
    incoming: VersionedObject,
    hintsFor: readonly string[] = [],
  ): Promise<{ object: VersionedObject; changed: boolean }> {
    return this.lock.run(key, async () => {
      // The usual replication case, a newer version arriving, needs only the stored version's
      // stamp, which the version cache may know without a read.
      const stamp = this.versions?.get(partition, key);
      if (stamp !== undefined && mergeKeepsIncoming(stamp, incoming)) {
        const changed = !sameVersion(stamp, incoming);
        if (changed || hintsFor.length > 0) await this.persist(partition, key, stamp, incoming, hintsFor, changed);
        return { object: incoming, changed };
      }
      const before = await this.readLocked(partition, key);
      let object = before ? merge(before, incoming) : incoming;
      // The usual replication case: the incoming version supersedes ours. Keep `incoming`
      // itself (the same version; contents are identified by dots) so persist stores the
      // bytes it arrived as instead of encoding and checksumming the value again.
      if (before && object !== incoming && sameVersion(object, incoming)) object = incoming;
      const changed = !before || !sameVersion(before, object);
      if (changed || hintsFor.length > 0) await this.persist(partition, key, before, object, hintsFor, changed);
      return { object, changed };
    });
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
    for (const owner of owners) {
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
    const object = await this.read(partition, key);
    if (object === undefined) this.versions?.delete(key);
    else this.versions?.set(partition, key, object);
    return object;
  }

  private async persist(
    partition: number,
    key: string,
    before: VersionStamp | undefined,
    after: VersionedObject,
    hintsFor: readonly string[],
    changed = true,
  ): Promise<void> {
    // The usual write parks no hint: skip hintOps' await (an async frame per write).
    const { ops, added } = hintsFor.length === 0 ? { ops: [] as BatchOp[], added: 0 } : await this.hintOps(partition, key, hintsFor);
    if (changed) ops.push({ type: 'put', ns: 'obj', key: objectKey(partition, key), value: encodeObject(after) });
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
    for (const l of this.listeners) l(partition, key, before, after);
  }

  /** Delete the key's object (the caller holds the lock and has read it as `before`). */
  private async remove(partition: number, key: string, before: VersionedObject): Promise<void> {
    // Forgotten first: whatever the delete's outcome, the cache must not claim a version.
    this.versions?.delete(key);
    await this.components.store.del('obj', objectKey(partition, key));
    for (const l of this.listeners) l(partition, key, before, undefined);
  }

  // ---------------------------------------------------------------- anti-entropy (tombstone reaping)

  /**
   * Delete a tombstone for good, but only if the stored object is still exactly `expected`
   * (same version) and every sibling of it is a tombstone: a write that arrived after the
   * reaper checked the replicas wins. Listeners see the removal (`after` undefined).
   * Returns true if the key was deleted.
   */
  /** Delete the key if its stored version is still `expected` (after a hand-off to its owners). */
  async dropIfSame(partition: number, key: string, expected: VersionedObject): Promise<boolean> {
    return this.lock.run(key, async () => {
      const before = await this.readLocked(partition, key);
      if (!before || !sameVersion(before, expected)) return false;
      await this.remove(partition, key, before);
      return true;
    });
  }

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
