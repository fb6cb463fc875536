/**
 * A bounded map from stored key to stored value, kept by SublevelStore for one namespace so a
 * read of a recently written or read key skips the database. Why: every replica write reads
 * the key first (to merge), and on a loaded node a LevelDB read cost ~5-8 µs of main-thread
 * CPU, most of it the memtable's skip-list search (a cache miss per level); a hit here is a
 * hash lookup and a copy.
 *
 * The cache holds only what the database holds: the store fills it from its own reads and
 * refreshes it when a write has landed (see SublevelStore), and it is never the only copy of
 * anything. Eviction is first-in first-out, where a write moves its key to the back: cheap
 * (no reordering on a hit) and keeps the recently written keys, which are the ones the next
 * write-before-read will ask for.
 */
import { Buffer } from 'node:buffer';

/**
 * Bytes charged per entry on top of key and value: the Map slot, the key string, the
 * Uint8Array and its ArrayBuffer (measured: 100k entries with 20-byte keys took 261 B of V8
 * heap each beyond the values' own bytes), plus the malloc header of the value's memory.
 */
export const ENTRY_OVERHEAD = 280;

export class ReadCache {
  readonly maxBytes: number;
  /** Largest value kept: a big value would push out many small ones for one read. */
  readonly maxValueBytes: number;
  readonly #entries = new Map<string, Uint8Array>();
  #bytes = 0;

  constructor(maxBytes: number) {
    if (!(Number.isSafeInteger(maxBytes) && maxBytes >= 0)) {
      throw new RangeError(`read cache size must be a non-negative integer, got ${maxBytes}`);
    }
    this.maxBytes = maxBytes;
    this.maxValueBytes = Math.min(64 * 1024, Math.floor(maxBytes / 16));
  }

  /** Bytes charged for the entries held now (keys, values and overhead). */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
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
    this.#drop(k);
    if (value.byteLength > this.maxValueBytes) return;
    this.#entries.set(k, value);
    this.#bytes += charge(k, value);
    if (this.#bytes > this.maxBytes) this.#evict();
  }

  delete(key: Uint8Array): void {
    if (this.#entries.size > 0) this.#drop(keyString(key));
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }

  #drop(k: string): void {
    const old = this.#entries.get(k);
    if (old === undefined) return;
    this.#entries.delete(k);
    this.#bytes -= charge(k, old);
  }

  #evict(): void {
    for (const [k, v] of this.#entries) {
      if (this.#bytes <= this.maxBytes) return;
      this.#entries.delete(k);
      this.#bytes -= charge(k, v);
    }
  }
}

function charge(k: string, v: Uint8Array): number {
  return k.length + v.byteLength + ENTRY_OVERHEAD;
}

/** Latin-1 maps each byte to one UTF-16 unit: distinct keys always give distinct strings. */
function keyString(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}
