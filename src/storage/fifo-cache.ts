/**
 * A byte-bounded map from string keys to values, evicting first-in first-out. The object
 * cache (ReadCache) and the replica's version cache are both built on it. Eviction is FIFO
 * because it is cheap (nothing moves on a hit or a rewrite), and under a working set larger
 * than the cache it still keeps the keys most recently brought in.
 */
export class FifoCache<V> {
  readonly maxBytes: number;
  readonly #charge: (key: string, value: V) => number;
  readonly #entries = new Map<string, V>();
  #bytes = 0;
  /**
   * Where eviction stopped: the oldest entry still held is next. A fresh iterator per eviction
   * would walk every slot the Map has deleted since its last rehash (V8 leaves deleted entries
   * in place until then), thousands of them once the cache is full. Measured on 10k keys
   * through a full 4 MiB cache, a read and a write of a key took 1.75 µs with that walk and
   * 0.85 µs without. A live Map iterator follows deletions, additions and rehashes.
   */
  #oldest: MapIterator<[string, V]> | undefined;
  /** Most entries held since #oldest was opened (see #drop). */
  #oldestPeak = 0;

  /** `charge` is the bytes an entry is counted for; it must give the same answer for the same entry. */
  constructor(maxBytes: number, charge: (key: string, value: V) => number) {
    if (!(Number.isSafeInteger(maxBytes) && maxBytes >= 0)) {
      throw new RangeError(`cache size must be a non-negative integer, got ${maxBytes}`);
    }
    this.maxBytes = maxBytes;
    this.#charge = charge;
  }

  /** Bytes charged for the entries held now. */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): V | undefined {
    return this.#entries.size === 0 ? undefined : this.#entries.get(key);
  }

  /** Hold `value` for `key`. Entries over the whole budget are evicted at once. */
  set(key: string, value: V): void {
    const old = this.#entries.get(key);
    // A key already held keeps its place in line (a Map replaces values in place): cheaper
    // than moving it to the back, and the order only matters once the cache is full.
    this.#entries.set(key, value);
    if (this.#entries.size > this.#oldestPeak) this.#oldestPeak = this.#entries.size;
    this.#bytes += this.#charge(key, value) - (old === undefined ? 0 : this.#charge(key, old));
    if (this.#bytes > this.maxBytes) this.#evict();
  }

  delete(key: string): void {
    if (this.#entries.size === 0) return;
    const old = this.#entries.get(key);
    if (old !== undefined) this.#drop(key, old);
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
    this.#oldest = undefined;
  }

  #drop(key: string, old: V): void {
    this.#entries.delete(key);
    this.#bytes -= this.#charge(key, old);
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
      // Reached only when the entries left are charged more than the budget in all (an entry
      // over the whole budget): everything has been evicted; a finished iterator stays
      // finished, so drop it and let the next eviction start a fresh one.
      if (next.done === true) {
        this.#oldest = undefined;
        return;
      }
      const [k, v] = next.value;
      this.#entries.delete(k);
      this.#bytes -= this.#charge(k, v);
    }
  }
}
