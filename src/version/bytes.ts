/**
 * Byte-level helpers shared by the context and object codecs: LEB128 varints up to
 * 2^53 - 1, strict UTF-8, and a bounds-checked reader that fails with a caller-chosen
 * error code. Internal to `src/version/`, except clockFromEntries (the one way to build a clock).
 */
import { type ErrorCode, RingkvError } from '../errors.js';
import { utf8Length, writeUtf8 } from '../utf8.js';
import type { VersionVector } from './types.js';

/** A shared decoder: stateless, and creating one per call is measurable. */
// fatal: malformed UTF-8 throws instead of becoming U+FFFD (corrupt input must not decode);
// ignoreBOM: a leading U+FEFF is part of the string, not a marker to strip (round-trips).
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Version byte of the binary clock format (also the decoded form of a context). */
export const CLOCK_FORMAT = 1;

/** Code-unit order: deterministic and locale-independent, unlike localeCompare. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Sorts `strings` in place in code-unit order (as {@link compareStrings}) and returns it. A
 * clock has a handful of actors, and Array#sort copies its input into a scratch array first:
 * sorting clocks that way was ~6 % of all bytes a node allocated under write load (the
 * anti-entropy digest sorts two clocks per write). Short arrays get an insertion sort in place.
 */
export function sortStrings(strings: string[]): string[] {
  if (strings.length > 16) return strings.sort(compareStrings);
  for (let i = 1; i < strings.length; i++) {
    const s = strings[i] as string;
    let j = i - 1;
    while (j >= 0 && (strings[j] as string) > s) {
      strings[j + 1] = strings[j] as string;
      j--;
    }
    strings[j + 1] = s;
  }
  return strings;
}

/**
 * An empty clock to fill in place, as a null-prototype object (every clock is one; see
 * clockFromEntries for why). Decoders and the joins in dvv.ts build clocks with this rather
 * than through an array of pairs.
 */
export function newClock(): Record<string, number> {
  return Object.create(null) as Record<string, number>;
}

/**
 * A clock from (actor, counter) pairs, as a null-prototype object. Why not a plain object:
 * V8 gives every plain object a hidden class built from its property names, and a clock's
 * names are actors, which are unique per key for keys first written on a replica that held
 * nothing (fresh actors). Each decoded clock then grew V8's class tree by a new branch and
 * missed every property cache (measured: 2.8 µs to build and walk a 3-entry clock, against
 * 1.0 µs for a null-prototype object, which V8 keeps as a hash table from the start). A null
 * prototype also makes an actor named "__proto__" plain data.
 */
export function clockFromEntries(entries: Iterable<readonly [string, number]>): VersionVector {
  const clock = newClock();
  for (const [actor, counter] of entries) clock[actor] = counter;
  return clock;
}

/** Slots of the actor table (a power of two); see {@link canonicalActor}. */
const ACTOR_SLOTS = 1024;
/** Longer strings are not kept: real actors are node ids plus a short suffix. */
const ACTOR_MAX_LENGTH = 64;
const actorTable: (string | undefined)[] = new Array<string | undefined>(ACTOR_SLOTS).fill(undefined);

/**
 * One string object per actor name: `actor` itself, or an equal string seen before. Why: a
 * clock is an object whose property names are actors, and V8 must internalize a property name
 * (look it up in the isolate's string table) before storing it. A string just decoded from
 * bytes is not internalized, and building a one-entry clock with one took ~660 ns, against
 * ~60 ns with a string already used as a property name. Every replica write, version-cache
 * hit and context decodes such clocks, several times per request. ByteReader.string also
 * passes every string it decodes through here, so the content types that every decoded
 * sibling repeats are found again from their bytes too (see tableStringOf).
 *
 * The table is direct-mapped (a new actor replaces whatever shared its slot) and compares
 * whole strings, so the answer is always equal to `actor`; only which object comes back
 * varies. Its memory is bounded: ACTOR_SLOTS strings of at most ACTOR_MAX_LENGTH. (A string
 * that V8 made as a slice of a longer one, such as an actor cut from a version-cache entry,
 * keeps that longer string alive while it sits here: a few hundred KiB at the very most.)
 */
