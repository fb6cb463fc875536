/**
 * Validation of the public API's path and query values (pure). Every rejection is a
 * RingkvError with the code that names what was wrong (SPEC §2).
 */
import { RingkvError } from '../errors.js';
import { parseQuorumParam } from '../coordinator/quorum.js';
import { utf8Length } from '../utf8.js';

export const MAX_KEY_BYTES = 512;
export const DEFAULT_TIMEOUT_MS = 5000;
export const MAX_TIMEOUT_MS = 600_000;

/**
 * The key from a raw request URL `/v1/kv/<percent-encoded key>[?query]`. Decoding is done
 * here on the raw path (not by the router) so keys containing `/`, `?` or `%` round-trip.
 */
export function keyFromUrl(rawUrl: string, prefix: string): string {
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  const encoded = path.slice(afterSegments(path, slashesIn(prefix)));
  let key: string;
  try {
    key = decodeURIComponent(encoded);
  } catch {
    throw new RingkvError('BAD_KEY', 'key is not valid percent-encoded UTF-8');
  }
  validateKey(key);
  return key;
}

/**
 * Where the key starts in the raw path: after as many `/` as the route prefix has. Not at the
 * prefix's length: the router matched the prefix after decoding it, and a client may escape
 * any of its characters (`/v1/%6Bv/k` is `/v1/kv/k`, RFC 3986 §6.2.2.2), but a `/` of the
 * prefix cannot be escaped (`%2F` there matches no route), so its segments end at raw `/`.
 */
function afterSegments(path: string, slashes: number): number {
  let at = 0;
  for (let i = 0; i < slashes; i++) {
    const next = path.indexOf('/', at);
    if (next === -1) return path.length;
    at = next + 1;
  }
  return at;
}

function slashesIn(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 0x2f) n++;
  return n;
}

export function validateKey(key: string): void {
  if (key.length === 0) throw new RingkvError('BAD_KEY', 'key must not be empty');
  if (!key.isWellFormed()) throw new RingkvError('BAD_KEY', 'key is not valid UTF-8');
  const bytes = utf8Length(key);
  if (bytes > MAX_KEY_BYTES) throw new RingkvError('BAD_KEY', `key is ${bytes} bytes; the limit is ${MAX_KEY_BYTES}`);
}

export interface QueryOptions {
  readonly quorum: number;
  readonly timeoutMs: number;
}

/** Parse `r` or `w` and `timeout` from the query string; `n` is the configured replication factor. */
export function parseQuery(
  query: Record<string, unknown>,
  which: 'r' | 'w',
  n: number,
  defaultQuorum: number,
): QueryOptions {
  const q = single(query, which);
  const t = single(query, 'timeout');
  const quorum = q === undefined ? defaultQuorum : parseQuorumParam(which, q, n);
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  if (t !== undefined) {
    if (!/^\d+$/.test(t) || Number(t) < 1 || Number(t) > MAX_TIMEOUT_MS)
      throw new RingkvError('BAD_QUERY', `timeout must be an integer number of ms in 1..${MAX_TIMEOUT_MS}; got "${t}"`, {
        param: 'timeout',
      });
    timeoutMs = Number(t);
  }
  return { quorum, timeoutMs };
}

function single(query: Record<string, unknown>, name: string): string | undefined {
  const v = query[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new RingkvError('BAD_QUERY', `${name} must be given once`, { param: name });
  return v;
}
