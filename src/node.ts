/**
 * The composition root: builds every part of a node from its config, starts them in order
 * and stops them in reverse. The only module that knows all the others.
 */
import { isIP } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { type NodeConfig, formatHostPort } from './config.js';
import { Coordinator } from './coordinator/coordinator.js';
import { RingkvError } from './errors.js';
import { HintDelivery } from './handoff/hint-delivery.js';
import { buildApp } from './http/app.js';
import { Membership } from './membership/index.js';
import type { MemberRecord } from './membership/types.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { LocalReplica } from './replica/local-replica.js';
import { type Clock, systemClock } from './runtime/clock.js';
import { type Random, systemRandom } from './runtime/random.js';
import { systemTimers, type Timers } from './runtime/timers.js';
import { LevelStore, type Store, utf8 } from './storage/index.js';
import { createPeerTransport } from './transport/index.js';
import type { InternalHandler, Transport } from './transport/transport.js';

export interface NodeRuntime {
  readonly clock?: Clock;
  readonly timers?: Timers;
  readonly random?: Random;
  readonly log?: Logger;
  /** Overrides the LevelDB store (tests). */
  readonly store?: Store;
}

const META_EPOCH = utf8.encode('actor-epoch');
const META_MEMBERS = utf8.encode('members');

/** Read this data directory's actor epoch, creating it on first start. */
async function actorEpoch(store: Store, random: Random): Promise<string> {
  const existing = await store.get('meta', META_EPOCH);
  if (existing) return utf8.decode(existing);
  let epoch = '';
  for (const b of random.bytes(5)) epoch += b.toString(36).padStart(2, '0');
  await store.put('meta', META_EPOCH, utf8.encode(epoch));
  return epoch;
}

export class RingkvNode {
  readonly config: NodeConfig;
  readonly log: Logger;
  readonly metrics: Metrics;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly random: Random;
  private readonly store: Store;
  private transport: Transport | undefined;
  private membership: Membership | undefined;
  private replica: LocalReplica | undefined;
  private hints: HintDelivery | undefined;
  private app: FastifyInstance | undefined;
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  /** Called when the node decides to shut itself down (after leaving the cluster). */
  onShutdownRequest: (() => void) | undefined;

  constructor(config: NodeConfig, rt: NodeRuntime = {}) {
    this.config = config;
    this.clock = rt.clock ?? systemClock;
    this.timers = rt.timers ?? systemTimers;
    this.random = rt.random ?? systemRandom;
    this.log = rt.log ?? createLogger({ nodeId: config.id });
    this.metrics = new Metrics(config.id);
    this.store = rt.store ?? new LevelStore({ location: config.data });
  }

