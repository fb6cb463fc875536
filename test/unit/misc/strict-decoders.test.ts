/**
 * The node-to-node decoders accept exactly what their encoders write: a damaged count, length,
 * tag or flag, trailing bytes, a varint past 2^53 or not minimal, or a second encoding of an
 * object is refused rather than decoded as a valid, different message.
 */
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  decodeForwardedPut,
  decodeReadReply,
  decodeReplicaWrite,
  decodeString,
  decodeWriteBatch,
  encodeForwardedPut,
  encodeReplicaWrite,
  encodeStampReadReply,
  encodeString,
  encodeWriteBatch,
} from '../../../src/coordinator/messages.js';
import { RingkvError } from '../../../src/errors.js';
import { ManualTime } from '../../../src/runtime/index.js';
import { withBatching } from '../../../src/transport/batching.js';
import type { Transport } from '../../../src/transport/transport.js';
import { decodeObject, encodeObject } from '../../../src/version/index.js';
import type { VersionedObject } from '../../../src/version/types.js';
import { Reader, Writer } from '../../../src/wire.js';

const concat = (...parts: ArrayLike<number>[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
};

/** `body` followed by its CRC-32 (little-endian), as decodeObject expects. */
const withCrc = (body: Uint8Array): Uint8Array => {
  const crc = new Uint8Array(4);
  new DataView(crc.buffer).setUint32(0, crc32(body), true);
  return concat(body, crc);
};

const literal: VersionedObject = {
  clock: { a: 1 },
  siblings: [{ dot: { actor: 'a', counter: 1 }, value: new Uint8Array(0), contentType: '', lastModified: 0, deleted: false }],
};


/** A forwarded put of key "k" with an empty value and content type, no context, w=2. */
function forwardedPut(deleted: boolean): Uint8Array {
  return encodeForwardedPut({ key: 'k', write: { value: new Uint8Array(0), contentType: '', deleted }, context: '', w: 2, timeoutMs: 1000 });
}

describe('review: wire.ts Reader.uint', () => {
  it('refuses varints above 2^53-1 instead of silently rounding them', () => {
    // 2^53 + 1 as an 8-byte LEB128 varint: Writer refuses to write it (not a safe integer).
    const bytes = Uint8Array.from([0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);
    expect(() => new Writer().uint(2 ** 53 + 1)).toThrow();
    expect(() => new Reader(bytes).uint()).toThrow(RingkvError);
  });

  it('refuses non-minimal varints (one encoding per number, as ByteReader does)', () => {
    expect(() => new Reader(Uint8Array.from([0x80, 0x00])).uint()).toThrow(RingkvError);
  });
});

describe('review: decodeObject canonical form', () => {
  it('refuses an actor-table entry that is neither in the clock nor named by a dot', () => {
    // format 1; actors ["a", "b"]; counters [1, 0]; one sibling (a,1), live, lastModified 0, "" , empty value.
    const body = Uint8Array.from([
      1, 2, 1, 0x61, 1, 0x62, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    const crafted = withCrc(body);
    const canonical = encodeObject(literal);
    let decoded: VersionedObject | undefined;
    try {
      decoded = decodeObject(crafted);
    } catch (err) {
      expect(err).toBeInstanceOf(RingkvError);
      return;
    }
    // If it decodes, it is the very same object as `literal`, yet encodes to other bytes.
    expect(decoded.clock).toEqual(literal.clock);
    expect(decoded.siblings).toEqual(literal.siblings);
    expect(Buffer.from(encodeObject(decoded)).equals(Buffer.from(canonical))).toBe(true);
  });
});

describe('review: coordinator read replies', () => {
  it('does not read "absent" from a reply that carries more than the absent tag', () => {
    const object = encodeObject(literal);
    const garbled = concat([0], object); // tag byte 1 -> 0, object still attached
    expect(() => decodeReadReply(garbled)).toThrow(RingkvError);
  });

  it('does not take a version-only (placeholder) reply, or an unknown tag, for a full object', () => {
    const stamp = encodeStampReadReply({ clock: literal.clock, siblings: literal.siblings });
    expect(() => decodeReadReply(stamp)).toThrow(RingkvError);
    const unknownTag = concat([7], encodeObject(literal));
    expect(() => decodeReadReply(unknownTag)).toThrow(RingkvError);
  });
});

describe('review: coordinator messages refuse what their encoders never write', () => {
  it('a write batch whose count was garbled smaller is refused, not decoded as a shorter batch', () => {
    const object = encodeObject(literal);
    const b = encodeWriteBatch([
      { key: 'k1', object },
      { key: 'k2', object },
    ]);
    expect(b[0]).toBe(2);
    const garbled = Uint8Array.from(b);
    garbled[0] = 1;
    expect(() => decodeWriteBatch(garbled)).toThrow(RingkvError);
  });

  it('trailing bytes after a string, replica write or forwarded put are refused', () => {
    expect(() => decodeString(concat(encodeString('key'), [0x41]))).toThrow(RingkvError);
    const rw = encodeReplicaWrite({ key: 'k', hintsFor: [], object: literal });
    expect(() => decodeReplicaWrite(concat(rw, [0]))).toThrow(RingkvError);
    expect(() => decodeForwardedPut(concat(forwardedPut(false), [0]))).toThrow(RingkvError);
  });

  it('a forwarded put whose deleted flag is neither 0 nor 1 is refused', () => {
    const fp = forwardedPut(true);
    // key "k" (2 bytes), empty value (1), empty content type (1), then the flag.
    expect(fp[4]).toBe(1);
    const garbled = Uint8Array.from(fp);
    garbled[4] = 2;
    expect(() => decodeForwardedPut(garbled)).toThrow(RingkvError);
  });
});

describe('review: batching reply envelope', () => {
  it('a batch reply with trailing bytes fails the items instead of answering them', async () => {
    const time = new ManualTime();
    const inner: Transport = {
      async send() {
        // One item, status 200, body "x", then garbage the peer never writes.
        return concat(new Writer().uint(1).uint(200).bytes(Uint8Array.from([0x78])).finish(), [0xff, 0xff]);
      },
      close: async () => undefined,
    };
    const t = withBatching(inner, { clock: time, timers: time }, { routes: ['echo'] });
    await expect(t.send('peer:1', 'echo', Uint8Array.from([1]), { timeoutMs: 1000, idempotent: true })).rejects.toThrow();
  });
});
