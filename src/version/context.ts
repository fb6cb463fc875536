/**
 * The client-facing causal context (`X-Ringkv-Context`): a version vector as an opaque
 * base64url string. Clients only echo it back, but it crosses a trust boundary, so decoding
 * is strict: anything that is not exactly what `encodeContext` produces is rejected with
 * BAD_CONTEXT (HTTP 400) rather than guessed at.
 */
import { Buffer } from 'node:buffer';
import { RingkvError } from '../errors.js';
import { ByteReader, readClock, writeClock } from './bytes.js';
import type { VersionVector } from './types.js';

/** Longest context string accepted, in characters (16 KiB). */
export const MAX_CONTEXT_LENGTH = 16 * 1024;

/** Most actors a context may name. Actors are per node epoch, so real clocks stay tiny. */
export const MAX_CONTEXT_ENTRIES = 1000;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** base64url character code -> its 6-bit value; -1 for anything else, padding included. */
const SEXTET = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) t[ALPHABET.charCodeAt(i)] = i;
  return t;
})();

/**
 * Encode a clock as an opaque context: base64url without padding of the binary clock
 * format (format byte, count, then actor/counter pairs in canonical actor order). Equal
 * clocks give equal strings. The empty clock encodes to a non-empty string ("AQA").
 * Throws INTERNAL for an invalid clock (empty actor, counter not in 1..2^53-1).
 */
export function encodeContext(clock: VersionVector): string {
  const bytes = writeClock(clock);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

function bad(reason: string): never {
  throw new RingkvError('BAD_CONTEXT', `malformed context: ${reason}`);
}

/**
 * Decode a context from `encodeContext`. Throws `RingkvError('BAD_CONTEXT')` on anything
 * else: the empty string (absence of a context is the caller's case, not ours), more than
 * MAX_CONTEXT_LENGTH characters, characters outside base64url, padding, truncated or
 * non-canonical base64url, an unknown format byte, truncated data, more than
 * MAX_CONTEXT_ENTRIES actors, empty or non-UTF-8 actors, duplicate or unordered actors,
 * counters that are not positive safe integers or not minimally encoded, and trailing bytes.
 */
export function decodeContext(s: string): VersionVector {
  if (typeof s !== 'string') bad('not a string');
  if (s.length === 0) bad('empty string');
  if (s.length > MAX_CONTEXT_LENGTH) bad(`longer than ${MAX_CONTEXT_LENGTH} characters`);
  const bytes = strictBase64url(s);
  // A context can only hold counters some replica minted. Bounding them far below 2^53
  // keeps `counter + 1` exact forever, so no client can wedge a key with a huge counter.
  return readClock(new ByteReader(bytes, 'BAD_CONTEXT', 'malformed context'), MAX_CONTEXT_ENTRIES, MAX_CONTEXT_COUNTER);
}

/**
 * The bytes of unpadded base64url `s`, decoded by hand: Buffer's decoder skips characters
 * outside its alphabet and accepts leftover bits, so the strict checks would need a regular
 * expression and a re-encode around it (together ~1 µs of a ~6 µs decode, on every PUT).
 */
function strictBase64url(s: string): Uint8Array {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || (SEXTET[c] as number) < 0) bad('not base64url (allowed: A-Z a-z 0-9 - _, no padding)');
  }
  // 4n+1 characters cannot come from whole bytes.
  if (n % 4 === 1) bad('truncated base64url');
  const out = new Uint8Array((n * 3) >> 2);
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < n; i++) {
    acc = (acc << 6) | (SEXTET[s.charCodeAt(i)] as number);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = acc >>> bits;
      acc &= (1 << bits) - 1;
    }
  }
  // Leftover bits in the last character must be zero, so each context has one spelling.
  if (acc !== 0) bad('non-canonical base64url');
  return out;
}

/** The largest counter a context may carry (2^48: 281 trillion writes through one actor). */
export const MAX_CONTEXT_COUNTER = 2 ** 48;
