/**
 * The storage seam. A Store is a durable, ordered byte-key/byte-value map split into
 * namespaces (one sublevel each). Every implementation passes test/contract/store.contract.ts.
 */

/** The namespaces ringkv keeps. Each is an independent ordered keyspace. */
export type Namespace =
  /** versioned objects, keyed by objectKey(partition, key) */
  | 'obj'
  /** parked hints, keyed by hintKey(ownerId, partition, key) */
  | 'hint'
  /** node metadata (actor epoch, etc.) */
  | 'meta'
  /** ownership-transfer bookkeeping */
  | 'xfer';

export const NAMESPACES: readonly Namespace[] = ['obj', 'hint', 'meta', 'xfer'];

export type BatchOp =
  | { readonly type: 'put'; readonly ns: Namespace; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly ns: Namespace; readonly key: Uint8Array };

export interface RangeOptions {
  /** inclusive lower bound */
  readonly gte?: Uint8Array;
  /** exclusive lower bound */
  readonly gt?: Uint8Array;
  /** exclusive upper bound */
  readonly lt?: Uint8Array;
  /** inclusive upper bound */
  readonly lte?: Uint8Array;
  readonly limit?: number;
  readonly reverse?: boolean;
}

export interface Store {
  /** Open (create if missing). Rejects with a clear message if the location is unusable. */
  open(): Promise<void>;
  /** Close; idempotent. */
  close(): Promise<void>;
  /** The value of `key`, or undefined. The caller owns the result and may mutate it. */
  get(ns: Namespace, key: Uint8Array): Promise<Uint8Array | undefined>;
  /**
   * Like {@link get}, but the result may be bytes the store keeps (its read cache): the caller
   * must never mutate them. It may keep them as long as it likes (a later write replaces the
   * store's bytes, it never rewrites them). For readers that only decode: it saves a copy.
   */
  getShared(ns: Namespace, key: Uint8Array): Promise<Uint8Array | undefined>;
  getMany(ns: Namespace, keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  /**
   * Drop the read cache's copy of `key`, if it holds one, so the next read goes to the
   * database. For a copy found damaged there: the cache may still hold the healthy bytes it
   * read before the disk went bad, and would hide the damage from a writer that must replace it.
   */
  uncache(ns: Namespace, key: Uint8Array): void;
  put(ns: Namespace, key: Uint8Array, value: Uint8Array): Promise<void>;
  del(ns: Namespace, key: Uint8Array): Promise<void>;
  /** Apply all ops atomically (all or nothing), across namespaces. */
  batch(ops: readonly BatchOp[]): Promise<void>;
  /** Entries in key order (byte-wise), within the range. */
  entries(ns: Namespace, range?: RangeOptions): AsyncIterable<[Uint8Array, Uint8Array]>;
  /** Keys in order, within the range. */
  keys(ns: Namespace, range?: RangeOptions): AsyncIterable<Uint8Array>;
}
