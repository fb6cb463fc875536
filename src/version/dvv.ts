/**
 * Dotted version vectors ("dotted siblings"): minting writes, merging replicas, and the
 * questions read repair and anti-entropy ask about versions. Pure functions over immutable
 * values; nothing here does I/O or reads the clock (`now` is a parameter).
 *
 * Invariants kept by every function here (and relied on by callers):
 * - sibling lists are sorted by (actor, counter) in code-unit order, with no duplicate dots,
 *   so equal versions are structurally equal;
 * - every sibling's dot is covered by its object's clock;
 * - clocks are never pruned: pruning breaks `descends` and turns into false siblings
 *   (research/riak-kv.md §2).
 */
import { Buffer } from 'node:buffer';
import { RingkvError } from '../errors.js';
import { clockFromEntries, compareStrings, newClock, sortStrings } from './bytes.js';
import { encodeContext, MAX_CONTEXT_COUNTER, MAX_CONTEXT_ENTRIES, MAX_CONTEXT_LENGTH } from './context.js';
import { versioned } from './object.js';
import type { Actor, Dot, Sibling, VersionedObject, VersionStamp, VersionVector, WriteValue } from './types.js';

/**
 * Most siblings an object should hold (Riak's `object.siblings.maximum` is also 100): past
 * this, something is writing without contexts and the object is growing without bound.
 * Not enforced yet: no write is refused for it (the SPEC names no error for it).
 */
export const MAX_SIBLINGS = 100;

/** The value of every tombstone. Zero-length, so sharing one instance is safe. */
const EMPTY_VALUE = new Uint8Array(0);

/**
 * Counter of `actor` in `clock`, 0 when absent. Own properties only: a plain-object clock
 * would otherwise answer `clock["constructor"]` with a function.
 */
export function counterOf(clock: VersionVector, actor: Actor): number {
  return Object.hasOwn(clock, actor) ? (clock[actor] ?? 0) : 0;
}

/** A clock that has seen nothing. */
export function emptyClock(): VersionVector {
  return {};
}

/** True when `a` has seen everything `b` has (a >= b pointwise). Every clock descends {}. */
export function descends(a: VersionVector, b: VersionVector): boolean {
  for (const actor of Object.keys(b)) {
    if (counterOf(a, actor) < (b[actor] ?? 0)) return false;
  }
  return true;
}

/** Pointwise maximum: everything either clock has seen. */
export function joinClocks(a: VersionVector, b: VersionVector): VersionVector {
  const entries: [Actor, number][] = [];
  for (const actor of Object.keys(a)) entries.push([actor, Math.max(a[actor] ?? 0, counterOf(b, actor))]);
  for (const actor of Object.keys(b)) {
    if (!Object.hasOwn(a, actor)) entries.push([actor, b[actor] ?? 0]);
  }
  return clockFromEntries(entries);
}

/** True when two clocks have exactly the same entries. */
export function clocksEqual(a: VersionVector, b: VersionVector): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const actor of keys) {
    if (!Object.hasOwn(b, actor) || b[actor] !== a[actor]) return false;
  }
  return true;
}

/** True when `clock` has seen the write stamped `dot` (dot.counter <= clock[dot.actor]). */
export function covers(clock: VersionVector, dot: Dot): boolean {
  return dot.counter <= counterOf(clock, dot.actor);
}

/** Canonical dot order: by actor (code units), then counter. */
export function compareDots(a: Dot, b: Dot): number {
  return compareStrings(a.actor, b.actor) || a.counter - b.counter;
}

/**
 * A total order on sibling contents, used only when two replicas hold different contents
 * under the same dot. That cannot happen while dots are unique (each actor mints each
 * counter once), but if it ever does (e.g. an actor reused after losing its data, KV679),
 * picking the larger deterministically keeps merge commutative so replicas still converge.
 */
function compareContent(a: Sibling, b: Sibling): number {
  if (a.lastModified !== b.lastModified) return a.lastModified < b.lastModified ? -1 : 1;
  if (a.deleted !== b.deleted) return a.deleted ? 1 : -1;
  const ct = compareStrings(a.contentType, b.contentType);
  if (ct !== 0) return ct;
  return Buffer.compare(a.value, b.value);
}

/** One of two siblings with the same dot, chosen the same way whatever the argument order. */
function pickSame(a: Sibling, b: Sibling): Sibling {
  if (a === b) return a;
  return compareContent(a, b) >= 0 ? a : b;
}

/**
 * Siblings in canonical order without duplicate dots. Objects built here are already
 * canonical, so this is one linear check; anything else (hand-built or foreign input) is
 * sorted and deduplicated rather than trusted.
 */
