/**
 * The transport- and storage-agnostic heart of a node: membership, the local replica, the
 * coordinator, hint delivery and anti-entropy, wired together. RingkvNode (node.ts) adds
 * LevelDB, HTTP and the process edge; simulations build NodeCores on a MemoryNetwork.
 */
import { AntiEntropy } from './antientropy/index.js';
import { Coordinator } from './coordinator/coordinator.js';
import { RingkvError } from './errors.js';
import { HintDelivery, type HintDeliveryInit } from './handoff/hint-delivery.js';
import { type TransferInit, Transfers } from './handoff/transfer.js';
import { Membership } from './membership/index.js';
import type { MemberRecord } from './membership/types.js';
import type { Logger } from './observability/logger.js';
import type { Metrics } from './observability/metrics.js';
import { LocalReplica } from './replica/local-replica.js';
import type { Clock } from './runtime/clock.js';
import type { Random } from './runtime/random.js';
import type { Timers } from './runtime/timers.js';
import { type Store, utf8 } from './storage/index.js';
import type { InternalHandler, Transport } from './transport/transport.js';

export interface CoreComponents {
  readonly store: Store;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly random: Random;
  readonly log: Logger;
  readonly metrics: Metrics;
}

export interface CoreInit {
  readonly id: string;
  /** The address peers reach this node at (`host:port`). */
  readonly address: string;
  readonly zone: string;
  readonly weight: number;
  readonly seeds: readonly string[];
  readonly n: number;
  readonly r: number;
  readonly w: number;
  readonly hintedHandoff: boolean;
  readonly gossipIntervalMs: number;
  readonly antiEntropyIntervalMs: number;
  /** How long a tombstone must be held by every replica before it may be reaped. */
  readonly tombstoneGraceMs?: number;
  /** Read repairs in flight per node at most (see CoordinatorInit); default the coordinator's. */
  readonly maxReadRepairs?: number;
  /** Anti-entropy's verify sweep period (see AntiEntropyInit.verifyPeriodMs); default there. */
  readonly antiEntropyVerifyPeriodMs?: number;
  /** Bytes for the replica's version cache (0 = off); default LocalReplica's. */
  readonly versionCacheBytes?: number;
  /** Bytes for the replica's decoded-object cache (0 = off); default LocalReplica's. */
  readonly decodedCacheBytes?: number;
  /** Ring partition bits (simulations use fewer); default the ring's own. */
  readonly partitionBits?: number;
  readonly hintDelivery?: Partial<HintDeliveryInit>;
  readonly transfers?: Partial<TransferInit>;
  /** Called once this node has left the cluster (after POST /v1/cluster/leave). */
  readonly onLeft?: () => void;
}

const META_EPOCH = utf8.encode('actor-epoch');
const META_MEMBERS = utf8.encode('members');

/** Read this data directory's actor epoch, creating it on first start (see LocalReplica.coordinate). */
async function actorEpoch(store: Store, random: Random): Promise<string> {
  const existing = await store.get('meta', META_EPOCH);
  if (existing) return utf8.decode(existing);
  let epoch = '';
  for (const b of random.bytes(5)) epoch += b.toString(36).padStart(2, '0');
  await store.put('meta', META_EPOCH, utf8.encode(epoch));
  return epoch;
}

export class NodeCore {
  private parts:
    | {
        membership: Membership;
        replica: LocalReplica;
        coordinator: Coordinator;
        hints: HintDelivery;
        antiEntropy: AntiEntropy;
        transfers: Transfers;
        handlers: Map<string, InternalHandler>;
        actor: string;
      }
    | undefined;
  private started = false;

  constructor(
    private readonly c: CoreComponents,
    readonly init: CoreInit,
  ) {}

