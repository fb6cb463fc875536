/**
 * Compact binary encoding of versioned objects, for LevelDB values and node-to-node
 * messages. This is on the hot path of every read and write, so: no JSON, no base64, one
 * exact-size allocation on encode, and no copies of value bytes on decode.
 *
 * Object format, version 1 (varint = unsigned LEB128, minimal; str = varint length + UTF-8):
 *
 *   u8       format (OBJECT_FORMAT)
 *   varint   A, then A x str        actor table: every actor of the clock and of the dots,
 *                                   once each, in canonical (code-unit) order
 *   A x varint                      clock counter of each table actor (0 = not in clock)
 *   varint   S, then S x sibling    in canonical (actor, counter) order:
 *     varint actor index, varint counter, u8 flags (bit 0 = deleted),
 *     f64 LE lastModified, str contentType, varint value length, value bytes
 *   u32 LE   CRC-32 of everything before it
 *
 * Actors are stored once and referenced by index because every sibling's dot repeats one.
 * The CRC makes corruption an error instead of a different, plausible object: a flipped
 * bit in a counter would otherwise silently change what a clock covers, and with it which
 * writes get dropped. It detects every single-byte error and every truncation short of a
 * 2^-32 coincidence. zlib.crc32 is native and runs at memory speed.
 */
import { crc32 } from 'node:zlib';
import { allocBytes } from '../alloc.js';
import { RingkvError } from '../errors.js';
import { utf8Length, writeUtf8 } from '../utf8.js';
import {
  ByteReader,
  compareStrings,
  isCounter,
  newClock,
  readClock,
  sortStrings,
  varintSize,
  writeClock,
  writeVarint,
} from './bytes.js';
import { encodingOf, rememberEncoding, versioned } from './object.js';
import type { Sibling, VersionedObject, VersionStamp, VersionVector } from './types.js';

/** Version byte of the object format. */
export const OBJECT_FORMAT = 1;

/** Largest clock `decodeClock` accepts; far beyond any real clock (one actor per node epoch). */
const MAX_CLOCK_ENTRIES = 100_000;

const FLAG_DELETED = 1;

/** Bytes of the fixed part of a sibling besides its varints: flags + f64. */
const SIBLING_FIXED = 1 + 8;
/** Smallest encoded sibling: index, counter, flags, f64, empty contentType, empty value. */
const MIN_SIBLING_BYTES = 1 + 1 + SIBLING_FIXED + 1 + 1;
const CRC_BYTES = 4;
/** How decodeObject's errors begin, and the two reasons that mean damage (see isCorruptObject). */
const CORRUPT = 'corrupt object';
const TRUNCATED = 'truncated';
const CHECKSUM_MISMATCH = 'checksum mismatch';

function invalid(reason: string): never {
  throw new RingkvError('INTERNAL', `cannot encode object: ${reason}`);
}

/**
 * Encode an object. Throws INTERNAL on an object that could not round-trip (an invariant
 * is broken upstream): empty or ill-formed (lone surrogate) actors or content types,
 * counters outside 1..2^53-1, or siblings not in strictly increasing (actor, counter) order.
 */
export function encodeObject(obj: VersionedObject): Uint8Array {
  // Each object remembers the bytes it was decoded from or last encoded to (see object.ts).
  // Objects are immutable (every field readonly; merge and mint build new ones), so those
  // bytes stay a valid encoding for the object's life. This is what makes the request path
  // encode once: a version minted by the coordinator is encoded for its own store and reused
  // for every replica message; a replica stores the very bytes it received when they are the
  // version it keeps; a read reply reuses the stored bytes. Each of those would otherwise
  // re-encode and re-checksum the whole value.
  const known = encodingOf(obj);
  if (known !== undefined) return known;
  const out = encodeFresh(obj, 0, false);
  rememberEncoding(obj, out);
  return out;
}

/**
 * encodeObject's bytes for `stamp` with every sibling a placeholder (a live empty value, no
 * content type, lastModified 0), after `headroom` bytes left for the caller: a version-only read
 * answer, encoded straight from the version (no placeholder objects, no copy to prepend a tag).
 * Throws INTERNAL as encodeObject does.
 */
export function encodePlaceholderStamp(stamp: VersionStamp, headroom: number): Uint8Array {
  return encodeFresh(stamp, headroom, true);
}

/**
 * The encoding of `obj` after `headroom` bytes. With `placeholders`, only the siblings' dots
 * are read (see encodePlaceholderStamp).
 */
