import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** What an in-memory cache reports (SublevelStore.readCacheStats, LocalReplica.versionCacheStats). */
export interface CacheStats {
  readonly entries: number;
  readonly bytes: number;
  readonly hits: number;
  readonly misses: number;
}

/** Latency buckets in seconds, fine enough at the tail to read p99 and p999. */
const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75,
  1, 2, 5, 10,
];

/**
 * Every metric a node exports, on the node's own Registry (never the global one), so that
 * several nodes can live in one test process. All names start with `ringkv_`.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: 'ringkv_http_requests_total',
    help: 'Public API requests by operation and status code',
    labelNames: ['op', 'status'] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: 'ringkv_http_request_duration_seconds',
    help: 'Public API request latency by operation',
    labelNames: ['op'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly quorumFailures = new Counter({
    name: 'ringkv_quorum_failures_total',
    help: 'Requests that failed because fewer than r/w replicas answered in time',
    labelNames: ['op'] as const,
    registers: [this.registry],
  });

  readonly replicaRequests = new Counter({
    name: 'ringkv_replica_requests_total',
    help: 'Node-to-node replica calls made by this coordinator, by route and outcome',
    labelNames: ['route', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly replicaBatchItems = new Histogram({
    name: 'ringkv_replica_batch_items',
    help: 'Replica reads and writes per node-to-node batch this node sent (one request each, retried whole)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });

  readonly internalBytes = new Counter({
    name: 'ringkv_internal_bytes_total',
    help: 'Bytes of the node-to-node calls this node made, by route: request bodies sent, reply bodies received',
    labelNames: ['route', 'direction'] as const,
    registers: [this.registry],
  });

  readonly readSiblings = new Histogram({
    name: 'ringkv_read_siblings',
    help: 'Siblings in the answers to reads that returned two or more (answers with one value are not counted)',
    buckets: [2, 3, 5, 10, 25, 50, 100, 250, 1000],
    registers: [this.registry],
  });

  readonly members = new Gauge({
    name: 'ringkv_members',
    help: 'Cluster members by status, as this node sees them',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });

  readonly gossipRounds = new Counter({
    name: 'ringkv_gossip_rounds_total',
    help: 'Gossip exchanges initiated by this node, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly breakerState = new Gauge({
    name: 'ringkv_circuit_breaker_state',
    help: 'Circuit breaker per peer: 0 closed, 1 half-open, 2 open',
    labelNames: ['peer'] as const,
    registers: [this.registry],
  });

  readonly hintsPending = new Gauge({
    name: 'ringkv_hints_pending',
    help: 'Hints parked on this node, waiting for their owner',
    registers: [this.registry],
  });

  readonly hintsDelivered = new Counter({
    name: 'ringkv_hints_delivered_total',
    help: 'Hints delivered to their owner and acknowledged',
    registers: [this.registry],
  });

  readonly readRepairs = new Counter({
    name: 'ringkv_read_repairs_total',
    help: 'Replicas pushed the merged version after a read found them stale',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly speculativeReads = new Counter({
    name: 'ringkv_speculative_reads_total',
    help: 'Replica reads sent because the replicas first asked had not answered within the recent p99',
    registers: [this.registry],
  });

  readonly idleCollections = new Counter({
    name: 'ringkv_idle_collections_total',
    help: 'Full garbage collections run because the node went quiet holding a burst of garbage',
    registers: [this.registry],
  });

  readonly aaeExchanges = new Counter({
    name: 'ringkv_antientropy_exchanges_total',
    help: 'Anti-entropy exchanges with a co-replica, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly aaeKeysRepaired = new Counter({
    name: 'ringkv_antientropy_keys_repaired_total',
    help: 'Keys written to a replica because of an anti-entropy exchange',
    registers: [this.registry],
  });

  readonly aaeLeafResets = new Counter({
    name: 'ringkv_antientropy_leaf_resets_total',
    help: 'Hash-tree leaves reset because two scans of the store in a row disagreed with them (a copy damaged on disk, or a tree that drifted)',
    registers: [this.registry],
  });

  readonly aaeSweptPartitions = new Counter({
    name: 'ringkv_antientropy_swept_partitions_total',
    help: 'Partitions read back from the store and checked against their hash-tree leaves by the verify sweep',
    registers: [this.registry],
  });

  readonly aaeVerificationAge = new Gauge({
    name: 'ringkv_antientropy_oldest_verification_age_seconds',
    help: 'Age of the oldest successful verification among the partitions this node replicates',
    registers: [this.registry],
    // Read at each scrape (see observeVerificationAge): a value set only when an anti-entropy
    // round ends stands still between rounds, and for as long as a round takes.
    collect: () => {
      const age = this.#verificationAge?.();
      if (age !== undefined) this.aaeVerificationAge.set(age);
    },
  });
  #verificationAge: (() => number) | undefined;

  /** Export anti-entropy's oldest verification age (AntiEntropy.verificationAge), read at each scrape. */
  observeVerificationAge(age: () => number): void {
    this.#verificationAge = age;
  }

  readonly transfersPending = new Gauge({
    name: 'ringkv_transfers_pending',
    help: 'Partitions this node still has to send or receive',
    registers: [this.registry],
  });

  readonly transferKeys = new Counter({
    name: 'ringkv_transfer_keys_received_total',
    help: 'Objects this node pulled from current owners during ownership transfers',
    registers: [this.registry],
  });

  readonly transferBytes = new Counter({
    name: 'ringkv_transfer_bytes_received_total',
    help: 'Encoded object bytes this node pulled during ownership transfers',
    registers: [this.registry],
  });

  /** The store's object cache (stored objects of recently read and written keys). */
  readonly objectCache = new CacheMetrics(this.registry, 'object_cache', {
    hits: 'Object reads served from the in-memory object cache',
    misses: 'Object reads that went to LevelDB (not in the object cache)',
    bytes: 'Bytes the object cache holds (keys, values and per-entry overhead)',
    entries: 'Objects the object cache holds',
  });

  /** The replica's version cache (stored versions, without values, of recently written keys). */
  readonly versionCache = new CacheMetrics(this.registry, 'version_cache', {
    hits: 'Replica writes and version reads that found the stored version in the version cache (no store read)',
    misses: 'Replica writes and version reads that did not find the stored version in the version cache',
    bytes: 'Bytes the version cache is charged for (keys, versions and per-entry overhead)',
    entries: 'Versions the version cache holds',
  });

  /** The replica's key filter (keys never held here are not read from the store; see KeyFilter). */
  readonly keyFilter = new CacheMetrics(this.registry, 'key_filter', {
    hits: 'Replica reads of a key never held here that the key filter answered without a store read',
    misses: 'Replica reads the key filter could not rule out (the key is held, or a false positive)',
    bytes: 'Bytes of the key filter\'s bit tables',
    entries: 'Keys added to the key filter',
  });

  /** The replica's decoded-object cache (objects of recently read keys, decoded; see DecodedCache). */
  readonly decodedCache = new CacheMetrics(this.registry, 'decoded_cache', {
    hits: 'Local object reads answered with an object decoded earlier from the same stored bytes',
    misses: 'Local object reads of cacheable size that had to decode the stored bytes',
    bytes: 'Bytes the decoded-object cache is charged for (keys, stored bytes and decoded structure)',
    entries: 'Decoded objects the decoded-object cache holds',
  });

  constructor(nodeId: string) {
    this.registry.setDefaultLabels({ node: nodeId });
  }

  /**
   * Also export the process's own figures (prom-client's defaults, prefixed `ringkv_`):
   * resident memory, V8 heap by space, event-loop delay percentiles (p50/p90/p99), GC time,
   * open handles. Once per process: they describe the process, not a node, so the CLI calls
   * this and tests that run several nodes in one process do not.
   */
  collectProcessMetrics(): void {
    collectDefaultMetrics({ register: this.registry, prefix: 'ringkv_' });
  }
}

