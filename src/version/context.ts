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

// No padding, URL-safe alphabet only. Buffer's own base64url decoder silently skips bad
// characters, so the alphabet is checked first.
const BASE64URL = /^[A-Za-z0-9_-]+$/;

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
  if (!BASE64URL.test(s)) bad('not base64url (allowed: A-Z a-z 0-9 - _, no padding)');
  // 4n+1 characters cannot come from whole bytes.
  if (s.length % 4 === 1) bad('truncated base64url');
  const bytes = Buffer.from(s, 'base64url');
  // Leftover bits in the last character must be zero, so each context has one spelling.
  if (bytes.toString('base64url') !== s) bad('non-canonical base64url');
  const clock = readClock(new ByteReader(bytes, 'BAD_CONTEXT', 'malformed context'), MAX_CONTEXT_ENTRIES);
  // A context can only hold counters some replica minted. Bounding them far below 2^53
  // keeps `counter + 1` exact forever, so no client can wedge a key with a huge counter.
  for (const counter of Object.values(clock))
    if (counter > MAX_CONTEXT_COUNTER) bad(`counter ${counter} exceeds ${MAX_CONTEXT_COUNTER}`);
  return clock;
}

/** The largest counter a context may carry (2^48: 281 trillion writes through one actor). */
export const MAX_CONTEXT_COUNTER = 2 ** 48;
