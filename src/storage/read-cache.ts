/**
 * A bounded map from stored key to stored value, kept by SublevelStore for one namespace so a
 * read of a recently written or read key skips the database. Why: every replica write reads
 * the key first (to merge), and on a loaded node a LevelDB read cost ~5-8 µs of main-thread
 * CPU, most of it the memtable's skip-list search (a cache miss per level); a hit here is a
 * hash lookup and a copy.
 *
 * The cache holds only what the database holds: the store fills it from its own reads and
 * refreshes it when a write has landed (see SublevelStore), and it is never the only copy of
 * anything. Eviction is first-in first-out: cheap (nothing moves on a hit or a rewrite), and
 * under a working set larger than the cache it still keeps the keys most recently brought in.
 */
import { Buffer } from 'node:buffer';

/**
 * Bytes charged per entry on top of key and value: the Map slot, the key string, the
 * Uint8Array and its ArrayBuffer (measured: 100k entries with 20-byte keys took 261 B of V8
 * heap each beyond the values' own bytes), plus the malloc header of the value's memory.
 */
export const ENTRY_OVERHEAD = 280;

/**
 * Values above this size are not cached. For them copying in and out costs about what the
 * LevelDB lookup saved, and fewer fit: with 4 KiB values over 10k keys an 8 MiB cache held a
 * fifth of them, and the extra copies cost more than the hits saved (PUT 1,903 -> 1,537 and
 * GET 6,145 -> 3,784 ops/s in one back-to-back run).
 */
export const MAX_VALUE_BYTES = 1024;

export class ReadCache {
  readonly maxBytes: number;
  /**
   * Largest value kept (default {@link MAX_VALUE_BYTES}, and never over a sixteenth of the
   * cache): a big value would push out many small ones for one read.
   */
  readonly maxValueBytes: number;
  readonly #entries = new Map<string, Uint8Array>();
  #bytes = 0;
  /**
   * Where eviction stopped: the oldest entry still held is next. A fresh iterator per eviction
   * would walk every slot the Map has deleted since its last rehash (V8 leaves deleted entries
   * in place until then), thousands of them once the cache is full. Measured on 10k keys
   * through a full 4 MiB cache, a read and a write of a key took 1.75 µs with that walk and
   * 0.85 µs without. A live Map iterator follows deletions, additions and rehashes.
   */
  #oldest: MapIterator<[string, Uint8Array]> | undefined;
  /** Most entries held since #oldest was opened (see #drop). */
  #oldestPeak = 0;

  constructor(maxBytes: number, maxValueBytes = MAX_VALUE_BYTES) {
    if (!(Number.isSafeInteger(maxBytes) && maxBytes >= 0)) {
      throw new RangeError(`read cache size must be a non-negative integer, got ${maxBytes}`);
    }
    this.maxBytes = maxBytes;
    this.maxValueBytes = Math.min(maxValueBytes, Math.floor(maxBytes / 16));
  }

  /** Bytes charged for the entries held now (keys, values and overhead). */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Whether a value of this size would be kept: callers skip copying one that would not. */
  accepts(byteLength: number): boolean {
    return byteLength <= this.maxValueBytes;
  }

  /** The cached value itself (not a copy: the caller must not mutate or keep it). */
  get(key: Uint8Array): Uint8Array | undefined {
    return this.#entries.size === 0 ? undefined : this.#entries.get(keyString(key));
  }

  /**
   * Hold `value` for `key`, taking ownership of it: the caller must not mutate it afterwards.
   * A value too large to cache drops any entry the key had.
   */
  set(key: Uint8Array, value: Uint8Array): void {
    const k = keyString(key);
    const old = this.#entries.get(k);
    if (!this.accepts(value.byteLength)) {
      if (old !== undefined) this.#drop(k, old);
      return;
    }
    // A key already held keeps its place in line (a Map replaces values in place): cheaper
    // than moving it to the back, and the order only matters once the cache is full.
    this.#entries.set(k, value);
    if (this.#entries.size > this.#oldestPeak) this.#oldestPeak = this.#entries.size;
    this.#bytes += charge(k, value) - (old === undefined ? 0 : charge(k, old));
    if (this.#bytes > this.maxBytes) this.#evict();
  }

  delete(key: Uint8Array): void {
    if (this.#entries.size === 0) return;
    const k = keyString(key);
    const old = this.#entries.get(k);
    if (old !== undefined) this.#drop(k, old);
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
    this.#oldest = undefined;
  }

  #drop(k: string, old: Uint8Array): void {
    this.#entries.delete(k);
    this.#bytes -= charge(k, old);
    // Deletes outside eviction can shrink the Map into a new table, and a live iterator keeps
    // the old one, with the values it still references, until it next moves: after a wave of
    // deletes (a ring change, a reap) that would pin what the cache no longer counts. Let go of
    // it once the Map holds under half its peak (V8 shrinks a table below a quarter of its
    // capacity, which is under twice the peak); the next eviction opens a new one.
    if (this.#oldest !== undefined && this.#entries.size * 2 < this.#oldestPeak) this.#oldest = undefined;
  }

  #evict(): void {
    while (this.#bytes > this.maxBytes) {
      if (this.#oldest === undefined) {
        this.#oldest = this.#entries.entries();
        this.#oldestPeak = this.#entries.size;
      }
      const next = this.#oldest.next();
      // Not reached while over budget (every value is under a sixteenth of it); a finished
      // iterator stays finished, so drop it and let the next eviction start a fresh one.
      if (next.done === true) {
        this.#oldest = undefined;
        return;
      }
      const [k, v] = next.value;
      this.#entries.delete(k);
      this.#bytes -= charge(k, v);
    }
  }
}

function charge(k: string, v: Uint8Array): number {
  return k.length + v.byteLength + ENTRY_OVERHEAD;
}

/**
 * Each byte as one UTF-16 unit (Latin-1): distinct keys always give distinct strings.
 * fromCharCode over the bytes measured fastest for short keys (~100 ns for 20 bytes, half
 * of Buffer's toString); very long keys go through Buffer to stay clear of argument limits.
 */
function keyString(key: Uint8Array): string {
  if (key.length <= 1024) return String.fromCharCode.apply(null, key as unknown as number[]);
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}