function canonicalSiblings(siblings: readonly Sibling[]): readonly Sibling[] {
  return canonical(siblings, pickSame);
}

/** canonicalSiblings for stamps, which have dots only: of two equal dots either will do. */
function canonicalStamps<S extends { readonly dot: Dot }>(siblings: readonly S[]): readonly S[] {
  return canonical(siblings, (a) => a);
}

function canonical<S extends { readonly dot: Dot }>(siblings: readonly S[], pick: (a: S, b: S) => S): readonly S[] {
  let sorted = true;
  for (let i = 1; i < siblings.length; i++) {
    if (compareDots(siblings[i - 1]!.dot, siblings[i]!.dot) >= 0) {
      sorted = false;
      break;
    }
  }
  if (sorted) return siblings;
  const copy = [...siblings].sort((a, b) => compareDots(a.dot, b.dot));
  const out: S[] = [];
  for (const s of copy) {
    const last = out[out.length - 1];
    if (last !== undefined && compareDots(last.dot, s.dot) === 0) out[out.length - 1] = pick(last, s);
    else out.push(s);
  }
  return out;
}

/**
 * The coordinating replica's write. Drops the local siblings whose dots `context` covers
 * (exactly the ones the client read, or ones those superseded), keeps the rest (written
 * concurrently, unseen by the client), and adds the new value under a fresh dot
 * `(actor, max(local.clock[actor], context[actor]) + 1)`. Taking the max with the context
 * means a counter is never reused even if the local copy is behind what the client saw.
 *
 * The new clock is `join(local.clock, context)` plus the new dot. A delete (`write.deleted`)
 * becomes a tombstone sibling with an empty value.
 *
 * @param local   this replica's current object, or undefined if it has none
 * @param context the client's context (`emptyClock()` when it sent none)
 * @param actor   this replica's actor id (`<nodeId>.<epoch>`)
 * @param now     wall-clock ms, stored as `lastModified` (never used for ordering)
 * @param returnable refuse (BAD_CONTEXT) a version that what `context` brings would make
 *                impossible to hand back as a context (see refuseUnreturnable): for a
 *                client's write, whose context came from outside
 */
export function mint(
  local: VersionedObject | undefined,
  context: VersionVector,
  write: WriteValue,
  actor: Actor,
  now: number,
  returnable = false,
): { object: VersionedObject; dot: Dot } {
  if (actor.length === 0) throw new RingkvError('INTERNAL', 'cannot mint a write with an empty actor');
  const localClock = local?.clock ?? {};
  const counter = Math.max(counterOf(localClock, actor), counterOf(context, actor)) + 1;
  const dot: Dot = { actor, counter };
  const sibling: Sibling = {
    dot,
    value: write.deleted ? EMPTY_VALUE : write.value,
    contentType: write.contentType,
    lastModified: now,
    deleted: write.deleted,
  };
  const siblings: Sibling[] = [];
  let placed = false;
  for (const s of local === undefined ? [] : canonicalSiblings(local.siblings)) {
    if (covers(context, s.dot)) continue;
    if (!placed && compareDots(dot, s.dot) < 0) {
      siblings.push(sibling);
      placed = true;
    }
    siblings.push(s);
  }
  if (!placed) siblings.push(sibling);
  // join(localClock, context) plus the new dot, built as one object: each clock is a
  // dictionary-mode object (see clockFromEntries), and building three for one write cost
  // more than the rest of mint.
  const clock = newClock();
  for (const a of Object.keys(localClock)) clock[a] = localClock[a] as number;
  /** Actors the client's context brings that the stored version lacks (usually none). */
  let added = 0;
  for (const a of Object.keys(context)) {
    const c = context[a] as number;
    if (!(a in clock)) {
      added++;
      clock[a] = c;
    } else if ((clock[a] as number) < c) clock[a] = c;
  }
  // Above both clocks' counters for the actor (see `counter`).
  clock[actor] = counter;
  if (returnable && (added > 0 || counter > MAX_CONTEXT_COUNTER)) refuseUnreturnable(clock, counter);
  return { object: versioned(clock, siblings), dot };
}

/**
 * Throws BAD_CONTEXT if `clock` (a write's new version, grown by what its context brought)
 * could not be sent back as a context: every read hands the version's clock out as one, and a
 * context the server then refuses leaves the key writable only blindly, a sibling per write,
 * for good. A clock that grew past the bounds by merges alone is not refused here: refusing
 * every later write of such a key would be worse.
 */