function encodeFresh(obj: VersionStamp, headroom: number, placeholders: boolean): Uint8Array {
  const clock = obj.clock;
  // With `placeholders` the contents are never read: a VersionStamp will do.
  const siblings = obj.siblings as readonly Sibling[];

  // The actor table: the clock's actors, plus any dot actor the clock lacks (none while every
  // sibling's dot is covered by its clock, which every function of this module keeps). Plain
  // arrays and linear searches: a clock has a handful of actors, and a Set and a Map per
  // encode cost more than the searches (a clock is a dictionary-mode object already).
  const actors = Object.keys(clock);
  for (const s of siblings) {
    const a = s.dot.actor;
    if (!Object.hasOwn(clock, a) && !actors.includes(a)) actors.push(a);
  }
  sortStrings(actors);
  const counters: number[] = new Array<number>(actors.length);
  const actorLengths: number[] = new Array<number>(actors.length);
  let size = headroom + 1 + varintSize(actors.length);
  for (let i = 0; i < actors.length; i++) {
    const actor = actors[i]!;
    const length = utf8Length(actor);
    if (length <= 0) invalid(`invalid actor ${JSON.stringify(actor)}`);
    const own = Object.hasOwn(clock, actor);
    const counter = own ? clock[actor] : 0;
    if (own && !isCounter(counter)) invalid(`invalid counter ${String(counter)} for ${JSON.stringify(actor)}`);
    counters[i] = counter ?? 0;
    actorLengths[i] = length;
    size += varintSize(length) + length + varintSize(counter ?? 0);
  }

  const dotIndexes: number[] = new Array<number>(siblings.length);
  const ctLengths: number[] = new Array<number>(siblings.length);
  size += varintSize(siblings.length);
  let previous: Sibling | undefined;
  for (let i = 0; i < siblings.length; i++) {
    const s = siblings[i]!;
    if (!isCounter(s.dot.counter)) invalid(`invalid dot counter ${String(s.dot.counter)}`);
    // Siblings usually share one content type: measure it again only when it changes.
    let ct: number;
    if (previous !== undefined) {
      const order = compareStrings(previous.dot.actor, s.dot.actor) || previous.dot.counter - s.dot.counter;
      if (order >= 0) invalid('siblings not in strictly increasing (actor, counter) order');
      ct = placeholders ? 0 : previous.contentType === s.contentType ? ctLengths[i - 1]! : utf8Length(s.contentType);
    } else {
      ct = placeholders ? 0 : utf8Length(s.contentType);
    }
    if (ct < 0) invalid('ill-formed content type');
    previous = s;
    ctLengths[i] = ct;
    const idx = actors.indexOf(s.dot.actor);
    dotIndexes[i] = idx;
    const valueLength = placeholders ? 0 : s.value.length;
    size += varintSize(idx) + varintSize(s.dot.counter) + SIBLING_FIXED + varintSize(ct) + ct + varintSize(valueLength) + valueLength;
  }
  size += CRC_BYTES;

  // Every byte is written below (the size is exact, checked before the checksum).
  const out = allocBytes(size);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out[headroom] = OBJECT_FORMAT;
  let pos = writeVarint(out, headroom + 1, actors.length);
  for (let i = 0; i < actors.length; i++) {
    const length = actorLengths[i]!;
    pos = writeVarint(out, pos, length);
    pos = writeUtf8(out, pos, actors[i]!, length);
  }
  for (const counter of counters) pos = writeVarint(out, pos, counter);
  pos = writeVarint(out, pos, siblings.length);
  for (let i = 0; i < siblings.length; i++) {
    const s = siblings[i]!;
    pos = writeVarint(out, pos, dotIndexes[i]!);
    pos = writeVarint(out, pos, s.dot.counter);
    if (placeholders) {
      // Flags, lastModified +0, an empty content type and an empty value: all zero bytes.
      for (let k = 0; k < PLACEHOLDER_TAIL; k++) out[pos++] = 0;
      continue;
    }
    out[pos++] = s.deleted ? FLAG_DELETED : 0;
    view.setFloat64(pos, s.lastModified, true);
    pos += 8;
    const ct = ctLengths[i]!;
    pos = writeVarint(out, pos, ct);
    pos = writeUtf8(out, pos, s.contentType, ct);
    pos = writeVarint(out, pos, s.value.length);
    out.set(s.value, pos);
    pos += s.value.length;
  }
  if (pos !== size - CRC_BYTES) invalid(`encoded ${pos + CRC_BYTES} bytes, measured ${size}`);
  view.setUint32(pos, crc32(out.subarray(headroom, pos)), true);
  return out;
}

