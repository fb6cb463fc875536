/**
 * The stored version (clock and dots, no values) of recently written or read keys, kept by
 * LocalReplica so that a write can usually skip reading the copy it replaces. Why: every write
 * on every replica merges with the stored copy, and for values the object cache does not hold
 * (over 1 KiB) that was a LevelDB read per replica per write; under the benchmark's 4 KiB PUT
 * those reads cost about a third of all server CPU. A newer version arriving (the usual case)
 * needs only the old copy's version: see mergeKeepsIncoming and contextCoversAll.
 *
 * Exact, never a guess: LocalReplica reads and updates it only inside the key's critical
 * section, where every change to the key's stored object is made, and drops an entry whenever
 * the outcome of a change is unknown. A miss only means "read the store".
 */
import { FifoCache } from '../storage/fifo-cache.js';
import type { Dot, VersionStamp } from '../version/index.js';

/**
 * Bytes charged per entry beyond its key, and per clock entry and sibling. Measured as V8 heap
 * held beyond the keys by entries made from decoded objects (which is what the cache keeps
 * alive once those objects are gone): 329 B each with one actor and one sibling, 495 B with
 * three of each.
 */
export const VERSION_ENTRY_OVERHEAD = 245;
export const VERSION_PER_DOT = 42;

interface Entry {
  readonly partition: number;
  readonly stamp: VersionStamp;
  /** What the entry is charged, computed once. */
  readonly bytes: number;
}

export class VersionCache {
  readonly #entries: FifoCache<Entry>;
  #hits = 0;
  #misses = 0;

  constructor(maxBytes: number) {
    this.#entries = new FifoCache(maxBytes, (_, e) => e.bytes);
  }

  /** Figures since the cache was made. */
  get stats(): { entries: number; bytes: number; hits: number; misses: number } {
    return { entries: this.#entries.size, bytes: this.#entries.bytes, hits: this.#hits, misses: this.#misses };
  }

  /** The stored version of `key` in `partition`, if known. */
  get(partition: number, key: string): VersionStamp | undefined {
    const e = this.#entries.get(key);
    if (e === undefined || e.partition !== partition) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    return e.stamp;
  }

  /** Record `version` as the stored version of the key (its values are not kept). */
  set(partition: number, key: string, version: VersionStamp): void {
    const stamp = stampOf(version);
    let actors = 0;
    for (const _ in stamp.clock) actors++;
    const bytes = key.length + VERSION_ENTRY_OVERHEAD + VERSION_PER_DOT * (stamp.siblings.length + actors);
    this.#entries.set(key, { partition, stamp, bytes });
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }
}

/**
 * A stamp that holds nothing of the version's values: new sibling records with the same
 * (immutable) dots, and the same (immutable) clock.
 */
function stampOf(version: VersionStamp): VersionStamp {
  const siblings: { readonly dot: Dot }[] = new Array(version.siblings.length);
  for (let i = 0; i < siblings.length; i++) siblings[i] = { dot: version.siblings[i]!.dot };
  return { clock: version.clock, siblings };
}
