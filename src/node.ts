/**
 * The composition root of a real node: LevelDB store, HTTP peer transport, the NodeCore,
 * and the fastify server. Starts parts in order and stops them in reverse.
 */
import { isIP } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { formatHostPort, type NodeConfig } from './config.js';
import { RingkvError } from './errors.js';
import { buildApp } from './http/app.js';
import { NodeCore } from './node-core.js';
import { BreakerGauge } from './observability/breaker-gauge.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { SiblingWatch } from './observability/sibling-watch.js';
import { type Clock, systemClock } from './runtime/clock.js';
import { IdleReclaimer, processProbes } from './runtime/idle-reclaim.js';
import { type Random, systemRandom } from './runtime/random.js';
import { systemTimers, type Timers } from './runtime/timers.js';
import { LevelStore, type Store, SublevelStore } from './storage/index.js';
import { createPeerTransport } from './transport/index.js';
import type { Transport } from './transport/transport.js';

export interface NodeRuntime {
  readonly clock?: Clock;
  readonly timers?: Timers;
  readonly random?: Random;
  readonly log?: Logger;
  /** Overrides the LevelDB store (tests). */
  readonly store?: Store;
}

/** A stopping node closes its sockets once no public request has come for this long... */
const QUIET_MS = 300;
/** ...or after this long at most. */
const QUIET_MAX_MS = 3000;

export class RingkvNode {
  readonly config: NodeConfig;
  readonly log: Logger;
  readonly metrics: Metrics;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly random: Random;
  private readonly store: Store;
  private transport: Transport | undefined;
  private core: NodeCore | undefined;
  private app: FastifyInstance | undefined;
  private reclaimer: IdleReclaimer | undefined;
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  /** When a public request was last refused because the node is stopping (monotonic ms). */
  private lastRefusedAt = 0;
  /** Called when the node decides to shut itself down (after leaving the cluster). */
  onShutdownRequest: (() => void) | undefined;

  constructor(config: NodeConfig, rt: NodeRuntime = {}) {
    this.config = config;
    this.clock = rt.clock ?? systemClock;
    this.timers = rt.timers ?? systemTimers;
    this.random = rt.random ?? systemRandom;
    this.log = rt.log ?? createLogger({ nodeId: config.id });
    this.metrics = new Metrics(config.id);
    const store = rt.store ?? new LevelStore({ location: config.data, objectCacheBytes: config.objectCacheMb * 1024 * 1024 });
    if (store instanceof SublevelStore) this.metrics.objectCache.observe(() => store.readCacheStats);
    this.store = store;
  }

  /** The port the HTTP server listens on (useful with --listen port 0 in tests). */
  get port(): number {
    const addr = this.app?.server.address();
    return addr && typeof addr === 'object' ? addr.port : this.config.listen.port;
  }

  /** The fastify instance (tests use inject()). */
  get http(): FastifyInstance {
    if (!this.app) throw new RingkvError('UNAVAILABLE', 'node is not started');
    return this.app;
  }

