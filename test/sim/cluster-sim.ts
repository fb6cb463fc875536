/**
 * Deterministic in-process clusters of full nodes (membership, replica, coordinator, hints)
 * on one ManualTime and MemoryNetwork, each node with its own MemoryStore that survives its
 * crashes, as a disk would. Built on the generic `Sim` of harness.ts.
 */

import { RingkvError } from '../../src/errors.js';
import { type CoreInit, NodeCore } from '../../src/node-core.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { MemoryStore } from '../../src/storage/index.js';
import type { VersionedObject, VersionVector } from '../../src/version/index.js';
import { encodeContext, mint } from '../../src/version/index.js';
import { Sim } from './harness.js';

export interface SimClusterOptions {
  readonly seed: number;
  readonly nodes: number;
  readonly zones?: readonly string[];
  readonly n?: number;
  readonly r?: number;
  readonly w?: number;
  readonly hintedHandoff?: boolean;
  readonly gossipIntervalMs?: number;
  readonly antiEntropyIntervalMs?: number;
  /** Fewer partitions keep simulations fast; default 8 bits. */
  readonly partitionBits?: number;
  /** Read repairs in flight per node at most; default the coordinator's. */
  readonly maxReadRepairs?: number;
}

export class SimClusterNode {
  core: NodeCore | undefined;
  readonly store = new MemoryStore();
  metrics: Metrics;

  constructor(
    readonly id: string,
    readonly address: string,
    readonly init: CoreInit,
  ) {
    this.metrics = new Metrics(id);
  }

  get up(): boolean {
    return this.core !== undefined;
  }

