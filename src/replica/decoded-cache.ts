/**
 * Recently read objects, decoded, kept by LocalReplica so that a key read again and again is
 * not decoded, checksummed and its clock rebuilt from the same bytes on every read.
 *
 * Exact, never a guess, and nothing to invalidate: the store's object cache hands out the very
 * bytes it holds (getShared), the same object on every hit until a write or an eviction drops
 * them, and a decoded object remembers the bytes it came from (see encodingOf). An entry is
 * handed out only for those very bytes; a write or eviction in between gives other bytes, and
 * those are decoded afresh. Objects are immutable, so sharing one is safe.
 */
import type { CacheStats } from '../observability/metrics.js';
import { FifoCache } from '../storage/fifo-cache.js';
import { MAX_CACHED_OBJECT_BYTES } from '../storage/index.js';
import { decodeObject, encodingOf, type VersionedObject } from '../version/index.js';

/** Default bound of the decoded-object cache. */
export const DECODED_CACHE_BYTES = 8 * 1024 * 1024;

/**
 * Bytes charged per decoded object beyond its key and its encoded bytes: the object, its clock
 * (a dictionary-mode object), the sibling list, each sibling, its dot, the view of its value
 * and the Map slot. Measured: 20k one-sibling objects (256 B values, one actor) held ~620 B
 * of V8 heap each beyond their bytes and keys, Map slots included.
 */
export const DECODED_ENTRY_OVERHEAD = 640;

/**
 * Bytes charged for each sibling beyond the first (DECODED_ENTRY_OVERHEAD covers one): its
 * object, its dot, the view of its value and its list slot, far more than the few bytes it is
 * encoded in. Measured: decoded objects of 2 to 40 siblings of 1-50 byte values took 233-247 B
 * of heap per sibling beyond the first. Charged as one sibling, a 4 MiB cache of twenty-sibling
 * objects (a key written blindly piles them up) held 18.5 MB of heap, 4.4x its bound.
 */
export const DECODED_SIBLING_OVERHEAD = 240;

/** Length of the bytes an object was decoded from (every object held here was). */
function encodedLength(object: VersionedObject): number {
  return encodingOf(object)?.length ?? 0;
}

/** What an entry is charged (see the constants above). */
function charge(key: string, object: VersionedObject): number {
  const extra = object.siblings.length - 1;
  return key.length + encodedLength(object) + DECODED_ENTRY_OVERHEAD + (extra > 0 ? extra * DECODED_SIBLING_OVERHEAD : 0);
}

export class DecodedCache {
  readonly #entries: FifoCache<VersionedObject>;
  #hits = 0;
  #misses = 0;

  constructor(maxBytes: number) {
    this.#entries = new FifoCache(maxBytes, charge);
  }

  /** Figures since the cache was made; misses count only reads of cacheable size. */
  get stats(): CacheStats {
    return { entries: this.#entries.size, bytes: this.#entries.bytes, hits: this.#hits, misses: this.#misses };
  }

  /** `bytes` (the key's stored bytes, as the store returned them) decoded, from here if they were before. */
  decode(key: string, bytes: Uint8Array): VersionedObject {
    // Bytes the store's object cache does not hold come back fresh on every read: their
    // decoded form could never be handed out again, and would only hold on to the bytes.
    if (bytes.length > MAX_CACHED_OBJECT_BYTES) return decodeObject(bytes);
    const known = this.#entries.get(key);
    if (known !== undefined && encodingOf(known) === bytes) {
      this.#hits++;
      return known;
    }
    this.#misses++;
    const object = decodeObject(bytes);
    this.#entries.set(key, object);
    return object;
  }
}