  get nodeCore(): NodeCore {
    if (!this.core) throw new RingkvError('UNAVAILABLE', 'node is not started');
    return this.core;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'starting';
    const cfg = this.config;
    const { clock, timers, random, log, metrics, store } = this;

    await store.open();
    const breakers = new BreakerGauge(metrics);
    const { transport } = createPeerTransport(
      { clock, timers, random, log },
      {
        secret: cfg.secret ?? '',
        advertise: formatHostPort(cfg.advertise),
        // Bind outgoing connections to our own address so fault tests can cut links per host,
        // but only when the server listens on exactly that IP, i.e. it is a local address. An
        // advertised address behind NAT, a cloud public IP or a published port is not, and
        // binding to it would fail every connect with EADDRNOTAVAIL.
        ...(isIP(cfg.advertise.host) !== 0 && cfg.advertise.host === cfg.listen.host ? { localAddress: cfg.advertise.host } : {}),
        onBreakerStateChange: (peer, st) => breakers.set(peer, st),
        onBatch: (items) => metrics.replicaBatchItems.observe(items),
        onTraffic: (route, direction, bytes) => metrics.internalBytes.inc({ route, direction }, bytes),
      },
    );
    this.transport = transport;

    const core = new NodeCore(
      { store, transport, clock, timers, random, log, metrics },
      {
        id: cfg.id,
        address: formatHostPort(cfg.advertise),
        zone: cfg.zone,
        weight: cfg.weight,
        seeds: cfg.seeds,
        n: cfg.n,
        r: cfg.r,
        w: cfg.w,
        hintedHandoff: cfg.hintedHandoff,
        gossipIntervalMs: cfg.gossipIntervalMs,
        antiEntropyIntervalMs: cfg.antiEntropyIntervalMs,
        tombstoneGraceMs: cfg.tombstoneGraceMs,
        antiEntropyVerifyPeriodMs: cfg.antiEntropyVerifyPeriodMs,
        versionCacheBytes: cfg.versionCacheMb * 1024 * 1024,
        // The decoded copies are of what the object cache holds (see DecodedCache), so
        // one setting sizes both; 0 turns both off.
        decodedCacheBytes: cfg.objectCacheMb * 1024 * 1024,
        // After leaving, keep gossiping a few rounds so every peer hears it, then exit.
        onLeft: () => {
          this.timers.setTimeout(() => this.onShutdownRequest?.(), 5 * cfg.gossipIntervalMs);
        },
      },
    );
    await core.build();
    this.core = core;
    core.membership.onChange(() => breakers.retain(new Set(core.membership.statuses().map((m) => m.address))));

    const siblings = new SiblingWatch({ metrics, log, clock: this.clock });
    this.app = await buildApp({
      log,
      metrics,
      draining: () => {
        if (this.state !== 'stopping') return false;
        this.lastRefusedAt = this.clock.monotonic();
        return true;
      },
      internal: { handlers: core.handlers, secret: cfg.secret },
      publicApi: {
        nodeId: cfg.id,
        coordinator: core.coordinator,
        n: cfg.n,
        r: cfg.r,
        w: cfg.w,
        maxValueBytes: cfg.maxValueBytes,
        clusterInfo: () => core.clusterInfo(),
        onSiblings: (key, count) => siblings.observe(key, count),
      },
      admin: {
        secret: cfg.secret,
        leave: async () => {
          const state = core.membership.member(cfg.id)?.state;
          if (state === 'leaving') return;
          if (!core.membership.leave()) throw new RingkvError('BAD_REQUEST', `cannot leave from state ${state}`);
          log.info('leaving the cluster: handing data to the new owners');
          // A joining node owns nothing: it is removed at once and can exit.
          if (state === 'joining') core.init.onLeft?.();
        },
        remove: async (id) => {
          if (!core.membership.member(id)) throw new RingkvError('NOT_FOUND', `no member ${id}`);
          if (id === cfg.id) throw new RingkvError('BAD_REQUEST', 'a node cannot remove itself; use leave');
          core.membership.remove(id);
        },
      },
    });

    await this.app.listen({ host: cfg.listen.host, port: cfg.listen.port });
    const probes = processProbes();
    // Building the anti-entropy tree in core.start() decodes every stored object: after 1M
    // keys a node held that garbage for 20-30 s (one at 191 MiB) until V8 got to it.
    const heapBefore = probes?.heapUsed();
    await core.start();
    this.startReclaimer(probes, heapBefore);
    this.state = 'running';
    log.info({ listen: formatHostPort(cfg.listen), advertise: formatHostPort(cfg.advertise), actor: core.actor }, 'ringkv node started');
  }

  /**
   * Collect the garbage of a burst once the node goes quiet (see IdleReclaimer). Needs node's
   * --expose-gc (the Docker image and `npm run bench` run nodes with it); without it V8's own
   * heuristics decide, as in any Node process.
   */
  private startReclaimer(probes: ReturnType<typeof processProbes>, heapBefore: number | undefined): void {
    if (probes === undefined) {
      this.log.info('idle memory reclaim is off: node was started without --expose-gc');
      return;
    }
    this.reclaimer = new IdleReclaimer({
      ...probes,
      timers: this.timers,
      monotonicMs: () => this.clock.monotonic(),
      onCollected: (before, after) => {
        this.metrics.idleCollections.inc();
        this.log.debug({ heapUsedBefore: before, heapUsedAfter: after }, 'node went quiet: collected garbage');
      },
    });
    this.reclaimer.start(heapBefore);
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.state = 'stopping';
    this.reclaimer?.stop();
    // Refuse new public requests first (503 UNAVAILABLE, connection closed), and give clients
    // a moment to move to other nodes before the sockets go away.
    if (this.app) await this.timers.sleep(300);
    await this.core?.stop();
    if (this.app) {
      // Close the sockets only once clients have stopped sending here. A request that arrives
      // on a keep-alive connection as the server closes it is reset, and its client cannot
      // know whether it was applied (a write then fails with an unknown outcome). Every
      // refused request told its client (503, Connection: close; the SDK's breaker opens
      // after a few), so wait until none has come for QUIET_MS, at most QUIET_MAX_MS.
      const started = this.clock.monotonic();
      while (
        this.clock.monotonic() - this.lastRefusedAt < QUIET_MS &&
        this.clock.monotonic() - started < QUIET_MAX_MS
      ) {
        await this.timers.sleep(50);
      }
      // close() waits for in-flight requests; a client that never finishes its request must
      // not hold the shutdown hostage, so cut every connection after a grace period.
      const app = this.app;
      const force = this.timers.setTimeout(() => app.server.closeAllConnections(), 2000);
      await app.close();
      force.cancel();
    }
    await this.core?.drain();
    await this.transport?.close();
    await this.store.close();
    this.state = 'stopped';
    this.log.info('ringkv node stopped');
  }
}