function refuseUnreturnable(clock: VersionVector, counter: number): void {
  const actors = Object.keys(clock).length;
  if (actors > MAX_CONTEXT_ENTRIES)
    throw new RingkvError('BAD_CONTEXT', `the write would give the key a version of ${actors} actors, more than a context may hold (${MAX_CONTEXT_ENTRIES})`);
  // A context's own counters are at most this (decodeContext); the new dot's may pass it.
  if (counter > MAX_CONTEXT_COUNTER)
    throw new RingkvError('BAD_CONTEXT', `the write would take a counter past the largest a context may hold (${MAX_CONTEXT_COUNTER})`);
  if (encodeContext(clock).length > MAX_CONTEXT_LENGTH)
    throw new RingkvError('BAD_CONTEXT', `the write would give the key a version longer than a context may be (${MAX_CONTEXT_LENGTH} characters)`);
}

/**
 * The context to hand back to the client after its write: what it read plus its own write,
 * so that its next write with this context replaces its own value instead of becoming a
 * sibling of it. A version vector can only say "actor A up to n", so adding the new dot
 * also covers any earlier dots of the same actor that the client never saw. If such a dot
 * is still a live sibling in `object` (a concurrent write via the same coordinator), adding
 * the dot would let the next write silently drop it, so the plain `context` is returned
 * instead: the client's own write then shows up as a sibling next time — safe, never lossy.
 *
 * Returning `object.clock` instead would be unsafe: it covers concurrent siblings the
 * client never saw.
 *
 * @param context the context the write was made with (`emptyClock()` if none)
 * @param object  the object `mint` returned
 * @param dot     the dot `mint` returned
 */
export function contextAfterWrite(context: VersionVector, object: VersionedObject, dot: Dot): VersionVector {
  const seen = counterOf(context, dot.actor);
  for (const s of object.siblings) {
    if (s.dot.actor === dot.actor && s.dot.counter > seen && s.dot.counter !== dot.counter) {
      return context;
    }
  }
  // join(context, {dot}) as one object (see mint).
  const clock = newClock();
  for (const a of Object.keys(context)) clock[a] = context[a] as number;
  if (!(dot.actor in clock) || (clock[dot.actor] as number) < dot.counter) clock[dot.actor] = dot.counter;
  return clock;
}

/**
 * Replica synchronisation. A sibling of one side survives if the other side has the same dot
 * or has not seen it (its clock does not cover the dot); a sibling the other side has seen
 * but no longer holds was superseded there. The clock is the join.
 *
 * Commutative, associative and idempotent, with structurally equal results (siblings in
 * canonical order), so replicas converge whatever the order of exchanges.
 */
export function merge(a: VersionedObject, b: VersionedObject): VersionedObject {
  const as = canonicalSiblings(a.siblings);
  const bs = canonicalSiblings(b.siblings);
  const out: Sibling[] = [];
  let i = 0;
  let j = 0;
  while (i < as.length || j < bs.length) {
    const x = as[i];
    const y = bs[j];
    const order = x === undefined ? 1 : y === undefined ? -1 : compareDots(x.dot, y.dot);
    if (order < 0 && x !== undefined) {
      if (!covers(b.clock, x.dot)) out.push(x);
      i++;
    } else if (order > 0 && y !== undefined) {
      if (!covers(a.clock, y.dot)) out.push(y);
      j++;
    } else if (x !== undefined && y !== undefined) {
      out.push(pickSame(x, y));
      i++;
      j++;
    }
  }
  return versioned(joinClocks(a.clock, b.clock), out);
}

/** `merge` where either side may be missing; undefined only when both are. */
export function mergeMaybe(
  a: VersionedObject | undefined,
  b: VersionedObject | undefined,
): VersionedObject | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return merge(a, b);
}

/**
 * True when `merge(local, incoming)` is `incoming`'s version (same clock, same dots), decided
 * from `local`'s stamp alone: incoming has seen all of local's clock, every sibling only local
 * holds is one incoming has seen (so merge drops it), and every sibling only incoming holds is
 * one local has not seen (so merge keeps it). This is the usual replication case, a newer
 * version arriving, and then a replica can store `incoming` without reading local's values.
 * Exact: when it is false, the merge's version differs from incoming's.
 */
export function mergeKeepsIncoming(local: VersionStamp, incoming: VersionStamp): boolean {
  // One version against itself (a read whose peer answered the coordinator's own version).
  if (local === incoming) return true;
  if (!descends(incoming.clock, local.clock)) return false;
  const ls = canonicalStamps(local.siblings);
  const is = canonicalStamps(incoming.siblings);
  let i = 0;
  let j = 0;
  while (i < ls.length || j < is.length) {
    const x = ls[i];
    const y = is[j];
    const order = x === undefined ? 1 : y === undefined ? -1 : compareDots(x.dot, y.dot);
    if (order < 0 && x !== undefined) {
      if (!covers(incoming.clock, x.dot)) return false;
      i++;
    } else if (order > 0 && y !== undefined) {
      if (covers(local.clock, y.dot)) return false;
      j++;
    } else {
      i++;
      j++;
    }
  }
  return true;
}

