/**
 * Anti-entropy's internal routes and their binary encodings (see wire.ts). Every route name
 * starts with `aae-`. Partition lists travel as ascending delta varints (about one byte per
 * partition); hashes as little-endian u32 arrays.
 */
import { RingkvError } from '../errors.js';
import { Reader, Writer } from '../wire.js';

export const AAE_ROUTES = {
  /** (ring checksum, sender id, root over the shared partitions) -> same | differ + buckets | ring mismatch */
  root: 'aae-root',
  /** partitions -> their leaf hashes */
  leaves: 'aae-leaves',
  /** partitions -> (key, version digest) lists */
  keys: 'aae-keys',
  /**
   * (ring checksum, (partition, key) list) -> stored objects, in request order, up to a bound
   * in bytes; the rest marked deferred, for the caller to ask for again (see encodeFetchReply).
   */
  fetch: 'aae-fetch',
  /** (partition, key, object) list -> merged in; which changed */
  repair: 'aae-repair',
  /** (partition, key, tombstone) list -> deleted if still exactly that tombstone; which were */
  reap: 'aae-reap',
} as const;

/** Most items one message may carry (a bound on work per request, not on the protocol). */
export const MAX_ITEMS = 1 << 16;

function count(r: Reader, what: string): number {
  const n = r.uint();
  if (n > MAX_ITEMS) throw new RingkvError('BAD_REQUEST', `too many ${what} in one message (${n})`);
  return n;
}

function end(r: Reader): void {
  if (!r.done()) throw new RingkvError('BAD_REQUEST', 'malformed internal message: trailing bytes');
}

/** u32 array as little-endian bytes (length-prefixed by the Writer). */
function u32Bytes(a: Uint32Array): Uint8Array {
  const out = new Uint8Array(a.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) view.setUint32(i * 4, a[i]!, true);
  return out;
}

