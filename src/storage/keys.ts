/**
 * Composite keys for the `obj` and `hint` namespaces. Every encoding here preserves order:
 * comparing two encoded keys byte-wise gives the same answer as comparing their parts in
 * order, so a range scan over a prefix visits exactly one partition (or one hint owner).
 */

import { utf8Length, writeUtf8 } from '../utf8.js';

const encoder = new TextEncoder();
// fatal: corrupt bytes must fail loudly rather than decode to U+FFFD and alias another key.
// ignoreBOM: a key that starts with U+FEFF must keep it, or it would not round-trip.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Shared UTF-8 codec. `decode` throws on malformed input instead of substituting U+FFFD. */
export const utf8 = {
  encode(text: string): Uint8Array {
    return encoder.encode(text);
  },
  decode(bytes: Uint8Array): string {
    return decoder.decode(bytes);
  },
} as const;

/** The largest partition number a 2-byte prefix can hold. */
export const MAX_PARTITION = 0xffff;

/** Byte-wise comparison (the order every Store iterates in): negative, zero or positive. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** `partition` as 2 bytes, big-endian, followed by the UTF-8 bytes of `key`. */
export function objectKey(partition: number, key: string): Uint8Array {
  checkPartition(partition);
  // Measured and written in place: no intermediate array (see src/utf8.ts). Measuring also
  // finds lone surrogates, so the key is scanned once.
  const n = utf8Length(key);
  if (n < 0) throw notWellFormed('key');
  const out = new Uint8Array(2 + n);
  out[0] = partition >>> 8;
  out[1] = partition & 0xff;
  writeUtf8(out, 2, key, n);
  return out;
}

/** Inverse of {@link objectKey}. Throws on bytes that are not an object key. */
export function parseObjectKey(bytes: Uint8Array): { partition: number; key: string } {
  return { partition: objectKeyPartition(bytes), key: decoder.decode(bytes.subarray(2)) };
}

/** The partition of an object key (its 2-byte prefix), without decoding the rest. */
export function objectKeyPartition(bytes: Uint8Array): number {
  if (bytes.length < 2) throw new RangeError(`not an object key: ${bytes.length} bytes, need at least 2`);
  return (bytes[0]! << 8) | bytes[1]!;
}

/**
 * Bounds that select every object key of one partition and nothing else.
 * The upper bound is the 2-byte prefix followed by 0xFF: no UTF-8 sequence contains the byte
 * 0xFF, so every key of the partition sorts below it, and the next partition's prefix sorts
 * above it. This also works for the last partition, which has no successor prefix.
 */
export function partitionRange(partition: number): { gte: Uint8Array; lt: Uint8Array } {
  checkPartition(partition);
  const hi = partition >>> 8;
  const lo = partition & 0xff;
  return { gte: Uint8Array.of(hi, lo), lt: Uint8Array.of(hi, lo, 0xff) };
}

/**
 * A hint parked for `ownerId`: UTF-8 owner id, a 0x00 separator, then
 * `objectKey(partition, key)`. Hints for one owner are contiguous and ordered by
 * (partition, key). Owner ids must be non-empty and must not contain U+0000.
 */
export function hintKey(ownerId: string, partition: number, key: string): Uint8Array {
  const owner = encodeOwner(ownerId);
  const object = objectKey(partition, key);
  const out = new Uint8Array(owner.length + 1 + object.length);
  out.set(owner, 0);
  out[owner.length] = 0x00;
  out.set(object, owner.length + 1);
  return out;
}

/** Inverse of {@link hintKey}. Throws on bytes that are not a hint key. */
export function parseHintKey(bytes: Uint8Array): { ownerId: string; partition: number; key: string } {
  const sep = bytes.indexOf(0x00);
  if (sep <= 0) throw new RangeError('not a hint key: no owner id before the 0x00 separator');
  const { partition, key } = parseObjectKey(bytes.subarray(sep + 1));
  return { ownerId: decoder.decode(bytes.subarray(0, sep)), partition, key };
}

/**
 * Bounds that select every hint parked for `ownerId` and nothing else: `owner 0x00` up to
 * `owner 0x01`. Another owner whose id extends this one continues with a byte >= 0x01
 * (ids contain no 0x00), so its hints sort at or above the upper bound.
 */
export function hintOwnerRange(ownerId: string): { gte: Uint8Array; lt: Uint8Array } {
  const owner = encodeOwner(ownerId);
  const gte = new Uint8Array(owner.length + 1);
  gte.set(owner, 0);
  const lt = gte.slice();
  lt[owner.length] = 0x01;
  return { gte, lt };
}

function encodeOwner(ownerId: string): Uint8Array {
  if (ownerId.length === 0) throw new TypeError('owner id must not be empty');
  if (ownerId.includes('\u0000')) throw new TypeError('owner id must not contain U+0000');
  checkWellFormed(ownerId, 'owner id');
  return encoder.encode(ownerId);
}

function checkPartition(partition: number): void {
  if (!Number.isInteger(partition) || partition < 0 || partition > MAX_PARTITION) {
    throw new RangeError(`partition must be an integer in 0..${MAX_PARTITION}, got ${partition}`);
  }
}

// In a /u regex a surrogate *pair* is one astral code point, so \p{Cs} only matches lone
// surrogates. TextEncoder would turn those into U+FFFD, making distinct strings share a key.
const LONE_SURROGATE = /\p{Cs}/u;

function checkWellFormed(text: string, what: string): void {
  if (LONE_SURROGATE.test(text)) throw notWellFormed(what);
}

function notWellFormed(what: string): TypeError {
  return new TypeError(`${what} is not well-formed UTF-16 (lone surrogate)`);
}