/**
 * The four figures of one cache (`ringkv_<name>_hits_total`, `_misses_total`, `_bytes`,
 * `_entries`), read from the cache's own counters whenever the metrics are scraped.
 */
class CacheMetrics {
  #stats: (() => CacheStats | undefined) | undefined;
  readonly hits: Counter;
  readonly misses: Counter;
  readonly bytes: Gauge;
  readonly entries: Gauge;

  constructor(registry: Registry, name: string, help: { hits: string; misses: string; bytes: string; entries: string }) {
    // Every one of the four collects all four, so each is current whichever is read.
    const collect = (): void => this.#collect();
    const registers = [registry];
    this.hits = new Counter({ name: `ringkv_${name}_hits_total`, help: help.hits, registers, collect });
    this.misses = new Counter({ name: `ringkv_${name}_misses_total`, help: help.misses, registers, collect });
    this.bytes = new Gauge({ name: `ringkv_${name}_bytes`, help: help.bytes, registers, collect });
    this.entries = new Gauge({ name: `ringkv_${name}_entries`, help: help.entries, registers, collect });
  }

  /** Export the cache's figures, read from `stats` at each scrape. */
  observe(stats: () => CacheStats | undefined): void {
    this.#stats = stats;
  }

  #collect(): void {
    const stats = this.#stats?.();
    if (stats === undefined) return;
    // The cache counts; the counters here mirror its totals at each scrape.
    this.hits.reset();
    this.hits.inc(stats.hits);
    this.misses.reset();
    this.misses.inc(stats.misses);
    this.bytes.set(stats.bytes);
    this.entries.set(stats.entries);
  }
}
