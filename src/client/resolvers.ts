/**
 * Sibling resolvers (pure). A resolver turns the concurrent versions a read returned into the
 * one value the next write stores. Both resolvers here are deterministic: the same siblings
 * in any order give the same bytes, so two clients resolving the same read agree.
 */
import { canonicalArrayElements } from './canonical-json.js';
import { InvalidArgumentError, ResolveError } from './errors.js';
import type { Sibling } from './types.js';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Picks the sibling with the latest `lastModified`. Ties (same millisecond, or unparseable
 * dates) go to the lexicographically greatest bytes, so the choice never depends on order.
 * Concurrent updates other than the winner are dropped: use it only where that is acceptable.
 */
export function lastWriterWins(siblings: Sibling[]): Uint8Array {
  const first = siblings[0];
  if (first === undefined) throw new InvalidArgumentError('siblings', 'lastWriterWins needs at least one sibling');
  let best = first;
  for (let i = 1; i < siblings.length; i++) {
    const s = siblings[i]!;
    const ts = timeOf(s);
    const tb = timeOf(best);
    if (ts > tb || (ts === tb && compareBytes(s.value, best.value) > 0)) best = s;
  }
  return best.value;
}

/**
 * Treats every sibling as a JSON array used as a set and returns the JSON of their union.
 * Elements are compared by canonical JSON (object keys sorted, numbers kept exact), written in
 * canonical form and sorted by that text, so the result is the same whatever the order or
 * grouping of siblings (commutative, associative, idempotent). A sibling that is not UTF-8
 * JSON holding an array throws a ResolveError: nothing is dropped silently.
 */
export function jsonSetUnion(siblings: Sibling[]): string {
  const members = new Set<string>();
  siblings.forEach((s, index) => {
    let text: string;
    try {
      text = strictUtf8.decode(s.value);
    } catch (err) {
      throw new ResolveError(index, 'is not valid UTF-8, so cannot be a JSON array', err);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ResolveError(index, `is not JSON: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    if (!Array.isArray(parsed)) throw new ResolveError(index, `is JSON but not an array (got ${kindOf(parsed)})`);
    // From the text, not from `parsed`: JSON.parse rounds numbers, which would merge distinct
    // big integers into one element and change their digits.
    for (const element of canonicalArrayElements(text)) members.add(element);
  });
  // Plain code-unit order of the canonical text: stable across runtimes and locales.
  const sorted = [...members].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return `[${sorted.join(',')}]`;
}

/** JSON text with object keys sorted at every depth, so equal values have equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The resolvers shipped with the SDK. */
export const resolvers = { lastWriterWins, jsonSetUnion } as const;

function timeOf(s: Sibling): number {
  const t = s.lastModified instanceof Date ? s.lastModified.getTime() : Number.NaN;
  return Number.isNaN(t) ? Number.NEGATIVE_INFINITY : t;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  return typeof v;
}
