/**
 * Versioned values: dotted version vectors ("dotted siblings").
 *
 * An object is a causal context (a version vector: actor -> highest counter seen) plus a
 * set of siblings, each stamped with the dot (actor, counter) of the write that made it.
 * A write carrying a context drops exactly the siblings whose dots that context covers and
 * adds one new sibling; merge keeps every sibling that the other side has not seen.
 */

/** An actor id: `<nodeId>.<epoch>` (the epoch is per data directory; see KV679). */
export type Actor = string;

/** Version vector: actor -> highest counter seen. Plain object; counters are integers >= 1. */
export type VersionVector = Readonly<Record<Actor, number>>;

export interface Dot {
  readonly actor: Actor;
  readonly counter: number;
}

export interface Sibling {
  readonly dot: Dot;
  /** The value bytes; empty for a tombstone. */
  readonly value: Uint8Array;
  readonly contentType: string;
  /** Wall-clock ms at which the write was minted (informational; never used for ordering). */
  readonly lastModified: number;
  /** True for a tombstone (a delete is a versioned write). */
  readonly deleted: boolean;
}

export interface VersionedObject {
  /** Everything this object has seen, including every sibling's dot. */
  readonly clock: VersionVector;
  /** Concurrent values, sorted by (actor, counter) so equal objects are equal structurally. */
  readonly siblings: readonly Sibling[];
}

/**
 * An object's version without its contents: its clock and its siblings' dots. Everything that
 * decides how versions relate (sameVersion, versionDigest, mergeKeepsIncoming) reads only
 * this much; a VersionedObject is one.
 */
export interface VersionStamp {
  readonly clock: VersionVector;
  readonly siblings: readonly { readonly dot: Dot }[];
}

/** What a client writes: a value or a delete. */
export interface WriteValue {
  readonly value: Uint8Array;
  readonly contentType: string;
  readonly deleted: boolean;
}
