/**
 * The stored version (clock and dots, no values) of recently written or read keys, kept by
 * LocalReplica so that a write can usually skip reading the copy it replaces. Why: every write
 * on every replica merges with the stored copy, and for values the object cache does not hold
 * (over 1 KiB) that was a LevelDB read per replica per write; under the benchmark's 4 KiB PUT
 * those reads cost about a third of all server CPU. A newer version arriving (the usual case)
 * needs only the old copy's version: see mergeKeepsIncoming and contextCoversAll.
 *
 * Exact, never a guess: LocalReplica reads and updates it only inside the key's critical
 * section, where every change to the key's stored object is made, and drops an entry whenever
 * the outcome of a change is unknown. A miss only means "read the store".
 */
import type { CacheStats } from '../observability/metrics.js';
import { FifoCache } from '../storage/fifo-cache.js';
import { canonicalActorIn, clockFromEntries, type VersionStamp } from '../version/index.js';

/**
 * Bytes charged per entry beyond the characters of its key and of its packed version (see
 * pack): the Map slot and the two strings' headers. Measured: 200k entries held 89 B of V8 heap
 * each beyond their keys with a one-actor, one-sibling version (~38 characters packed), 159 B
 * with three of each (~120), and a key costs 16 B plus its length when nothing else holds it.
 */
export const VERSION_ENTRY_OVERHEAD = 64;

export class VersionCache {
  /**
   * Key -> the partition and version, packed into one string (see pack). One flat string per
   * key instead of a clock object, a sibling list and dot objects: under half the memory (so
   * ~2.5x the keys per MiB) and one object for V8 to promote and collect instead of six.
   * Unpacking on a hit costs about a microsecond.
   */
  readonly #entries: FifoCache<string>;
  #hits = 0;
  #misses = 0;

  constructor(maxBytes: number) {
    this.#entries = new FifoCache(maxBytes, (key, packed) => key.length + packed.length + VERSION_ENTRY_OVERHEAD);
  }

  /** Figures since the cache was made. */
  get stats(): CacheStats {
    return { entries: this.#entries.size, bytes: this.#entries.bytes, hits: this.#hits, misses: this.#misses };
  }

  /** The stored version of `key` in `partition`, if known. */
  get(partition: number, key: string): VersionStamp | undefined {
    const packed = this.#entries.get(key);
    const stamp = packed === undefined ? undefined : unpack(packed, partition);
    if (stamp === undefined) this.#misses++;
    else this.#hits++;
    return stamp;
  }

  /** Record `version` as the stored version of the key (its values are not kept). */
  set(partition: number, key: string, version: VersionStamp): void {
    this.#entries.set(key, pack(partition, version));
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }
}

/**
 * `partition;n;` then n clock entries, then one entry per sibling's dot, each entry
 * `<actor length>:<actor><counter>;`. Length-prefixed, so actors may hold any character.
 */
function pack(partition: number, version: VersionStamp): string {
  const actors = Object.keys(version.clock);
  const parts = [`${partition};${actors.length};`];
  for (const a of actors) parts.push(`${a.length}:${a}${version.clock[a]};`);
  for (const x of version.siblings) parts.push(`${x.dot.actor.length}:${x.dot.actor}${x.dot.counter};`);
  // join() makes one flat string; `+=` would keep a tree of the pieces, an object each.
  return parts.join('');
}

/** Where `unpack` is in the string it parses (it runs to completion, so one will do). */
let at = 0;

/** The decimal number at `at` in `s`, up to the character `end` (skipped) or the string's end. */
function numberTo(s: string, end: number): number {
  let n = 0;
  let c = s.charCodeAt(at);
  while (c !== end && at < s.length) {
    n = n * 10 + (c - 48);
    c = s.charCodeAt(++at);
  }
  at++;
  return n;
}

const SEMICOLON = 59;
const COLON = 58;

/** The actor of the entry at `at` (`<length>:<actor>`), leaving `at` on its counter. */
function actorAt(s: string): string {
  const length = numberTo(s, COLON);
  const actor = canonicalActorIn(s, at, at + length);
  at += length;
  return actor;
}

/** The version packed in `s`, or undefined if it was packed for another partition. */
function unpack(s: string, partition: number): VersionStamp | undefined {
  at = 0;
  if (numberTo(s, SEMICOLON) !== partition) return undefined;
  const n = numberTo(s, SEMICOLON);
  const entries: [string, number][] = new Array<[string, number]>(n);
  for (let i = 0; i < n; i++) {
    const actor = actorAt(s);
    entries[i] = [actor, numberTo(s, SEMICOLON)];
  }
  const siblings: { readonly dot: { readonly actor: string; readonly counter: number } }[] = [];
  while (at < s.length) {
    const actor = actorAt(s);
    siblings.push({ dot: { actor, counter: numberTo(s, SEMICOLON) } });
  }
  return { clock: clockFromEntries(entries), siblings };
}
