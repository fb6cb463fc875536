/**
 * The ring: the keyspace is cut into PARTITION_COUNT equal partitions by the top bits of
 * murmur3(key); each partition's preference list is computed deterministically from the
 * member set alone (weighted rendezvous hashing with zone spreading), so every node derives
 * the same ring with no leader and no claimant.
 */

/** What the ring needs to know about a member. */
export interface RingMember {
  readonly id: string;
  readonly zone: string;
  /** Relative capacity (> 0); share of the ring is proportional to it. */
  readonly weight: number;
}

export interface Ring {
  /** Number of partitions (fixed, a power of two). */
  readonly partitions: number;
  /** Replication factor the ring was built for. */
  readonly n: number;
  /** Members the ring was built from, sorted by id. */
  readonly members: readonly RingMember[];
  /** Hex checksum of the assignment; equal on two nodes iff they route identically. */
  readonly checksum: string;
  /** The partition a key (UTF-8) belongs to. */
  partitionOf(key: string): number;
  /** The first min(n, members) node ids for a partition, in preference order. */
  preferenceList(partition: number): readonly string[];
  /**
   * Every member id in preference order for the partition (the preference list first, then
   * the fallbacks in the order a sloppy quorum should try them).
   */
  fullOrder(partition: number): readonly string[];
  /** Partitions for which `nodeId` is in the preference list (ascending). */
  partitionsOf(nodeId: string): readonly number[];
  /** Fraction of partitions for which the node is the first (primary) replica. */
  primaryShare(nodeId: string): number;
  /** Fraction of all replica slots (partitions × n) that the node holds. */
  replicaShare(nodeId: string): number;
}
