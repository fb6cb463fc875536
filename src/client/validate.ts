/**
 * Client-side argument checks (pure). Each failure is an InvalidArgumentError raised before
 * any network call, so a bad key never costs a round trip or a retry.
 */
import { InvalidArgumentError } from './errors.js';
import type { Quorum } from './types.js';

export const MAX_KEY_BYTES = 512;

const utf8 = new TextEncoder();

/** Checks a key (UTF-8, 1..512 bytes) and returns it percent-encoded for the URL path. */
export function encodeKey(key: unknown): string {
  if (typeof key !== 'string') throw new InvalidArgumentError('key', `must be a string, got ${typeof key}`);
  if (key.length === 0) throw new InvalidArgumentError('key', 'must not be empty');
  let encoded: string;
  try {
    encoded = encodeURIComponent(key);
  } catch {
    // A lone surrogate has no UTF-8 form (TextEncoder would silently turn it into U+FFFD).
    throw new InvalidArgumentError('key', 'contains a lone surrogate, so has no UTF-8 form');
  }
  const bytes = utf8.encode(key).length;
  if (bytes > MAX_KEY_BYTES) throw new InvalidArgumentError('key', `is ${bytes} UTF-8 bytes; the limit is ${MAX_KEY_BYTES}`);
  return encoded;
}

/** Checks a quorum option and returns its query-string form, or undefined when not given. */
export function quorumParam(name: 'r' | 'w', q: Quorum | undefined): string | undefined {
  if (q === undefined) return undefined;
  if (q === 'one' || q === 'quorum' || q === 'all') return q;
  if (typeof q === 'number' && Number.isInteger(q) && q >= 1) return String(q);
  throw new InvalidArgumentError(name, `must be an integer >= 1 or 'one' | 'quorum' | 'all', got ${JSON.stringify(q)}`);
}

/** Checks an optional context: an opaque, header-safe, non-empty string. */
export function checkContext(context: unknown): string | undefined {
  if (context === undefined) return undefined;
  if (typeof context !== 'string' || context.length === 0)
    throw new InvalidArgumentError('context', 'must be a non-empty string from an earlier read or write');
  // Visible ASCII only: anything else could not travel in a header and is certainly not ours.
  if (!/^[\x21-\x7e]+$/.test(context)) throw new InvalidArgumentError('context', 'contains characters no context can hold');
  return context;
}

/** Checks a content type: non-empty, one header line. */
export function checkContentType(ct: unknown): string | undefined {
  if (ct === undefined) return undefined;
  if (typeof ct !== 'string' || ct.trim().length === 0) throw new InvalidArgumentError('contentType', 'must be a non-empty string');
  if (!/^[\x20-\x7e]+$/.test(ct)) throw new InvalidArgumentError('contentType', 'must be printable ASCII on one line');
  return ct;
}

/** Turns a value into bytes; anything but a string or Uint8Array is rejected. */
export function toBytes(value: unknown, argument = 'value'): Uint8Array {
  if (typeof value === 'string') return utf8.encode(value);
  if (value instanceof Uint8Array) return value;
  throw new InvalidArgumentError(argument, `must be a Uint8Array or a string, got ${describe(value)}`);
}

/** Checks a positive, finite duration in ms. */
export function checkMs(name: string, ms: unknown): number | undefined {
  if (ms === undefined) return undefined;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0)
    throw new InvalidArgumentError(name, `must be a positive number of ms, got ${String(ms)}`);
  return ms;
}

/** The longest delay a Node.js timer holds (~24.8 days); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * checkMs for a duration that becomes a timer (attempt, connect, backoff, discovery): a longer
 * value waits as long as a timer can instead of firing at once.
 */
export function checkTimerMs(name: string, ms: unknown): number | undefined {
  const checked = checkMs(name, ms);
  return checked === undefined ? undefined : Math.min(checked, MAX_TIMER_MS);
}

/** Checks a non-negative integer count. */
export function checkCount(name: string, n: unknown): number | undefined {
  if (n === undefined) return undefined;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(name, `must be an integer >= 0, got ${String(n)}`);
  return n;
}

/** Checks an optional AbortSignal. */
export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) throw new InvalidArgumentError('signal', 'must be an AbortSignal');
  return signal;
}

/** Normalises a node URL to its origin (`http://host:port`); paths are not supported. */
export function nodeOrigin(url: unknown): string {
  if (typeof url !== 'string') throw new InvalidArgumentError('nodes', `each node must be a URL string, got ${describe(url)}`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidArgumentError('nodes', `"${url}" is not a URL (expected e.g. http://127.0.0.1:8081)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new InvalidArgumentError('nodes', `"${url}" must use http: or https:`);
  if (u.pathname !== '/' || u.search !== '' || u.hash !== '')
    throw new InvalidArgumentError('nodes', `"${url}" must be a bare origin, without path or query`);
  return u.origin;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}