export function canonicalActor(actor: string): string {
  const n = actor.length;
  if (n > ACTOR_MAX_LENGTH) return actor;
  let h = 0x811c9dc5;
  for (let i = 0; i < n; i++) h = Math.imul(h ^ actor.charCodeAt(i), 0x01000193);
  const slot = (h >>> 0) & (ACTOR_SLOTS - 1);
  const known = actorTable[slot];
  if (known === actor) return known;
  actorTable[slot] = actor;
  return actor;
}

/**
 * canonicalActor(s.slice(start, end)), without making the slice when the table already holds
 * that actor (the usual case: version-cache entries name the same few actors over and over).
 */
export function canonicalActorIn(s: string, start: number, end: number): string {
  const n = end - start;
  if (n <= ACTOR_MAX_LENGTH) {
    let h = 0x811c9dc5;
    for (let i = start; i < end; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    const known = actorTable[(h >>> 0) & (ACTOR_SLOTS - 1)];
    if (known !== undefined && known.length === n && s.startsWith(known, start)) return known;
  }
  return canonicalActor(s.slice(start, end));
}

/**
 * The string held in the actor table for the ASCII bytes `bytes[start, start + len)`, or
 * undefined when the table has no such string there (or the bytes are not all ASCII, or too
 * many). Hashes bytes as canonicalActor hashes a string's code units, which for ASCII are the
 * same numbers, so an actor decoded once is found again from its bytes: a hit skips UTF-8
 * decoding (TextDecoder costs ~110 ns per call, most of it crossing into C++) as well as
 * canonicalActor's second pass. A hit is exact: every byte is compared with the string.
 */
function tableStringOf(bytes: Uint8Array, start: number, len: number): string | undefined {
  if (len > ACTOR_MAX_LENGTH) return undefined;
  let h = 0x811c9dc5;
  for (let i = start; i < start + len; i++) {
    const b = bytes[i] as number;
    if (b >= 0x80) return undefined;
    h = Math.imul(h ^ b, 0x01000193);
  }
  const known = actorTable[(h >>> 0) & (ACTOR_SLOTS - 1)];
  if (known === undefined || known.length !== len) return undefined;
  for (let i = 0; i < len; i++) if (known.charCodeAt(i) !== bytes[start + i]) return undefined;
  return known;
}

/** Bytes a LEB128 varint of `n` (a non-negative safe integer) takes. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

/**
 * Write `n` as an unsigned LEB128 varint at `pos`; returns the position after it.
 * Division rather than `>>>` because counters and lengths may exceed 32 bits.
 */
export function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[pos++] = n;
  return pos;
}

/** True for integers in 1..2^53-1: the only valid clock counters. */
export function isCounter(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1;
}

/**
 * A bounds-checked cursor over bytes. Every read either returns a well-formed value or
 * throws `RingkvError(code, "<what>: <reason>")`; it never reads past the end.
 */
export class ByteReader {
  pos = 0;
  /** Made on first use: clocks and contexts never read a fixed-width number. */
  #view: DataView | undefined;

  constructor(
    readonly bytes: Uint8Array,
    private readonly code: ErrorCode,
    private readonly what: string,
    /** Reads stop here (exclusive); lets a trailer such as a checksum sit outside. */
    readonly end: number = bytes.length,
  ) {}

  private get view(): DataView {
    this.#view ??= new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    return this.#view;
  }

  /** Throw the reader's error with a reason. */
  fail(reason: string): never {
    throw new RingkvError(this.code, `${this.what}: ${reason}`);
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, field: string): void {
    if (n > this.end - this.pos) this.fail(`truncated (${field})`);
  }

  u8(field: string): number {
    this.need(1, field);
    return this.bytes[this.pos++]!;
  }

