/**
 * A bounded map from stored key to stored value, kept by SublevelStore for one namespace so a
 * read of a recently read key skips the database. Why: on a loaded node a LevelDB read cost
 * ~5-8 µs of main-thread CPU, most of it the memtable's skip-list search (a cache miss per
 * level); a hit here is a hash lookup (and a copy, unless the reader shares the bytes).
 *
 * The cache holds only what the database holds: the store fills it from its own reads and
 * drops a key's entry when a write to that key lands or fails (see SublevelStore), and it is
 * never the only copy of anything. Writes do not fill it: a replica write needs only the
 * stored version, which the replica's version cache knows, and copying every written value in
 * (a malloc'd buffer that lives until evicted) cost more than the reads it saved: in
 * `bench:ab`, dropping instead of refreshing made PUT 256 B 14 %, GET 8 % and the 50/50 mix
 * 35 % faster (3 rounds, each B faster). Eviction is first-in first-out (FifoCache).
 */
import { Buffer } from 'node:buffer';
import { FifoCache } from './fifo-cache.js';

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
  readonly #entries: FifoCache<Uint8Array>;

  constructor(maxBytes: number, maxValueBytes = MAX_VALUE_BYTES) {
    if (!(Number.isSafeInteger(maxBytes) && maxBytes >= 0)) {
      throw new RangeError(`read cache size must be a non-negative integer, got ${maxBytes}`);
    }
    this.maxBytes = maxBytes;
    this.maxValueBytes = Math.min(maxValueBytes, Math.floor(maxBytes / 16));
    this.#entries = new FifoCache(maxBytes, charge);
  }

  /** Bytes charged for the entries held now (keys, values and overhead). */
  get bytes(): number {
    return this.#entries.bytes;
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
    if (this.accepts(value.byteLength)) this.#entries.set(keyString(key), value);
    else this.delete(key);
  }

  delete(key: Uint8Array): void {
    if (this.#entries.size > 0) this.#entries.delete(keyString(key));
  }

  clear(): void {
    this.#entries.clear();
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
