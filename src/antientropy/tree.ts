/**
 * The anti-entropy hash tree (pure). Tictac-style: every node keeps one 32-bit leaf per ring
 * partition, and a leaf is the XOR of `keyVersionHash(key, versionDigest(object))` over the
 * keys stored in that partition. XOR makes the tree order-independent and lets a write update
 * its leaf from the old and new digest alone (`leaf ^= h(k, before) ^ h(k, after)`), with no
 * dirty segments and no rescans (Riak's legacy AAE rescanned on every update and halved
 * throughput; see research/riak-kv.md §4).
 *
 * Two nodes compare only the partitions they both replicate (a set S from the ring), so the
 * upper levels are computed on demand for S: bucket b = XOR of the leaves of S in b, root =
 * XOR of the buckets. With 65536 partitions there are 256 buckets of 256 leaves; rings with
 * fewer partitions have one bucket per group of `partitions / 256` leaves (at least one leaf).
 */

/** Buckets a summary has (at most; rings with fewer partitions have one per partition). */
export const MAX_BUCKETS = 256;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** murmur3's 32-bit finaliser: a bijection on u32 with full avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The 32-bit contribution of one key at one version to its partition's leaf.
 *
 * The key is hashed in place over its UTF-16 code units (FNV-1a; each step is a bijection of
 * the state, no encoding or allocation: a rebuild calls this once per stored key), then
 * finalised. For a fixed key the result is a bijection of the digest, so two different
 * versions of one key always change the leaf; across keys, XOR cancellation has the chance of
 * a random 32-bit coincidence. Unsigned, 0..2^32-1.
 */
export function keyVersionHash(key: string, digest: number): number {
  let h = FNV_OFFSET ^ key.length;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), FNV_PRIME);
  // fmix(key) XOR digest, mixed again: keys whose hashes differ by the same XOR as their
  // digests would otherwise cancel pairwise.
  return fmix32(fmix32(h) ^ Math.imul(digest | 0, 0x9e3779b1) ^ 0x5bd1e995);
}

/** Number of buckets for a ring of `partitions` leaves. */
export function bucketCount(partitions: number): number {
  return Math.min(MAX_BUCKETS, partitions);
}

/** A node's leaves: one u32 per partition (65536 partitions: 256 KiB). */
export class HashTree {
  /** The leaves, indexed by partition. Mutated only through this class. */
  readonly leaves: Uint32Array;
  /** log2(partitions per bucket). */
  readonly bucketShift: number;

  constructor(readonly partitions: number) {
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > 1 << 20 || (partitions & (partitions - 1)) !== 0) {
      throw new RangeError(`hash tree: partitions must be a power of two in 1..2^20, got ${partitions}`);
    }
    this.leaves = new Uint32Array(partitions);
    this.bucketShift = Math.log2(partitions / bucketCount(partitions));
  }

  /** Buckets of this tree. */
  get buckets(): number {
    return bucketCount(this.partitions);
  }

  /** The bucket a partition belongs to. */
  bucketOf(partition: number): number {
    return partition >>> this.bucketShift;
  }

  /** The partitions of a bucket: `[first, end)`. */
  bucketRange(bucket: number): { first: number; end: number } {
    const first = bucket << this.bucketShift;
    return { first, end: first + (1 << this.bucketShift) };
  }

  leaf(partition: number): number {
    return this.leaves[partition] ?? 0;
  }

  /** Overwrite one leaf (rebuild of one partition from a scan). */
  setLeaf(partition: number, value: number): void {
    this.check(partition);
    this.leaves[partition] = value >>> 0;
  }

  /** XOR one key version into its leaf; applying it twice removes it again. */
  toggle(partition: number, key: string, digest: number): void {
    this.check(partition);
    this.leaves[partition] = (this.leaves[partition]! ^ keyVersionHash(key, digest)) >>> 0;
  }

  /** One key changed from `before` to `after` (digests; undefined = not stored). */
  update(partition: number, key: string, before: number | undefined, after: number | undefined): void {
    if (before === after) return;
    if (before !== undefined) this.toggle(partition, key, before);
    if (after !== undefined) this.toggle(partition, key, after);
  }

  /** Forget everything (before a rebuild). */
  clear(): void {
    this.leaves.fill(0);
  }

  private check(partition: number): void {
    if (!Number.isInteger(partition) || partition < 0 || partition >= this.partitions) {
      throw new RangeError(`hash tree: partition ${partition} out of range 0..${this.partitions - 1}`);
    }
  }
}