  /** Unsigned LEB128, at most 2^53 - 1, minimal encoding only (one encoding per number). */
  varint(field: string): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; ; i++) {
      if (i === 8) this.fail(`varint too long (${field})`);
      const b = this.u8(field);
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) this.fail(`non-minimal varint (${field})`);
        break;
      }
      scale *= 0x80;
    }
    if (!Number.isSafeInteger(result)) this.fail(`number out of range (${field})`);
    return result;
  }

  float64(field: string): number {
    this.need(8, field);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  uint32(field: string): number {
    this.need(4, field);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /**
   * `n` bytes as a view into the input (no copy). Always a plain Uint8Array, even when the
   * input is a Buffer, so callers see one type.
   */
  view8(n: number, field: string): Uint8Array {
    this.need(n, field);
    const out = new Uint8Array(this.bytes.buffer, this.bytes.byteOffset + this.pos, n);
    this.pos += n;
    return out;
  }

  /**
   * A length-prefixed UTF-8 string; malformed UTF-8 fails. A short ASCII string already in the
   * actor table (actors, content types) comes back as that very string, canonical already
   * (see canonicalActor), without decoding.
   */
  string(field: string): string {
    const len = this.varint(field);
    this.need(len, field);
    const start = this.pos;
    this.pos += len;
    const known = tableStringOf(this.bytes, start, len);
    if (known !== undefined) return known;
    try {
      // A plain view, not subarray(): on a Buffer that goes through Buffer's own subarray.
      return canonicalActor(utf8Decoder.decode(new Uint8Array(this.bytes.buffer, this.bytes.byteOffset + start, len)));
    } catch {
      return this.fail(`invalid UTF-8 (${field})`);
    }
  }
}

/**
 * Binary clock: `[CLOCK_FORMAT][varint n]` then n times `[varint len][utf8 actor][varint counter]`,
 * actors in canonical order. Exact-size single allocation. Throws INTERNAL for an invalid
 * clock (empty or ill-formed actors, counters outside 1..2^53-1): a bug upstream.
 */
export function writeClock(clock: VersionVector): Uint8Array {
  const actors = sortStrings(Object.keys(clock));
  const lengths: number[] = new Array<number>(actors.length);
  let size = 1 + varintSize(actors.length);
  for (let i = 0; i < actors.length; i++) {
    const actor = actors[i] as string;
    const counter = clock[actor];
    const length = utf8Length(actor);
    if (length <= 0) {
      throw new RingkvError('INTERNAL', `invalid actor in clock: ${JSON.stringify(actor)}`);
    }
    if (!isCounter(counter)) {
      throw new RingkvError('INTERNAL', `invalid counter for actor ${JSON.stringify(actor)}: ${String(counter)}`);
    }
    lengths[i] = length;
    size += varintSize(length) + length + varintSize(counter);
  }
  const out = new Uint8Array(size);
  out[0] = CLOCK_FORMAT;
  let pos = writeVarint(out, 1, actors.length);
  for (let i = 0; i < actors.length; i++) {
    const actor = actors[i] as string;
    const length = lengths[i] as number;
    pos = writeVarint(out, pos, length);
    pos = writeUtf8(out, pos, actor, length);
    pos = writeVarint(out, pos, clock[actor] as number);
  }
  return out;
}

/**
 * Parse a binary clock strictly: known format byte, at most `maxEntries` entries, non-empty
 * actors in strictly increasing canonical order (so no duplicates and one encoding per
 * clock), counters in 1..`maxCounter` (at most 2^53-1), and nothing after the last entry.
 */
export function readClock(reader: ByteReader, maxEntries: number, maxCounter = Number.MAX_SAFE_INTEGER): VersionVector {
  const format = reader.u8('format');
  if (format !== CLOCK_FORMAT) reader.fail(`unknown format ${format}`);
  const n = reader.varint('entry count');
  if (n > maxEntries) reader.fail(`too many entries (${n} > ${maxEntries})`);
  // Each entry takes at least 2 bytes; refuse impossible counts before looping.
  if (n * 2 > reader.remaining) reader.fail('truncated (entries)');
  const clock = newClock();
  let previous: string | undefined;
  for (let i = 0; i < n; i++) {
    const actor = reader.string('actor');
    if (actor.length === 0) reader.fail('empty actor');
    if (previous !== undefined) {
      const order = compareStrings(previous, actor);
      if (order === 0) reader.fail(`duplicate actor ${JSON.stringify(actor)}`);
      if (order > 0) reader.fail('actors not in canonical order');
    }
    const counter = reader.varint('counter');
    if (counter < 1) reader.fail(`counter for actor ${JSON.stringify(actor)} must be positive`);
    // Checked here rather than over Object.values() afterwards: that costs ~1 µs on a
    // dictionary-mode object of four entries, a third of a whole context decode.
    if (counter > maxCounter) reader.fail(`counter ${counter} exceeds ${maxCounter}`);
    clock[actor] = counter;
    previous = actor;
  }
  if (reader.pos !== reader.end) reader.fail(`trailing bytes (${reader.end - reader.pos})`);
  return clock;
}
