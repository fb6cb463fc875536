/**
 * Encodings of the coordinator's internal messages (binary, see wire.ts).
 */
import { allocBytes } from '../alloc.js';
import { RingkvError } from '../errors.js';
import {
  decodeObject,
  encodeObject,
  encodePlaceholderStamp,
  encodesPlaceholderStamp,
  type VersionedObject,
  type VersionStamp,
  type WriteValue,
} from '../version/index.js';
import { Reader, Writer } from '../wire.js';

export const ROUTES = {
  put: 'kv-put',
  replicaWrite: 'replica-write',
  replicaWriteBatch: 'replica-write-batch',
  replicaRead: 'replica-read',
  replicaReadVersion: 'replica-read-version',
} as const;

export interface ForwardedPut {
  readonly key: string;
  readonly write: WriteValue;
  /** The encoded context string from the client, or '' for none. */
  readonly context: string;
  readonly w: number;
  readonly timeoutMs: number;
}

export function encodeForwardedPut(m: ForwardedPut): Uint8Array {
  return new Writer(m.write.value.length + 64)
    .str(m.key)
    .bytes(m.write.value)
    .str(m.write.contentType)
    .uint(m.write.deleted ? 1 : 0)
    .str(m.context)
    .uint(m.w)
    .uint(m.timeoutMs)
    .finish();
}

/** Refuse bytes after a message's last field: its count or a length was damaged. */
function end(r: Reader): void {
  if (!r.done()) throw new RingkvError('BAD_REQUEST', 'malformed internal message: trailing bytes');
}

export function decodeForwardedPut(b: Uint8Array): ForwardedPut {
  const r = new Reader(b);
  const key = r.str();
  const value = r.bytes();
  const contentType = r.str();
  const flag = r.uint();
  if (flag > 1) throw new RingkvError('BAD_REQUEST', `malformed internal message: deleted flag ${flag}`);
  const deleted = flag === 1;
  const context = r.str();
  const w = r.uint();
  const timeoutMs = r.uint();
  end(r);
  return { key, write: { value, contentType, deleted }, context, w, timeoutMs };
}

export interface ReplicaWrite {
  readonly key: string;
  /** Owners this copy is held for (this node is their fallback): park a hint for each. */
  readonly hintsFor: readonly string[];
  readonly object: VersionedObject;
}

export function encodeReplicaWrite(m: ReplicaWrite, encodedObject?: Uint8Array): Uint8Array {
  const object = encodedObject ?? encodeObject(m.object);
  // Sized up front (UTF-8 is at most 3 bytes per UTF-16 unit) so a 4 KiB value is copied once.
  let size = 3 * m.key.length + object.length + 24;
  for (const h of m.hintsFor) size += 3 * h.length + 10;
  const w = new Writer(size).str(m.key).uint(m.hintsFor.length);
  for (const h of m.hintsFor) w.str(h);
  return w.bytes(object).finish();
}

export function decodeReplicaWrite(b: Uint8Array): ReplicaWrite {
  const r = new Reader(b);
  const key = r.str();
  const n = r.uint();
  if (n > 64) throw new RingkvError('BAD_REQUEST', 'too many hint owners');
  const hintsFor: string[] = [];
  for (let i = 0; i < n; i++) hintsFor.push(r.str());
  const object = decodeObject(r.bytes());
  end(r);
  return { key, hintsFor, object };
}

export function encodeWriteBatch(items: readonly { key: string; object: Uint8Array }[]): Uint8Array {
  const w = new Writer(4096).uint(items.length);
  for (const it of items) w.str(it.key).bytes(it.object);
  return w.finish();
}

export function decodeWriteBatch(b: Uint8Array): { key: string; object: VersionedObject }[] {
  const r = new Reader(b);
  const n = r.uint();
  const out: { key: string; object: VersionedObject }[] = [];
  for (let i = 0; i < n; i++) out.push({ key: r.str(), object: decodeObject(r.bytes()) });
  end(r);
  return out;
}

/**
 * A read reply from an object's stored bytes (encodeObject's output) as they are, without
 * decoding them first: the reader's decodeReadReply verifies them (checksum and all) anyway.
 */
export function encodeStoredReadReply(enc: Uint8Array | undefined): Uint8Array {
  if (enc === undefined) return new Uint8Array([0]);
  const out = allocBytes(enc.length + 1);
  out[0] = 1;
  out.set(enc, 1);
  return out;
}

/** A read reply from encodeStoredReadReply: `[0]` (absent) or `[1]` + an object; nothing else. */
export function decodeReadReply(b: Uint8Array): VersionedObject | undefined {
  if (b.length === 0) throw new RingkvError('BAD_REQUEST', 'empty read reply');
  if (b[0] === 0) {
    if (b.length !== 1) throw new RingkvError('BAD_REQUEST', 'malformed read reply: bytes after "absent"');
    return undefined;
  }
  // Tag 2 (a version only, see decodeReplicaAnswer) must never pass for a whole object.
  if (b[0] !== 1) throw new RingkvError('BAD_REQUEST', `malformed read reply: tag ${b[0]}`);
  return decodeObject(b.subarray(1));
}

/**
 * A replica's answer to a read: its stored object (undefined when it has none), or, to a
 * version read, possibly only the object's version (see ReplicaClient.readVersion).
 */
export type ReplicaAnswer =
  | { readonly object: VersionedObject | undefined; readonly stamp?: undefined }
  | { readonly stamp: VersionStamp; readonly object?: undefined };

/** Tag of a read reply that carries only a version. */
const STAMP_REPLY = 2;

/**
 * A read reply carrying only a version: the object codec over the dots with empty
 * placeholder contents, so it is checksummed and validated like any object.
 */
export function encodeStampReadReply(stamp: VersionStamp): Uint8Array {
  const out = encodePlaceholderStamp(stamp, 1);
  out[0] = STAMP_REPLY;
  return out;
}

/**
 * Any read reply: absent, a stored object, or a version only. `expected` is the reader's own
 * copy: a version-only reply that is exactly its version comes back as `expected` itself,
 * without decoding (see encodesPlaceholderStamp).
 */
export function decodeReplicaAnswer(b: Uint8Array, expected?: VersionedObject): ReplicaAnswer {
  if (b.length > 0 && b[0] === STAMP_REPLY) {
    if (expected !== undefined && encodesPlaceholderStamp(b.subarray(1), expected)) return { stamp: expected };
    // Only the clock and the dots: the placeholder object itself must never pass for the
    // replica's object (its siblings would read as live empty values).
    const o = decodeObject(b.subarray(1));
    return { stamp: { clock: o.clock, siblings: o.siblings.map((s) => ({ dot: s.dot })) } };
  }
  return { object: decodeReadReply(b) };
}

export function encodeString(s: string): Uint8Array {
  return new Writer(s.length + 8).str(s).finish();
}

export function decodeString(b: Uint8Array): string {
  const r = new Reader(b);
  const s = r.str();
  end(r);
  return s;
}