/**
 * Decode bytes from `encodeObject`. Throws `RingkvError('INTERNAL')` on anything corrupt
 * (checksum mismatch, unknown format, truncation, out-of-range numbers, bad indexes, bad
 * UTF-8, unordered or duplicate actors or dots, trailing bytes); it never returns a guess.
 *
 * Each sibling's `value` is a view into `bytes`, not a copy: the caller must not reuse or
 * mutate `bytes` while the object is alive, and a small value keeps the whole input buffer
 * reachable (copy with `slice()` to keep one long-term out of a large message).
 */
export function decodeObject(bytes: Uint8Array): VersionedObject {
  if (bytes.length < 1 + CRC_BYTES) throw new RingkvError('INTERNAL', `${CORRUPT}: ${TRUNCATED}`);
  const end = bytes.length - CRC_BYTES;
  // Annotated so TypeScript treats r.fail() (returns never) as ending the branch.
  const r: ByteReader = new ByteReader(bytes, 'INTERNAL', CORRUPT, end);
  // The checksum first: bytes that pass it are what some encoder wrote, so an unknown format
  // or field past this point is not damage (see isCorruptObject).
  const stored = new DataView(bytes.buffer, bytes.byteOffset + end, CRC_BYTES).getUint32(0, true);
  if (crc32(bytes.subarray(0, end)) !== stored) r.fail(CHECKSUM_MISMATCH);
  const format = r.u8('format');
  if (format !== OBJECT_FORMAT) r.fail(`unknown format ${format}`);

  const actorCount = r.varint('actor count');
  // Each actor takes at least 2 bytes (its length and its counter).
  if (actorCount * 2 > r.remaining) r.fail('truncated (actors)');
  const actors: string[] = [];
  for (let i = 0; i < actorCount; i++) {
    const actor = r.string('actor');
    if (actor.length === 0) r.fail('empty actor');
    const prev = actors[i - 1];
    if (prev !== undefined && compareStrings(prev, actor) >= 0) r.fail('actors not unique and ordered');
    actors.push(actor);
  }
  const clock = newClock();
  // Table actors outside the clock: the encoder writes one only for a dot's actor, so each
  // must be named by some dot (checked below), or the bytes are a second encoding of the
  // object. Counted here so the usual object (every dot covered) pays nothing more.
  let uncounted = 0;
  for (const actor of actors) {
    const counter = r.varint('clock counter');
    if (counter > 0) clock[actor] = counter;
    else uncounted++;
  }

  const siblingCount = r.varint('sibling count');
  if (siblingCount * MIN_SIBLING_BYTES > r.remaining) r.fail('truncated (siblings)');
  const siblings: Sibling[] = [];
  let prevIdx = -1;
  let prevCounter = 0;
  for (let i = 0; i < siblingCount; i++) {
    const idx = r.varint('dot actor');
    const actor = actors[idx];
    if (actor === undefined) r.fail(`dot actor index ${idx} out of range`);
    const counter = r.varint('dot counter');
    if (counter < 1) r.fail('dot counter must be positive');
    if (idx < prevIdx || (idx === prevIdx && counter <= prevCounter)) r.fail('dots not unique and ordered');
    prevIdx = idx;
    prevCounter = counter;
    const flags = r.u8('flags');
    if ((flags & ~FLAG_DELETED) !== 0) r.fail(`unknown flags ${flags}`);
    const lastModified = r.float64('lastModified');
    const contentType = r.string('content type');
    const value = r.view8(r.varint('value length'), 'value');
    siblings.push({
      dot: { actor, counter },
      value,
      contentType,
      lastModified,
      deleted: (flags & FLAG_DELETED) !== 0,
    });
  }
  if (r.pos !== end) r.fail(`trailing bytes (${end - r.pos})`);
  if (uncounted > 0) {
    for (const actor of actors) {
      if (!(actor in clock) && !siblings.some((s) => s.dot.actor === actor)) r.fail(`actor ${JSON.stringify(actor)} unused`);
    }
  }
  // Sibling values are views into `bytes` already, so remembering `bytes` retains nothing new.
  return versioned(clock, siblings, bytes);
}

/**
 * True when `err` is decodeObject's refusal of damaged bytes: too short to hold an object, or
 * failing the checksum. Not for bytes that pass the checksum but do not decode (an unknown
 * format, say from a newer version, or an encoder bug): those are refused loudly, never
 * treated as damage to replace or skip. Nor for a read that failed.
 */
export function isCorruptObject(err: unknown): boolean {
  return (
    err instanceof RingkvError &&
    err.code === 'INTERNAL' &&
    (err.message === `${CORRUPT}: ${TRUNCATED}` || err.message === `${CORRUPT}: ${CHECKSUM_MISMATCH}`)
  );
}