/**
 * True when `context` covers every sibling of `local`: then `mint(local, context, ...)` keeps
 * none of local's siblings and reads nothing of it but its clock (the usual write, made with
 * the context of the version it replaces).
 */
export function contextCoversAll(context: VersionVector, local: VersionStamp): boolean {
  for (const s of local.siblings) if (!covers(context, s.dot)) return false;
  return true;
}

/** Same clock and same set of dots: the same version (contents are identified by dots). */
export function sameVersion(a: VersionStamp, b: VersionStamp): boolean {
  if (a === b) return true;
  if (!clocksEqual(a.clock, b.clock)) return false;
  const as = canonicalStamps(a.siblings);
  const bs = canonicalStamps(b.siblings);
  if (as.length !== bs.length) return false;
  for (let i = 0; i < as.length; i++) {
    if (compareDots(as[i]!.dot, bs[i]!.dot) !== 0) return false;
  }
  return true;
}

/**
 * True when `replica` lacks something `merged` has, i.e. merging `merged` into it would
 * change its version: read repair should send `merged` to it. A missing replica is stale
 * unless `merged` is itself empty.
 */
export function isStale(replica: VersionStamp | undefined, merged: VersionStamp): boolean {
  if (replica === undefined) return merged.siblings.length > 0 || Object.keys(merged.clock).length > 0;
  // Merging `merged` into the replica changes nothing exactly when the merge keeps the
  // replica's version. Clocks alone would miss one case: a sibling the replica still holds
  // that `merged` has seen and dropped.
  return !mergeKeepsIncoming(merged, replica);
}

/** The siblings that are values, not tombstones. */
export function liveSiblings(obj: VersionedObject): readonly Sibling[] {
  return obj.siblings.filter((s) => !s.deleted);
}

/** True when the object reads as not found: no siblings, or only tombstones. */
export function isDeleted(obj: VersionedObject): boolean {
  return obj.siblings.every((s) => s.deleted);
}

/** Number of siblings, tombstones included (they count against MAX_SIBLINGS too). */
export function siblingCount(obj: VersionedObject): number {
  return obj.siblings.length;
}

// FNV-1a 32-bit. Chosen over md5 because this runs once per key when anti-entropy builds
// a Merkle tree: it hashes the clock's strings in place with no encoding, allocation or
// native call. FNV-1a's step (xor a byte, multiply by an odd prime mod 2^32) is a bijection
// of the state for each input byte, so two inputs of equal length that differ in a single
// byte never collide. Its weak avalanche is fixed by murmur3's fmix32 finaliser (also a
// bijection). Cryptographic strength is not needed: a collision only delays a repair,
// which read repair or a later change to the key still makes.
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function fnvByte(h: number, b: number): number {
  return Math.imul(h ^ (b & 0xff), FNV_PRIME);
}

function fnvUint32(h: number, n: number): number {
  h = fnvByte(h, n);
  h = fnvByte(h, n >>> 8);
  h = fnvByte(h, n >>> 16);
  return fnvByte(h, n >>> 24);
}

/** Length-prefixed UTF-16 code units: unambiguous, and a function of the string alone. */
function fnvString(h: number, s: string): number {
  h = fnvUint32(h, s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h = fnvByte(h, c);
    h = fnvByte(h, c >>> 8);
  }
  return h;
}

/** A counter up to 2^53 as two 32-bit halves. */
function fnvCounter(h: number, n: number): number {
  h = fnvUint32(h, n >>> 0);
  return fnvUint32(h, Math.floor(n / 0x1_0000_0000) >>> 0);
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A 32-bit digest of the version (clock sorted by actor, then the sorted dots) for Merkle
 * anti-entropy: equal versions give equal digests regardless of clock key order or values'
 * memory layout. Contents are not hashed: a dot identifies its write. Unsigned, 0..2^32-1.
 */
export function versionDigest(obj: VersionStamp): number {
  const actors = sortStrings(Object.keys(obj.clock));
  let h = fnvUint32(FNV_OFFSET, actors.length);
  for (const actor of actors) {
    h = fnvString(h, actor);
    h = fnvCounter(h, obj.clock[actor] ?? 0);
  }
  const siblings = canonicalStamps(obj.siblings);
  h = fnvUint32(h, siblings.length);
  for (const s of siblings) {
    h = fnvString(h, s.dot.actor);
    h = fnvCounter(h, s.dot.counter);
  }
  return fmix32(h);
}
