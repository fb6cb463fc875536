import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeReplicaAnswer, encodeStampReadReply } from '../../../src/coordinator/messages.js';
import {
  decodeObject,
  encodeObject,
  encodePlaceholderStamp,
  encodesPlaceholderStamp,
  sameVersion,
  type VersionedObject,
  type VersionStamp,
} from '../../../src/version/index.js';
import { objectArb } from './sim.js';

/**
 * encodesPlaceholderStamp decides, from a peer's version-only read answer, whether it is exactly
 * a version the reader holds, without decoding it. It must never say yes to anything else.
 */
const RUNS = { numRuns: 1000 };

/** The object bytes of a version-only answer (the reply without its one-byte tag). */
const placeholder = (s: VersionStamp): Uint8Array => encodeStampReadReply(s).subarray(1);

/** A one-sibling object of this clock, its sibling at (actor, counter). */
const mintedObject = (clock: Record<string, number>, actor: string, counter: number): VersionedObject => ({
  clock,
  siblings: [{ dot: { actor, counter }, value: new Uint8Array([7]), contentType: 'text/plain', lastModified: 1, deleted: false }],
});

const anyObject = fc.oneof(objectArb(), objectArb({ wellFormed: true }), objectArb({ smallPools: true }));

/**
 * The same version as a stored object read back: it carries its encoding, which the matcher
 * compares with (a coordinator's own copy always comes from the store).
 */
const stored = (o: VersionedObject): VersionedObject => decodeObject(encodeObject({ clock: o.clock, siblings: o.siblings }));

describe('encodesPlaceholderStamp', () => {
  it("recognises a stored object's own version in an answer, and says no for an object without an encoding", () => {
    fc.assert(
      fc.property(anyObject, (o) => {
        expect(encodesPlaceholderStamp(placeholder(o), stored(o))).toBe(true);
        // Built in memory, never encoded: nothing to compare with, so the caller decodes.
        expect(encodesPlaceholderStamp(placeholder(o), o)).toBe(false);
      }),
      RUNS,
    );
  });

  it('says yes to another version only when it is the same version', () => {
    const pools = objectArb({ smallPools: true });
    fc.assert(
      fc.property(fc.oneof(fc.tuple(pools, pools), fc.tuple(anyObject, anyObject)), ([a, b]) => {
        expect(encodesPlaceholderStamp(placeholder(a), stored(b))).toBe(sameVersion(a, b));
      }),
      RUNS,
    );
  });

  it('says no once any byte before the checksum changes, or bytes go missing or are added', () => {
    fc.assert(
      fc.property(anyObject, fc.nat(), fc.integer({ min: 1, max: 255 }), (o, where, delta) => {
        const bytes = placeholder(o);
        const changed = bytes.slice();
        const at = where % (bytes.length - 4);
        changed[at] = ((changed[at] as number) + delta) & 0xff;
        const shorter = bytes.subarray(0, bytes.length - 1 - (where % bytes.length));
        const longer = new Uint8Array(bytes.length + 1);
        longer.set(bytes.subarray(0, bytes.length - 4));
        longer.set(bytes.subarray(bytes.length - 4), bytes.length - 3);
        const expected = stored(o);
        expect(encodesPlaceholderStamp(bytes, expected)).toBe(true);
        expect(encodesPlaceholderStamp(changed, expected)).toBe(false);
        expect(encodesPlaceholderStamp(shorter, expected)).toBe(false);
        expect(encodesPlaceholderStamp(longer, expected)).toBe(false);
      }),
      RUNS,
    );
  });

  it('does not read the checksum: equal bytes before it mean the same version', () => {
    const o = stored(mintedObject({ 'n1.1': 3, 'n2.1': 1 }, 'n1.1', 3));
    const bytes = placeholder(o).slice();
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
    expect(encodesPlaceholderStamp(bytes, o)).toBe(true);
    expect(encodesPlaceholderStamp(bytes, stored({ ...o, siblings: [] }))).toBe(false);
  });

  it('says no to a whole object (a real value is not a placeholder) and to empty input', () => {
    const o = stored({
      clock: { 'n1.1': 1 },
      siblings: [{ dot: { actor: 'n1.1', counter: 1 }, value: new Uint8Array([1]), contentType: 'text/plain', lastModified: 5, deleted: false }],
    });
    expect(encodesPlaceholderStamp(placeholder(o), o)).toBe(true);
    // The object's own bytes carry its value, content type and time, not a placeholder's zeros.
    expect(encodesPlaceholderStamp(encodeObject(o), o)).toBe(false);
    expect(encodesPlaceholderStamp(new Uint8Array(0), o)).toBe(false);
    expect(encodesPlaceholderStamp(new Uint8Array([1, 0, 0, 0, 0]), o)).toBe(false);
  });
});

describe('decodeReplicaAnswer with the reader\'s own version', () => {
  const mine = stored(mintedObject({ 'n1.1': 4, 'n3.2': 2 }, 'n1.1', 4));

  it('hands back the expected version itself when the answer is that version', () => {
    const answer = decodeReplicaAnswer(encodeStampReadReply({ clock: { 'n3.2': 2, 'n1.1': 4 }, siblings: [{ dot: { actor: 'n1.1', counter: 4 } }] }), mine);
    expect(answer.stamp).toBe(mine);
  });

  it('decodes an answer of another version, as without an expected one', () => {
    const theirs = { clock: { 'n1.1': 4, 'n3.2': 3 }, siblings: [{ dot: { actor: 'n3.2', counter: 3 } }] };
    const answer = decodeReplicaAnswer(encodeStampReadReply(theirs), mine);
    expect(answer.stamp).not.toBe(mine);
    expect(answer.stamp && sameVersion(answer.stamp, theirs)).toBe(true);
    expect(decodeReplicaAnswer(encodeStampReadReply(theirs)).stamp).toEqual(answer.stamp);
  });

  it('still refuses a corrupt answer that is not the expected version', () => {
    const bytes = encodeStampReadReply({ clock: { 'n1.1': 5 }, siblings: [{ dot: { actor: 'n1.1', counter: 5 } }] }).slice();
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
    expect(() => decodeReplicaAnswer(bytes, mine)).toThrow(/corrupt object/);
  });
});

describe('encodePlaceholderStamp', () => {
  const viaObject = (s: VersionStamp): Uint8Array =>
    encodeObject({
      clock: s.clock,
      siblings: s.siblings.map((x) => ({ dot: x.dot, value: new Uint8Array(0), contentType: '', lastModified: 0, deleted: false })),
    });

  it('writes the bytes encodeObject writes for the placeholder object, after the headroom', () => {
    fc.assert(
      fc.property(anyObject, fc.integer({ min: 0, max: 3 }), (o, headroom) => {
        const out = encodePlaceholderStamp(o, headroom);
        expect(Buffer.from(out.subarray(headroom)).equals(Buffer.from(viaObject(o)))).toBe(true);
        expect(decodeObject(out.subarray(headroom)).clock).toEqual({ ...o.clock });
      }),
      RUNS,
    );
  });

  it('refuses what encodeObject refuses', () => {
    const unordered = { clock: { a: 2 }, siblings: [{ dot: { actor: 'a', counter: 2 } }, { dot: { actor: 'a', counter: 1 } }] };
    expect(() => encodePlaceholderStamp(unordered, 1)).toThrow(/strictly increasing/);
    expect(() => viaObject(unordered)).toThrow(/strictly increasing/);
    expect(() => encodePlaceholderStamp({ clock: { a: 0 }, siblings: [] }, 1)).toThrow(/invalid counter/);
  });
});