  /**
   * Build every part (the store must be open). Separate from start() so the HTTP server can
   * be ready to serve internal routes before gossip begins.
   */
  async build(): Promise<void> {
    if (this.parts) return;
    const { store, transport, clock, timers, random, log, metrics } = this.c;
    const init = this.init;
    const actor = `${init.id}.${await actorEpoch(store, random)}`;

    const saved = await store.get('meta', META_MEMBERS);
    const initialRecords = saved ? (JSON.parse(utf8.decode(saved)) as MemberRecord[]) : undefined;
    // Membership asks transfers whether a joining node may turn active; built just below.
    let transfers: Transfers | undefined;
    const membership = new Membership(
      { transport, clock, timers, random, log },
      {
        self: { id: init.id, address: init.address, zone: init.zone, weight: init.weight },
        seeds: init.seeds,
        n: init.n,
        gossipIntervalMs: init.gossipIntervalMs,
        // A short gossip interval must not make a one-second event-loop stall look like a crash.
        acceptablePauseMs: Math.max(init.gossipIntervalMs, 1000),
        ...(init.partitionBits === undefined ? {} : { partitionBits: init.partitionBits }),
        ...(initialRecords === undefined ? {} : { initialRecords }),
        persist: async (records) => store.put('meta', META_MEMBERS, utf8.encode(JSON.stringify(records))),
        onGossipRound: (ok) => metrics.gossipRounds.inc({ outcome: ok ? 'ok' : 'failed' }),
        readyToActivate: () => transfers?.complete() ?? false,
        onRejoin: () => transfers?.restartJoin(),
        onLeftWhileDown: () => init.onLeft?.(),
      },
    );

    const replica = new LocalReplica(
      { store, random, log },
      {
        actor,
        ...(init.versionCacheBytes === undefined ? {} : { versionCacheBytes: init.versionCacheBytes }),
        ...(init.decodedCacheBytes === undefined ? {} : { decodedCacheBytes: init.decodedCacheBytes }),
      },
    );
    await replica.start();
    metrics.versionCache.observe(() => replica.versionCacheStats);
    metrics.decodedCache.observe(() => replica.decodedCacheStats);
    metrics.keyFilter.observe(() => replica.keyFilterStats);

    const coordinator = new Coordinator(
      { membership, transport, replica, clock, timers, log, metrics },
      {
        n: init.n,
        r: init.r,
        w: init.w,
        hintedHandoff: init.hintedHandoff,
        ...(init.maxReadRepairs === undefined ? {} : { maxReadRepairs: init.maxReadRepairs }),
      },
    );
    const hints = new HintDelivery({ store, replica, membership, transport, timers, log, metrics }, init.hintDelivery);

    transfers = new Transfers({ store, replica, membership, transport, timers, clock, log, metrics }, init.transfers);
    transfers.onLeft = () => init.onLeft?.();

    const antiEntropy = new AntiEntropy(
      { store, replica, membership, transport, clock, timers, random, log, metrics },
      {
        intervalMs: init.antiEntropyIntervalMs,
        ...(init.antiEntropyVerifyPeriodMs === undefined ? {} : { verifyPeriodMs: init.antiEntropyVerifyPeriodMs }),
        // Reaper passes scale with the grace (a short grace is useless with 10-minute passes).
        ...(init.tombstoneGraceMs === undefined
          ? {}
          : {
              reaper: {
                graceMs: init.tombstoneGraceMs,
                intervalMs: Math.max(1000, Math.min(600_000, Math.floor(init.tombstoneGraceMs / 2))),
              },
            }),
      },
    );

    const handlers = new Map<string, InternalHandler>([
      ...membership.handlers(),
      ...coordinator.handlers(),
      ...antiEntropy.handlers(),
      ...transfers.handlers(),
      ...hints.handlers(),
    ]);
    membership.onChange(() => {
      this.updateMemberMetrics();
      hints.kick();
    });
    this.parts = { membership, replica, coordinator, hints, antiEntropy, transfers, handlers, actor };
  }

  private get p(): NonNullable<NodeCore['parts']> {
    if (!this.parts) throw new RingkvError('UNAVAILABLE', 'node is starting');
    return this.parts;
  }

  get membership(): Membership {
    return this.p.membership;
  }
  get replica(): LocalReplica {
    return this.p.replica;
  }
  get coordinator(): Coordinator {
    return this.p.coordinator;
  }
  get hints(): HintDelivery {
    return this.p.hints;
  }
  get antiEntropy(): AntiEntropy {
    return this.p.antiEntropy;
  }
  get transfers(): Transfers {
    return this.p.transfers;
  }
  get handlers(): Map<string, InternalHandler> {
    return this.p.handlers;
  }
  get actor(): string {
    return this.p.actor;
  }

  /** Start gossip and background work. */
  async start(): Promise<void> {
    await this.build();
    if (this.started) return;
    this.started = true;
    // Build the hash tree before gossip starts this node exchanging with peers.
    await this.p.antiEntropy.start();
    this.p.membership.start();
    this.p.hints.start();
    this.p.transfers.start();
    this.updateMemberMetrics();
    this.c.metrics.hintsPending.set(this.p.replica.pendingHints);
  }

  async stop(): Promise<void> {
    if (!this.parts) return;
    this.started = false;
    await this.parts.hints.stop();
    await this.parts.transfers.stop();
    await this.parts.antiEntropy.stop();
    await this.parts.membership.stop();
  }

  /** After the server stopped taking requests: let in-flight replica work finish (bounded). */
  async drain(): Promise<void> {
    await this.parts?.coordinator.drain();
  }

  private updateMemberMetrics(): void {
    if (!this.parts) return;
    const counts: Record<string, number> = { up: 0, down: 0, joining: 0, leaving: 0 };
    for (const m of this.parts.membership.statuses()) counts[m.status] = (counts[m.status] ?? 0) + 1;
    for (const [status, v] of Object.entries(counts)) this.c.metrics.members.set({ status }, v);
  }

  /** The /v1/cluster document (SPEC §2). */
  clusterInfo(): unknown {
    const { membership, replica } = this.p;
    const ring = membership.ring();
    const inRing = new Set(ring.members.map((m) => m.id));
    return {
      node: this.init.id,
      members: membership.statuses().map((m) => ({
        ...m,
        ownership: inRing.has(m.id) ? ring.replicaShare(m.id) : 0,
      })),
      ring: {
        partitions: ring.partitions,
        n: ring.n,
        members: ring.members.map((m) => m.id),
        checksum: ring.checksum,
      },
      hints: { pending: replica.pendingHints },
      transfers: { pending: this.p.transfers.pending },
    };
  }
}
