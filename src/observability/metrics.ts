import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** What a store with an object cache reports (SublevelStore.readCacheStats). */
export interface ObjectCacheStats {
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

  readonly aaeVerificationAge = new Gauge({
    name: 'ringkv_antientropy_oldest_verification_age_seconds',
    help: 'Age of the oldest successful verification among the partitions this node replicates',
    registers: [this.registry],
  });

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

  /** Figures of the store's object cache, read at scrape time (see {@link observeObjectCache}). */
  #objectCache: (() => ObjectCacheStats | undefined) | undefined;

  readonly objectCacheHits = new Counter({
    name: 'ringkv_object_cache_hits_total',
    help: 'Object reads served from the in-memory object cache',
    registers: [this.registry],
    collect: () => this.#collectObjectCache(),
  });

  readonly objectCacheMisses = new Counter({
    name: 'ringkv_object_cache_misses_total',
    help: 'Object reads that went to LevelDB (not in the object cache)',
    registers: [this.registry],
    collect: () => this.#collectObjectCache(),
  });

  readonly objectCacheBytes = new Gauge({
    name: 'ringkv_object_cache_bytes',
    help: 'Bytes the object cache holds (keys, values and per-entry overhead)',
    registers: [this.registry],
    collect: () => this.#collectObjectCache(),
  });

  readonly objectCacheEntries = new Gauge({
    name: 'ringkv_object_cache_entries',
    help: 'Objects the object cache holds',
    registers: [this.registry],
    collect: () => this.#collectObjectCache(),
  });

  constructor(nodeId: string) {
    this.registry.setDefaultLabels({ node: nodeId });
  }

  /** Export the object cache's figures, read from `stats` whenever the metrics are scraped. */
  observeObjectCache(stats: () => ObjectCacheStats | undefined): void {
    this.#objectCache = stats;
  }

  #collectObjectCache(): void {
    const stats = this.#objectCache?.();
    if (stats === undefined) return;
    // The store counts; the counters here mirror its totals at each scrape. Every one of the
    // four metrics collects all four, so each is current whichever is read.
    this.objectCacheHits.reset();
    this.objectCacheHits.inc(stats.hits);
    this.objectCacheMisses.reset();
    this.objectCacheMisses.inc(stats.misses);
    this.objectCacheBytes.set(stats.bytes);
    this.objectCacheEntries.set(stats.entries);
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
