/**
 * Hash functions of the ring. Both are part of the routing contract: every node must compute
 * the same values, so a change here is a change of the on-the-wire partitioning (see the pinned
 * vectors in test/unit/ring/hash.test.ts).
 */
import murmurHash3 from 'murmurhash3js-revisited';
import { utf8Length, writeUtf8 } from '../utf8.js';

const utf8 = new TextEncoder();
/** Reused for keys up to this size: hashing runs on every request and keeps no reference. */
const scratch = new Uint8Array(1024);

/**
 * MurmurHash3 x86 32-bit of the key's UTF-8 bytes with seed 0, as an unsigned 32-bit integer.
 * (Lone surrogates are encoded as U+FFFD, as `TextEncoder` does; the HTTP layer only admits
 * well-formed UTF-8 keys.)
 */
export function keyHash(key: string): number {
  return seededHash(key, 0);
}

/**
 * MurmurHash3 x86 32-bit of `key`'s UTF-8 bytes with the given seed (unsigned). A separate
 * function, not an optional argument of keyHash, so `keys.map(keyHash)` can't pass an index.
 */
export function seededHash(key: string, seed: number): number {
  const n = utf8Length(key);
  const bytes = n >= 0 && n <= scratch.length ? scratch.subarray(0, writeUtf8(scratch, 0, key, n)) : utf8.encode(key);
  const h = murmurHash3.x86.hash32(bytes, seed);
  // A Uint8Array always passes the library's byte validation; the check only narrows the type.
  if (h === undefined) throw new TypeError('murmurhash3: invalid input');
  return h;
}

/**
 * A 32-bit avalanche mixer (xorshift-multiply finalizer): a bijection on u32 in which every
 * input bit affects every output bit with probability close to 1/2. Used to turn
 * (member seed, partition) into independent-looking rendezvous scores without hashing bytes.
 * The multipliers are odd constants with low measured bias for this shift pattern
 * (from the public "hash prospector" search over xorshift-multiply finalizers).
 */
export function mix32(x: number): number {
  let h = x | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x21f0aaad);
  h ^= h >>> 15;
  h = Math.imul(h, 0x735a2d97);
  h ^= h >>> 15;
  return h >>> 0;
}
