/**
 * Which keys this replica has never stored: a Bloom filter over every key it held at start and
 * every key written since, kept by LocalReplica so that writing a key it does not hold skips the
 * store read that would only confirm the key is absent. Why: every insert is a write of a key no
 * replica holds yet, and each replica read the store first (a LevelDB lookup of an absent key,
 * ~10 µs of main-thread CPU on a loaded node, mostly the memtable's skip-list search), three
 * per insert at N=3.
 *
 * Exact where it answers: a key added is never reported absent (a Bloom filter has no false
 * negatives), keys are added before their first write reaches the store, and until the scan of
 * what the store held at start has finished nothing is reported absent. A key is never taken
 * out (a removed key still reads as present; the store read then finds nothing, as before).
 * A false "present" (under 1 % per layer) only means the store read happens as without it.
 *
 * Scalable: layers of doubling size, each filled to ~10 bits per key (7 probes), so nothing is
 * rebuilt as the key count grows: 1M keys take four layers, 1.9 MiB in all. Bounded: past
 * {@link KEY_FILTER_MAX_BYTES} it gives up and answers nothing until the node restarts.
 */

import type { CacheStats } from '../observability/metrics.js';
import { mix32 } from '../ring/hash.js';

/** Bits of the first layer (128 KiB); each later layer has twice the bits of the one before. */
const FIRST_LAYER_BITS = 1 << 20;
/** Largest layer (128 MiB): masks stay within 31 bits. Reached only past ~100M keys. */
const MAX_LAYER_BITS = 1 << 30;
/** Bits per key of a layer at its capacity: with 7 probes, ~0.8 % false positives when full. */
const BITS_PER_KEY = 10;
const PROBES = 7;

class Layer {
  readonly bits: Uint32Array;
  /** Bit count minus one (a power of two, so a probe is a mask, not a division). */
  readonly mask: number;
  added = 0;

  /** Keys it takes before the next layer is opened. */
  readonly capacity: number;

  /** `bits`: a power of two, at least 32. */
  constructor(bits: number) {
    this.bits = new Uint32Array(bits >>> 5);
    this.mask = bits - 1;
    this.capacity = Math.floor(bits / BITS_PER_KEY);
  }

  has(h1: number, h2: number): boolean {
    for (let i = 0; i < PROBES; i++) {
      const bit = (h1 + Math.imul(i, h2)) & this.mask;
      if ((this.bits[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }

  add(h1: number, h2: number): void {
    for (let i = 0; i < PROBES; i++) {
      const bit = (h1 + Math.imul(i, h2)) & this.mask;
      this.bits[bit >>> 5]! |= 1 << (bit & 31);
    }
    this.added++;
  }
}

/** The two hashes of a key's UTF-16 code units (two FNV-style passes, each mixed by mix32). */
let hash1 = 0;
let hash2 = 0;

function hashKey(key: string): void {
  let a = 0x811c9dc5;
  let b = 0x2545f491 ^ key.length;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  hash1 = mix32(a);
  // Odd, so the probes of one key walk distinct bits of a power-of-two table.
  hash2 = mix32(b ^ hash1) | 1;
}

/**
 * Default bound of the bit tables: 16 MiB holds ~13M keys. Keys are never taken out, so a node
 * that sees a stream of new keys (written, deleted, reaped) would grow the filter until restart;
 * past the bound the filter gives up instead (see {@link KeyFilter.gaveUp}).
 */
export const KEY_FILTER_MAX_BYTES = 16 * 1024 * 1024;

export class KeyFilter {
  #layers: Layer[];
  #complete = false;
  #gaveUp = false;
  /** Answers, once complete: absent (a store read saved) and maybe present (read as before). */
  #absent = 0;
  #maybe = 0;

  /** As a cache: hits are store reads it saved, misses the checks that still read the store. */
  get stats(): CacheStats {
    return { entries: this.size, bytes: this.bytes, hits: this.#absent, misses: this.#maybe };
  }

  /**
   * `maxBytes`: the bound of the bit tables (default {@link KEY_FILTER_MAX_BYTES}). The first
   * layer is 128 KiB, or a quarter of a smaller bound, so a bound always holds two layers.
   */
  constructor(private readonly maxBytes = KEY_FILTER_MAX_BYTES) {
    let bits = FIRST_LAYER_BITS;
    while (bits > 32 && bits / 8 > maxBytes / 4) bits /= 2;
    this.#layers = [new Layer(bits)];
  }

  /** True once every key the store held at start has been added (see markComplete). */
  get complete(): boolean {
    return this.#complete;
  }

  /**
   * True once the keys added outgrew the bound: the filter then answers nothing for the rest of
   * its life (every read goes to the store, as without it) and keeps only an empty table.
   */
  get gaveUp(): boolean {
    return this.#gaveUp;
  }

  /** Keys added (each counted once, except for the rare one a layer already reported present). */
  get size(): number {
    let n = 0;
    for (const l of this.#layers) n += l.added;
    return n;
  }

  /** Bytes of the filter's bit tables. */
  get bytes(): number {
    let n = 0;
    for (const l of this.#layers) n += l.bits.byteLength;
    return n;
  }

  /** The scan of the store's keys at start has finished: absent answers may be given. */
  markComplete(): void {
    if (!this.#gaveUp) this.#complete = true;
  }

  /** True only when `key` was certainly never added; false when it may have been, or before completion. */
  absent(key: string): boolean {
    if (!this.#complete) return false;
    hashKey(key);
    if (this.#has(hash1, hash2)) {
      this.#maybe++;
      return false;
    }
    this.#absent++;
    return true;
  }

  /** Remember `key` (a no-op when it may be present already, or once the filter gave up). */
  add(key: string): void {
    if (this.#gaveUp) return;
    hashKey(key);
    if (this.#has(hash1, hash2)) return;
    let last = this.#layers[this.#layers.length - 1]!;
    if (last.added >= last.capacity) {
      const bits = Math.min((last.mask + 1) * 2, MAX_LAYER_BITS);
      if (this.bytes + bits / 8 > this.maxBytes) {
        this.#giveUp();
        return;
      }
      last = new Layer(bits);
      this.#layers.push(last);
    }
    last.add(hash1, hash2);
  }

  #giveUp(): void {
    this.#gaveUp = true;
    this.#complete = false;
    this.#layers = [new Layer(32)];
  }

  #has(h1: number, h2: number): boolean {
    for (const l of this.#layers) if (l.has(h1, h2)) return true;
    return false;
  }
}
