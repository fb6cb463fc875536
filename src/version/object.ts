/**
 * How ringkv builds VersionedObjects: as instances of one class that can carry the bytes the
 * object was decoded from or last encoded to, so the request path encodes each version once
 * (see encodeObject in codec.ts).
 *
 * Why a class and not a side table: a WeakMap from object to bytes cost ~250 ns per object
 * (V8 must give the key an identity hash and keep an ephemeron entry, and every scavenge
 * walks those entries), and a request makes several objects. In `bench:ab` (4 rounds, 256 B)
 * taking the WeakMap out made PUT ~10 % and GET ~5 % cheaper in server CPU per request.
 *
 * The bytes live in a private field: not a property, so it is invisible to equality checks,
 * JSON and key enumeration; an object built here still compares equal to the same object
 * written as a literal. Objects made elsewhere (tests write literals) still work everywhere:
 * their encodings are remembered in a WeakMap, as before.
 */
import type { Sibling, VersionedObject, VersionVector } from './types.js';

class Versioned implements VersionedObject {
  readonly clock: VersionVector;
  readonly siblings: readonly Sibling[];
  /** encodeObject's output for this object, once known. Objects are immutable, so it stays valid. */
  #encoded: Uint8Array | undefined;

  constructor(clock: VersionVector, siblings: readonly Sibling[], encoded: Uint8Array | undefined) {
    this.clock = clock;
    this.siblings = siblings;
    this.#encoded = encoded;
  }

  static encodingOf(obj: VersionedObject): Uint8Array | undefined {
    return #encoded in obj ? obj.#encoded : others.get(obj);
  }

  static isInstance(obj: VersionedObject): boolean {
    return #encoded in obj;
  }

  static remember(obj: VersionedObject, bytes: Uint8Array): void {
    if (#encoded in obj) obj.#encoded = bytes;
    else others.set(obj, bytes);
  }
}

/** Encodings of objects not built by {@link versioned}. */
const others = new WeakMap<VersionedObject, Uint8Array>();

/**
 * A new object. `encoded`, when given, must be encodeObject's output for exactly this clock
 * and these siblings (the decoder passes the bytes it read).
 */
export function versioned(clock: VersionVector, siblings: readonly Sibling[], encoded?: Uint8Array): VersionedObject {
  return new Versioned(clock, siblings, encoded);
}

/** True if `obj` was built by {@link versioned} (it keeps its encoding in itself). */
export function isVersioned(obj: VersionedObject): boolean {
  return Versioned.isInstance(obj);
}

/** The bytes `obj` was decoded from or last encoded to, if any. */
export function encodingOf(obj: VersionedObject): Uint8Array | undefined {
  return Versioned.encodingOf(obj);
}

/** Record `bytes` as encodeObject's output for `obj` (which is immutable). */
export function rememberEncoding(obj: VersionedObject, bytes: Uint8Array): void {
  Versioned.remember(obj, bytes);
}