/** The XOR of keyVersionHash over a partition's (key, digest) entries: what its leaf must be. */
export function leafOf(entries: Iterable<readonly [string, number]>): number {
  let h = 0;
  for (const [key, digest] of entries) h ^= keyVersionHash(key, digest);
  return h >>> 0;
}

/** A tree built from scratch from (partition, key, digest) entries (tests, rebuild reference). */
export function treeOf(partitions: number, entries: Iterable<readonly [number, string, number]>): HashTree {
  const tree = new HashTree(partitions);
  for (const [p, key, digest] of entries) tree.toggle(p, key, digest);
  return tree;
}

/**
 * The bucket hashes of a summary over `partitions` (the set two nodes share): bucket b is
 * the XOR of the leaves of those partitions that fall in b.
 */
export function bucketHashes(tree: HashTree, partitions: Iterable<number>): Uint32Array {
  const out = new Uint32Array(tree.buckets);
  const leaves = tree.leaves;
  const shift = tree.bucketShift;
  for (const p of partitions) {
    const b = p >>> shift;
    out[b] = (out[b]! ^ leaves[p]!) >>> 0;
  }
  return out;
}

/** The root of a summary: the XOR of its bucket hashes. */
export function root(buckets: Uint32Array): number {
  let h = 0;
  for (let i = 0; i < buckets.length; i++) h ^= buckets[i]!;
  return h >>> 0;
}

/** Indexes at which two hash arrays of equal length differ, ascending. */
function diffIndexes(a: Uint32Array, b: Uint32Array): number[] {
  if (a.length !== b.length) throw new RangeError(`hash arrays differ in length: ${a.length} vs ${b.length}`);
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

/** Buckets whose hashes differ, ascending. */
export function diffBuckets(a: Uint32Array, b: Uint32Array): number[] {
  return diffIndexes(a, b);
}

/** The members of sorted `partitions` that fall in the given buckets (ascending). */
export function partitionsInBuckets(tree: HashTree, partitions: readonly number[], buckets: readonly number[]): number[] {
  const wanted = new Uint8Array(tree.buckets);
  for (const b of buckets) wanted[b] = 1;
  const shift = tree.bucketShift;
  return partitions.filter((p) => wanted[p >>> shift] === 1);
}

/** The leaves of the given partitions, in the order given. */
export function leafHashes(tree: HashTree, partitions: readonly number[]): Uint32Array {
  const out = new Uint32Array(partitions.length);
  for (let i = 0; i < partitions.length; i++) out[i] = tree.leaf(partitions[i]!);
  return out;
}

/** The partitions whose leaves differ; `a` and `b` are leaf hashes for `partitions`, in order. */
export function diffLeaves(partitions: readonly number[], a: Uint32Array, b: Uint32Array): number[] {
  if (a.length !== partitions.length) throw new RangeError('leaf hashes do not match the partition list');
  return diffIndexes(a, b).map((i) => partitions[i]!);
}

/** Key -> version digest, for one or more partitions. */
export type KeyDigests = ReadonlyMap<string, number>;

/** Keys whose digest differs or that only one side holds (in `a`'s order, then `b`'s). */
export function diffKeys(a: KeyDigests, b: KeyDigests): string[] {
  const out: string[] = [];
  for (const [key, d] of a) if (b.get(key) !== d) out.push(key);
  for (const key of b.keys()) if (!a.has(key)) out.push(key);
  return out;
}