/** decodeObject, or undefined for damaged bytes (see isCorruptObject); any other refusal throws. */
export function decodeUnlessCorrupt(bytes: Uint8Array): VersionedObject | undefined {
  try {
    return decodeObject(bytes);
  } catch (err) {
    if (isCorruptObject(err)) return undefined;
    throw err;
  }
}

/** A placeholder sibling after its dot: flags 0, lastModified +0 (8 bytes), empty content type, empty value. */
const PLACEHOLDER_TAIL = 1 + 8 + 1 + 1;

/** Where `varintAt` is in the bytes it reads (it runs to completion, so one will do). */
let at = 0;

/** The minimal LEB128 varint at `at`, below `end`; -1 if it is truncated, not minimal or too large. */
function varintAt(bytes: Uint8Array, end: number): number {
  let result = 0;
  let scale = 1;
  for (let i = 0; i < 8 && at < end; i++) {
    const b = bytes[at++] as number;
    result += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return (b === 0 && i > 0) || !Number.isSafeInteger(result) ? -1 : result;
    scale *= 0x80;
  }
  return -1;
}

/**
 * True when `bytes` are exactly what encodeObject writes for `obj`'s version with every sibling
 * made a placeholder (a live empty value, no content type, lastModified 0): a peer's
 * version-only read answer (see encodeStampReadReply in the coordinator's messages). Decides it
 * from the bytes, without building the clock, the actor strings and the sibling list a decode
 * would: a GET's peer usually holds the very version the coordinator read itself, and decoding
 * its answer just to find that out cost 4.5-6.8 µs per GET (idle).
 *
 * `obj` is compared through the encoding it carries (every object read from the store has
 * one): the placeholder encoding of the same version has the same header (format, actor table,
 * counters, sibling count; none of it depends on values) and the same dots, each followed by
 * the placeholder's zeros instead of the sibling's contents. So `bytes` must repeat that
 * header and those dots byte for byte. An object without an encoding, or one whose encoding
 * reads as malformed, answers false.
 *
 * False means only "not shown equal", and the caller decodes as before. The checksum is not
 * read: bytes equal to a valid encoding up to it say what that encoding says, whatever the
 * last four bytes hold.
 */
export function encodesPlaceholderStamp(bytes: Uint8Array, obj: VersionedObject): boolean {
  const end = bytes.length - CRC_BYTES;
  const own = encodingOf(obj);
  if (own === undefined || end < 1 || bytes[0] !== OBJECT_FORMAT) return false;
  const ownEnd = own.length - CRC_BYTES;
  at = 1;
  const actorCount = varintAt(own, ownEnd);
  for (let k = 0; k < actorCount; k++) {
    const n = varintAt(own, ownEnd);
    if (n < 0) return false;
    at += n;
  }
  for (let k = 0; k < actorCount; k++) if (varintAt(own, ownEnd) < 0) return false;
  const siblingCount = varintAt(own, ownEnd);
  if (actorCount < 0 || siblingCount < 0 || at > end) return false;
  const header = at;
  for (let i = 0; i < header; i++) if (bytes[i] !== own[i]) return false;
  let pos = header;
  for (let k = 0; k < siblingCount; k++) {
    const dot = at;
    if (varintAt(own, ownEnd) < 0 || varintAt(own, ownEnd) < 0) return false;
    const dotLength = at - dot;
    if (pos + dotLength + PLACEHOLDER_TAIL > end) return false;
    for (let i = 0; i < dotLength; i++) if (bytes[pos + i] !== own[dot + i]) return false;
    pos += dotLength;
    for (let i = 0; i < PLACEHOLDER_TAIL; i++) if (bytes[pos + i] !== 0) return false;
    pos += PLACEHOLDER_TAIL;
    // Past own's contents: flags and lastModified, the content type, the value.
    at += 1 + 8;
    const ct = varintAt(own, ownEnd);
    if (ct < 0) return false;
    at += ct;
    const valueLength = varintAt(own, ownEnd);
    if (valueLength < 0) return false;
    at += valueLength;
  }
  return pos === end && at === ownEnd;
}

/**
 * Binary clock for node-to-node use: the same format a context carries before base64url
 * (format byte, count, canonical actor/counter pairs); no checksum. Throws INTERNAL for an
 * invalid clock.
 */
export function encodeClock(clock: VersionVector): Uint8Array {
  return writeClock(clock);
}

/** Decode `encodeClock` output strictly; throws `RingkvError('INTERNAL')` on anything else. */
export function decodeClock(bytes: Uint8Array): VersionVector {
  return readClock(new ByteReader(bytes, 'INTERNAL', 'corrupt clock'), MAX_CLOCK_ENTRIES);
}