function readU32s(r: Reader): Uint32Array {
  const b = r.bytes();
  if (b.length % 4 !== 0) throw new RingkvError('BAD_REQUEST', 'malformed internal message: hash array');
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = new Uint32Array(b.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getUint32(i * 4, true);
  return out;
}

function u32(r: Reader, what: string): number {
  const v = r.uint();
  if (v > 0xffffffff) throw new RingkvError('BAD_REQUEST', `malformed internal message: ${what} out of range`);
  return v;
}

/** Strictly ascending partitions as deltas. */
function writePartitions(w: Writer, partitions: readonly number[]): void {
  w.uint(partitions.length);
  let prev = -1;
  for (const p of partitions) {
    if (!(p > prev)) throw new RangeError('partition list must be strictly ascending');
    w.uint(p - prev - 1);
    prev = p;
  }
}

function readPartitions(r: Reader): number[] {
  const n = count(r, 'partitions');
  const out: number[] = [];
  let prev = -1;
  for (let i = 0; i < n; i++) {
    prev = prev + 1 + r.uint();
    out.push(prev);
  }
  return out;
}

// ------------------------------------------------------------------ aae-root

export interface RootRequest {
  readonly checksum: string;
  /** The initiator's node id: the responder derives the shared partitions from it. */
  readonly from: string;
  readonly root: number;
}

export function encodeRootRequest(m: RootRequest): Uint8Array {
  return new Writer(64).str(m.checksum).str(m.from).uint(m.root).finish();
}

export function decodeRootRequest(b: Uint8Array): RootRequest {
  const r = new Reader(b);
  const m = { checksum: r.str(), from: r.str(), root: u32(r, 'root') };
  end(r);
  return m;
}

export type RootReply =
  | { readonly status: 'same' }
  | { readonly status: 'differ'; readonly buckets: Uint32Array }
  | { readonly status: 'ring-mismatch'; readonly checksum: string };

const ROOT_STATUS = { same: 0, differ: 1, 'ring-mismatch': 2 } as const;

export function encodeRootReply(m: RootReply): Uint8Array {
  const w = new Writer(m.status === 'differ' ? m.buckets.length * 4 + 8 : 48).uint(ROOT_STATUS[m.status]);
  if (m.status === 'differ') w.bytes(u32Bytes(m.buckets));
  if (m.status === 'ring-mismatch') w.str(m.checksum);
  return w.finish();
}

export function decodeRootReply(b: Uint8Array): RootReply {
  const r = new Reader(b);
  const status = r.uint();
  let m: RootReply;
  if (status === ROOT_STATUS.same) m = { status: 'same' };
  else if (status === ROOT_STATUS.differ) m = { status: 'differ', buckets: readU32s(r) };
  else if (status === ROOT_STATUS['ring-mismatch']) m = { status: 'ring-mismatch', checksum: r.str() };
  else throw new RingkvError('BAD_REQUEST', `malformed internal message: root status ${status}`);
  end(r);
  return m;
}

// ------------------------------------------------------------------ aae-leaves / aae-keys requests

/** A request naming partitions (aae-leaves, aae-keys). */
export function encodePartitionsRequest(partitions: readonly number[]): Uint8Array {
  const w = new Writer(partitions.length * 2 + 8);
  writePartitions(w, partitions);
  return w.finish();
}

export function decodePartitionsRequest(b: Uint8Array): number[] {
  const r = new Reader(b);
  const out = readPartitions(r);
  end(r);
  return out;
}

export function encodeLeavesReply(leaves: Uint32Array): Uint8Array {
  return new Writer(leaves.length * 4 + 8).bytes(u32Bytes(leaves)).finish();
}

export function decodeLeavesReply(b: Uint8Array): Uint32Array {
  const r = new Reader(b);
  const out = readU32s(r);
  end(r);
  return out;
}

// ------------------------------------------------------------------ aae-keys reply

/** Per requested partition, in request order: its keys and their version digests. */
export function encodeKeysReply(lists: readonly (readonly (readonly [string, number])[])[]): Uint8Array {
  const w = new Writer(1024).uint(lists.length);
  for (const list of lists) {
    w.uint(list.length);
    for (const [key, digest] of list) w.str(key).uint(digest);
  }
  return w.finish();
}

export function decodeKeysReply(b: Uint8Array): Map<string, number>[] {
  const r = new Reader(b);
  const n = count(r, 'partitions');
  const out: Map<string, number>[] = [];
  for (let i = 0; i < n; i++) {
    const m = new Map<string, number>();
    // Keys per partition are not bounded by MAX_ITEMS: a partition may hold many keys.
    const k = r.uint();
    for (let j = 0; j < k; j++) m.set(r.str(), u32(r, 'digest'));
    out.push(m);
  }
  end(r);
  return out;
}

// ------------------------------------------------------------------ aae-fetch

export interface KeyRef {
  readonly partition: number;
  readonly key: string;
}

/**
 * A fetch names the ring it was planned on: the responder refuses (UNAVAILABLE) if its own
 * ring differs, since the caller's idea of who replicates what would then be wrong.
 */
export function encodeFetchRequest(checksum: string, refs: readonly KeyRef[]): Uint8Array {
  const w = new Writer(refs.length * 24 + 48).str(checksum).uint(refs.length);
  for (const k of refs) w.uint(k.partition).str(k.key);
  return w.finish();
}

export function decodeFetchRequest(b: Uint8Array): { checksum: string; refs: KeyRef[] } {
  const r = new Reader(b);
  const checksum = r.str();
  const n = count(r, 'keys');
  const refs: KeyRef[] = [];
  for (let i = 0; i < n; i++) refs.push({ partition: r.uint(), key: r.str() });
  end(r);
  return { checksum, refs };
}

/** Presence flags of a fetch reply's entries. */
const ABSENT = 0;
const PRESENT = 1;
const DEFERRED = 2;

/**
 * Encoded objects (as stored) or undefined, in request order, then `deferred` entries the
 * responder left out: it stops adding copies once a reply holds its byte bound (one copy at
 * least, whatever its size), and the caller asks again for the rest (see fetchCopies).
 *
 * Compatibility: a reply within the bound is byte for byte what nodes from before the bound
 * sent, so they interoperate. A deferred entry is a new presence flag, which such a node
 * rejects as malformed: its exchange fails, as it would have with the whole reply, and never
 * takes a deferred copy for an absent one (the reaper would let a tombstone go on that).
 */
export function encodeFetchReply(objects: readonly (Uint8Array | undefined)[], deferred = 0): Uint8Array {
  let size = 8 + deferred;
  for (const o of objects) size += (o?.length ?? 0) + 6;
  const w = new Writer(size).uint(objects.length + deferred);
  for (const o of objects) {
    if (o === undefined) w.uint(ABSENT);
    else w.uint(PRESENT).bytes(o);
  }
  for (let i = 0; i < deferred; i++) w.uint(DEFERRED);
  return w.finish();
}

/** A fetch reply: the objects of the first `objects.length` keys asked for; `deferred` keys follow. */
export interface FetchReply {
  readonly objects: (Uint8Array | undefined)[];
  readonly deferred: number;
}

/** Any fetch reply, whole or cut short by the responder's byte bound. Deferred entries come last. */
export function decodeFetchReplyParts(b: Uint8Array): FetchReply {
  const r = new Reader(b);
  const n = count(r, 'objects');
  const objects: (Uint8Array | undefined)[] = [];
  let deferred = 0;
  for (let i = 0; i < n; i++) {
    const flag = r.uint();
    if (flag === DEFERRED) deferred++;
    else if (deferred > 0) throw new RingkvError('BAD_REQUEST', 'malformed internal message: a copy after a deferred one');
    else if (flag === ABSENT) objects.push(undefined);
    else if (flag === PRESENT) objects.push(r.bytes());
    else throw new RingkvError('BAD_REQUEST', 'malformed internal message: object presence flag');
  }
  end(r);
  return { objects, deferred };
}

/** A whole fetch reply (nothing deferred; a reply cut short is refused). */
export function decodeFetchReply(b: Uint8Array): (Uint8Array | undefined)[] {
  const { objects, deferred } = decodeFetchReplyParts(b);
  if (deferred > 0) throw new RingkvError('BAD_REQUEST', `fetch reply deferred ${deferred} objects`);
  return objects;
}

// ------------------------------------------------------------------ aae-repair / aae-reap

export interface ObjectItem extends KeyRef {
  /** encodeObject bytes */
  readonly object: Uint8Array;
}

/** A list of (partition, key, encoded object): aae-repair and aae-reap. */
export function encodeObjectItems(items: readonly ObjectItem[]): Uint8Array {
  let size = 8;
  for (const it of items) size += it.object.length + it.key.length * 3 + 12;
  const w = new Writer(size).uint(items.length);
  for (const it of items) w.uint(it.partition).str(it.key).bytes(it.object);
  return w.finish();
}

export function decodeObjectItems(b: Uint8Array): ObjectItem[] {
  const r = new Reader(b);
  const n = count(r, 'items');
  const out: ObjectItem[] = [];
  for (let i = 0; i < n; i++) out.push({ partition: r.uint(), key: r.str(), object: r.bytes() });
  end(r);
  return out;
}

/** One flag per item: did it change anything here. */
export function encodeFlags(flags: readonly boolean[]): Uint8Array {
  const w = new Writer(flags.length + 8);
  const bytes = new Uint8Array(flags.length);
  flags.forEach((f, i) => {
    bytes[i] = f ? 1 : 0;
  });
  return w.bytes(bytes).finish();
}

export function decodeFlags(b: Uint8Array): boolean[] {
  const r = new Reader(b);
  const bytes = r.bytes();
  end(r);
  return Array.from(bytes, (x) => x === 1);
}