  get c(): NodeCore {
    if (!this.core) throw new Error(`${this.id} is down`);
    return this.core;
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export class SimCluster {
  readonly sim: Sim;
  readonly nodes: SimClusterNode[] = [];

  constructor(readonly opts: SimClusterOptions) {
    this.sim = new Sim(opts.seed, 50);
    const zones = opts.zones ?? ['a', 'b', 'c'];
    const addresses = Array.from({ length: opts.nodes }, (_, i) => `10.0.0.${i + 1}:8081`);
    for (let i = 0; i < opts.nodes; i++) {
      const id = `n${i + 1}`;
      this.nodes.push(
        new SimClusterNode(id, addresses[i] as string, {
          id,
          address: addresses[i] as string,
          zone: zones[i % zones.length] as string,
          weight: 1,
          seeds: addresses.slice(0, 1),
          n: opts.n ?? 3,
          r: opts.r ?? 2,
          w: opts.w ?? 2,
          hintedHandoff: opts.hintedHandoff ?? true,
          gossipIntervalMs: opts.gossipIntervalMs ?? 200,
          antiEntropyIntervalMs: opts.antiEntropyIntervalMs ?? 3_600_000,
          partitionBits: opts.partitionBits ?? 8,
          ...(opts.maxReadRepairs === undefined ? {} : { maxReadRepairs: opts.maxReadRepairs }),
          hintDelivery: { intervalMs: 200 },
          transfers: { intervalMs: 200, settleMs: 600, batchSize: 64 },
        }),
      );
    }
  }

  get time() {
    return this.sim.time;
  }

  node(id: string): SimClusterNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  async startNode(n: SimClusterNode): Promise<void> {
    await n.store.open();
    const core = new NodeCore(
      {
        store: n.store,
        transport: this.sim.net.transport(n.address),
        clock: this.sim.time,
        timers: this.sim.time,
        random: this.sim.fork(),
        log: silentLogger(),
        metrics: n.metrics,
      },
      n.init,
    );
    await core.build();
    this.sim.net.register(n.address, core.handlers);
    await core.start();
    n.core = core;
  }

  /** Start the first `count` nodes (default all) and wait until they agree on one ring. */
  async start(count = this.nodes.length): Promise<void> {
    for (const n of this.nodes.slice(0, count)) await this.startNode(n);
    await this.waitConverged();
  }

  /** Crash a node: its process is gone (timers stopped, unreachable), its store survives. */
  async crash(id: string): Promise<void> {
    const n = this.node(id);
    if (!n.core) return;
    this.sim.net.unregister(n.address);
    // Stopping waits for in-flight background passes, which need simulated time to finish.
    await this.settle(n.core.stop());
    n.core = undefined;
  }

  async restart(id: string): Promise<void> {
    const n = this.node(id);
    await this.crash(id);
    await this.startNode(n);
  }

  /** Advance simulated time by one step and let real I/O callbacks (the memory store's) run. */
  async step(ms = 50): Promise<void> {
    await this.sim.time.advance(ms);
    await new Promise<void>((r) => setImmediate(r));
  }

  async runUntil(what: string, pred: () => boolean | Promise<boolean>, maxMs = 30_000): Promise<number> {
    const start = this.sim.time.now();
    for (;;) {
      if (await pred()) return this.sim.time.now() - start;
      if (this.sim.time.now() - start > maxMs) throw new Error(`seed ${this.opts.seed}: ${what} not reached within ${maxMs} simulated ms`);
      await this.step();
    }
  }

  /** Run a promise to completion while advancing simulated time. */
  async settle<T>(p: Promise<T>, maxMs = 60_000): Promise<T> {
    let done = false;
    let value: T | undefined;
    let error: unknown;
    let failed = false;
    p.then(
      (v) => {
        done = true;
        value = v;
      },
      (e: unknown) => {
        done = true;
        failed = true;
        error = e;
      },
    );
    const start = this.sim.time.now();
    while (!done) {
      if (this.sim.time.now() - start > maxMs) throw new Error(`seed ${this.opts.seed}: operation did not settle within ${maxMs} ms`);
      await this.step(10);
    }
    if (failed) throw error;
    return value as T;
  }

  async waitConverged(maxMs = 30_000): Promise<void> {
    const live = () => this.nodes.filter((n) => n.up);
    await this.runUntil(
      'membership convergence',
      () => {
        const nodes = live();
        const sums = new Set(nodes.map((n) => n.c.membership.ring().checksum));
        if (sums.size !== 1) return false;
        return nodes.every(
          (a) =>
            nodes.every((b) => a.c.membership.isUp(b.id)) &&
            a.c.membership.ring().members.length === nodes.length &&
            a.c.membership.pendingRing() === a.c.membership.ring(),
        );
      },
      maxMs,
    );
  }

  // ------------------------------------------------------------ client-ish operations

  async put(via: string, key: string, value: string, opts: { context?: string; w?: number; timeoutMs?: number } = {}): Promise<VersionVector> {
    const c = this.node(via).c;
    return this.settle(
      c.coordinator.put(key, { value: enc.encode(value), contentType: 'text/plain', deleted: false }, opts.context ?? '', {
        w: opts.w ?? this.opts.w ?? 2,
        timeoutMs: opts.timeoutMs ?? 1000,
      }),
    );
  }

  async del(via: string, key: string, opts: { context?: string; w?: number } = {}): Promise<VersionVector> {
    const c = this.node(via).c;
    return this.settle(
      c.coordinator.put(key, { value: new Uint8Array(0), contentType: 'text/plain', deleted: true }, opts.context ?? '', {
        w: opts.w ?? this.opts.w ?? 2,
        timeoutMs: 1000,
      }),
    );
  }

  async get(via: string, key: string, opts: { r?: number } = {}): Promise<{ values: string[]; context: string | undefined; object: VersionedObject | undefined }> {
    const c = this.node(via).c;
    const { object } = await this.settle(c.coordinator.get(key, { r: opts.r ?? this.opts.r ?? 2, timeoutMs: 1000 }));
    return {
      object,
      values: object ? object.siblings.filter((s) => !s.deleted).map((s) => dec.decode(s.value)).sort() : [],
      context: object ? encodeContext(object.clock) : undefined,
    };
  }

  /** What a node holds locally for a key (no quorum). */
  async local(id: string, key: string): Promise<string[]> {
    const c = this.node(id).c;
    const obj = await c.replica.read(c.membership.ring().partitionOf(key), key);
    return obj ? obj.siblings.filter((s) => !s.deleted).map((s) => dec.decode(s.value)).sort() : [];
  }

  async stop(): Promise<void> {
    for (const n of this.nodes) {
      if (n.core) await this.crash(n.id);
      await n.store.close();
    }
  }
}

/**
 * Runs `body` on a fresh simulated cluster whose first `started` nodes are started, and stops
 * it whatever happens; a failure names the seed, so it can be replayed.
 */
export async function withSimCluster(
  opts: ConstructorParameters<typeof SimCluster>[0],
  started: number,
  body: (c: SimCluster) => Promise<void>,
): Promise<void> {
  const c = new SimCluster(opts);
  try {
    await c.start(started);
    await body(c);
  } catch (err) {
    throw new Error(`seed ${opts.seed}: ${err instanceof Error ? err.stack : String(err)}`);
  } finally {
    await c.stop();
  }
}

/**
 * Keys (of `keys`) that some owner in `via`'s current ring does not hold with the value
 * `v-<key>` (what the handoff and transfer simulations write).
 */
export async function missingCopies(c: SimCluster, keys: readonly string[], via: string): Promise<string[]> {
  const ring = c.node(via).c.membership.ring();
  const missing: string[] = [];
  for (const k of keys)
    for (const owner of ring.preferenceList(ring.partitionOf(k)))
      if ((await c.local(owner, k)).join() !== `v-${k}`) missing.push(`${k}@${owner}`);
  return missing;
}

/**
 * Gives `peer` a newer version of `key` than the others hold (a write over `ctx` by another
 * actor), and makes its whole reads fail while its version reads still answer: a replica
 * whose values a read needs and cannot get.
 */
export async function newerButUnreadable(c: SimCluster, peer: string, key: string, ctx: VersionVector): Promise<void> {
  const node = c.node(peer);
  const partition = node.c.membership.ring().partitionOf(key);
  const held = (await node.c.replica.read(partition, key))!;
  const newer = mint(held, ctx, { value: new TextEncoder().encode('new'), contentType: 'text/plain', deleted: false }, 'n9.x', 5).object;
  await node.c.replica.apply(partition, key, newer);
  const handlers = new Map(node.c.handlers);
  handlers.set('replica-read', async () => {
    throw new RingkvError('UNAVAILABLE', 'disk unreadable');
  });
  c.sim.net.register(node.address, handlers);
}

/**
 * Runs `body` on five started nodes in five zones with a key that n1 does not replicate (so
 * n1 forwards its writes) and that key's owners; a failure names the seed.
 */
export async function withForwardedKey(seed: number, body: (c: SimCluster, key: string, owners: string[]) => Promise<void>): Promise<void> {
  await withSimCluster({ seed, nodes: 5, zones: ['a', 'b', 'c', 'd', 'e'] }, 5, async (c) => {
    const ring = c.node('n1').c.membership.ring();
    let key = '';
    for (let i = 0; key === ''; i++) if (!ring.preferenceList(ring.partitionOf(`k${i}`)).includes('n1')) key = `k${i}`;
    await body(c, key, [...ring.preferenceList(ring.partitionOf(key))]);
  });
}