  /** The address clients and peers reach this node at, once started. */
  get address(): string {
    const addr = this.app?.server.address();
    if (addr && typeof addr === 'object') return `${this.config.advertise.host}:${addr.port}`;
    return formatHostPort(this.config.advertise);
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'starting';
    const cfg = this.config;
    const { clock, timers, random, log, metrics, store } = this;

    await store.open();
    const epoch = await actorEpoch(store, random);
    const actor = `${cfg.id}.${epoch}`;

    const { transport, breakerStates } = createPeerTransport(
      { clock, timers, random, log },
      {
        secret: cfg.secret ?? '',
        // Bind outgoing connections to our own address so fault tests can cut links per host.
        ...(isIP(cfg.advertise.host) !== 0 ? { localAddress: cfg.advertise.host } : {}),
        onBreakerStateChange: (peer, st) =>
          metrics.breakerState.set({ peer }, st === 'closed' ? 0 : st === 'half-open' ? 1 : 2),
      },
    );
    void breakerStates;
    this.transport = transport;

    const storedMembers = await store.get('meta', META_MEMBERS);
    const initialRecords = storedMembers ? (JSON.parse(utf8.decode(storedMembers)) as MemberRecord[]) : undefined;
    const membership = new Membership(
      { transport, clock, timers, random, log },
      {
        self: { id: cfg.id, address: formatHostPort(cfg.advertise), zone: cfg.zone, weight: cfg.weight },
        seeds: cfg.seeds,
        n: cfg.n,
        gossipIntervalMs: cfg.gossipIntervalMs,
        initialRecords,
        persist: async (records) => store.put('meta', META_MEMBERS, utf8.encode(JSON.stringify(records))),
        onGossipRound: (ok) => metrics.gossipRounds.inc({ outcome: ok ? 'ok' : 'failed' }),
      },
    );
    this.membership = membership;

    const replica = new LocalReplica({ store, random, log }, { actor });
    await replica.start();
    this.replica = replica;

    const coordinator = new Coordinator(
      { membership, transport, replica, clock, timers, log, metrics },
      { n: cfg.n, r: cfg.r, w: cfg.w, hintedHandoff: cfg.hintedHandoff },
    );
    const hints = new HintDelivery({ store, replica, membership, transport, timers, log, metrics });
    this.hints = hints;

    const handlers = new Map<string, InternalHandler>([...membership.handlers(), ...coordinator.handlers()]);

    this.app = await buildApp({
      log,
      metrics,
      internal: { handlers, secret: cfg.secret },
      publicApi: {
        nodeId: cfg.id,
        coordinator,
        n: cfg.n,
        r: cfg.r,
        w: cfg.w,
        maxValueBytes: cfg.maxValueBytes,
        clusterInfo: () => this.clusterInfo(),
      },
      admin: {
        secret: cfg.secret,
        leave: async () => {
          throw new RingkvError(
            'NOT_IMPLEMENTED',
            'leave with ownership transfer is not implemented yet; stop the node and use POST /v1/cluster/remove/{id} from another node',
          );
        },
        remove: async (id) => {
          if (!membership.member(id)) throw new RingkvError('NOT_FOUND', `no member ${id}`);
          if (id === cfg.id) throw new RingkvError('BAD_REQUEST', 'a node cannot remove itself; use leave');
          membership.remove(id);
        },
      },
    });

    membership.onChange(() => {
      this.updateMemberMetrics();
      hints.kick();
    });

    await this.app.listen({ host: cfg.listen.host, port: cfg.listen.port });
    membership.start();
    hints.start();
    this.updateMemberMetrics();
    metrics.hintsPending.set(replica.pendingHints);
    this.state = 'running';
    log.info({ listen: formatHostPort(cfg.listen), advertise: this.address, actor }, 'ringkv node started');
  }

  private updateMemberMetrics(): void {
    if (!this.membership) return;
    const counts: Record<string, number> = { up: 0, down: 0, joining: 0, leaving: 0 };
    for (const m of this.membership.statuses()) counts[m.status] = (counts[m.status] ?? 0) + 1;
    for (const [status, v] of Object.entries(counts)) this.metrics.members.set({ status }, v);
  }

  /** The /v1/cluster document (SPEC §2). */
  clusterInfo(): unknown {
    const membership = this.membership;
    if (!membership) throw new RingkvError('UNAVAILABLE', 'node is starting');
    const ring = membership.ring();
    return {
      node: this.config.id,
      members: membership.statuses().map((m) => ({
        ...m,
        ownership: ring.members.some((r) => r.id === m.id) ? ring.replicaShare(m.id) : 0,
      })),
      ring: {
        partitions: ring.partitions,
        n: ring.n,
        members: ring.members.map((m) => m.id),
        checksum: ring.checksum,
      },
      hints: { pending: this.replica?.pendingHints ?? 0 },
      transfers: { pending: 0 },
    };
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.state = 'stopping';
    await this.hints?.stop();
    await this.membership?.stop();
    await this.app?.close();
    await this.transport?.close();
    await this.store.close();
    this.state = 'stopped';
    this.log.info('ringkv node stopped');
  }
}
