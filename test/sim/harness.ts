/**
 * A small deterministic cluster harness: one ManualTime for clock and timers, one seeded
 * Random from which every node's own Random is forked, and one MemoryNetwork. Given a seed a
 * run is exactly replayable: nothing reads the real clock, and timers fire in (time, order
 * of scheduling) order.
 *
 * `Sim` is the generic core (time, randomness, network, seeds, runUntil). `MembershipCluster`
 * builds nodes that run `Membership` on it; other parts extend it by adding their own
 * handlers through `extraHandlers` or by composing a Sim directly.
 *
 * Replaying: every failure made inside `forEachSeed` is reported with its seed; run
 *   RINGKV_SIM_SEED=<seed> npx vitest run <file>
 * to run only that seed (a comma-separated list works too).
 */
import { Membership, type MembershipInit } from '../../src/membership/index.js';
import type { MemberRecord } from '../../src/membership/types.js';
import { ManualTime, type Random, seededRandom } from '../../src/runtime/index.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import type { InternalHandler } from '../../src/transport/transport.js';

/** Environment variable that pins the seeds a simulation runs. */
export const SEED_ENV = 'RINGKV_SIM_SEED';

/** Seeds to run: those in RINGKV_SIM_SEED if set, else `count` seeds starting at `base`. */
export function simSeeds(count: number, base = 1): number[] {
  const pinned = process.env[SEED_ENV];
  if (pinned !== undefined && pinned.trim() !== '') {
    return pinned.split(',').map((s) => {
      const n = Number(s.trim());
      if (!Number.isSafeInteger(n)) throw new Error(`${SEED_ENV}: not an integer: ${s}`);
      return n;
    });
  }
  return Array.from({ length: count }, (_, i) => base + i);
}

/** Raised by the harness when a bounded wait runs out. */
export class SimTimeout extends Error {
  override name = 'SimTimeout';
}

/**
 * Runs `body` once per seed (see simSeeds). The first failure is rethrown with its seed and
 * the command that replays it, and the seed is printed to stderr as well.
 */
export async function forEachSeed(
  count: number,
  body: (seed: number) => Promise<void>,
  opts: { base?: number; file?: string } = {},
): Promise<void> {
  for (const seed of simSeeds(count, opts.base)) {
    try {
      await body(seed);
    } catch (err) {
      const replay = `${SEED_ENV}=${seed} npx vitest run ${opts.file ?? 'test/sim'}`;
      const msg = `simulation failed with seed ${seed} (replay: ${replay}): ${err instanceof Error ? err.message : String(err)}`;
      console.error(msg);
      throw new Error(msg, { cause: err });
    }
  }
}

/** The generic simulation core: time, randomness and network. */
export class Sim {
  readonly time: ManualTime;
  readonly random: Random;
  readonly net: MemoryNetwork;
  private readonly t0: number;

  constructor(
    readonly seed: number,
    /** Default step of runUntil/runFor, in ms. */
    readonly stepMs = 100,
  ) {
    this.time = new ManualTime();
    this.t0 = this.time.now();
    this.random = seededRandom(seed);
    this.net = new MemoryNetwork(this.time);
  }

  /** An independent seeded Random derived from this sim's (e.g. one per node). */
  fork(): Random {
    return seededRandom(this.random.int(0x1_0000_0000));
  }

  /** Simulated ms since the sim began. */
  elapsed(): number {
    return this.time.now() - this.t0;
  }

  /** A uniform integer in [lo, hi]. */
  between(lo: number, hi: number): number {
    return lo + this.random.int(hi - lo + 1);
  }

  /** A random element (throws on an empty list). */
  pick<T>(list: readonly T[]): T {
    if (list.length === 0) throw new Error('pick from an empty list');
    return list[this.random.int(list.length)] as T;
  }

  /** A random permutation (Fisher-Yates). */
  shuffle<T>(list: readonly T[]): T[] {
    const out = [...list];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.random.int(i + 1);
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  }

  advance(ms: number): Promise<void> {
    return this.time.advance(ms);
  }

  /**
   * Advances time in steps of `stepMs` until `predicate` holds (checked before the first
   * step and after each); returns the simulated ms it took. Throws SimTimeout (naming the
   * seed) if it does not hold within `maxMs`. `check` runs after every step (for invariants).
   */
  async runUntil(
    predicate: () => boolean,
    maxMs: number,
    opts: { stepMs?: number; what?: string; check?: () => void; explain?: () => string } = {},
  ): Promise<number> {
    const step = opts.stepMs ?? this.stepMs;
    const start = this.time.now();
    for (;;) {
      if (predicate()) return this.time.now() - start;
      const spent = this.time.now() - start;
      if (spent >= maxMs) {
        const state = opts.explain ? `\n${opts.explain()}` : '';
        throw new SimTimeout(`seed ${this.seed}: ${opts.what ?? 'condition'} not reached within ${maxMs} ms${state}`);
      }
      await this.time.advance(Math.min(step, maxMs - spent));
      opts.check?.();
    }
  }

  /** Advances `ms` in steps, running `check` after each (for invariants). */
  async runFor(ms: number, opts: { stepMs?: number; check?: () => void } = {}): Promise<void> {
    const step = opts.stepMs ?? this.stepMs;
    const end = this.time.now() + ms;
    while (this.time.now() < end) {
      await this.time.advance(Math.min(step, end - this.time.now()));
      opts.check?.();
    }
  }
}

/** What a simulated member is started with. */
export interface MemberSpec {
  readonly id: string;
  readonly zone?: string;
  readonly weight?: number;
  /** Seed addresses (see MembershipCluster.addressOf). */
  readonly seeds?: readonly string[];
}

/** One simulated node: its current Membership instance and what survives its crashes. */
export class SimNode {
  membership: Membership;
  /** False between crash() and restart(). */
  alive = true;
  /** The table as last persisted: what a restart restores (the node's "disk"). */
  persisted: MemberRecord[] | undefined;
  /** Incarnations this node started with, in order. */
  readonly incarnations: number[] = [];

  constructor(
    readonly spec: MemberSpec,
    readonly address: string,
    membership: Membership,
  ) {
    this.membership = membership;
  }

  get id(): string {
    return this.spec.id;
  }
}

export interface MembershipClusterOptions {
  readonly gossipIntervalMs?: number;
  readonly n?: number;
  /** Ring partition bits; small by default so the many rebuilds of a sim stay cheap. */
  readonly partitionBits?: number;
  /** Restore the persisted table on restart (default true). */
  readonly persistence?: boolean;
  /** Extra Membership init options for every node. */
  readonly init?: Partial<MembershipInit>;
  /** More route handlers to serve on a node (for parts built on top of membership). */
  readonly extraHandlers?: (node: SimNode) => ReadonlyMap<string, InternalHandler>;
}

/** A simulated cluster of Membership nodes on a Sim. */
export class MembershipCluster {
  readonly nodes = new Map<string, SimNode>();
  readonly gossipIntervalMs: number;

  constructor(
    readonly sim: Sim,
    private readonly opts: MembershipClusterOptions = {},
  ) {
    this.gossipIntervalMs = opts.gossipIntervalMs ?? 1000;
  }

  /** The address a node id is reachable at. */
  addressOf(id: string): string {
    return `${id}.sim:7000`;
  }

  node(id: string): SimNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no sim node ${id}`);
    return n;
  }

  /** Nodes currently running. */
  live(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive);
  }

  /** Creates and starts a node. */
  async add(spec: MemberSpec): Promise<SimNode> {
    if (this.nodes.has(spec.id)) throw new Error(`sim node ${spec.id} exists`);
    const address = this.addressOf(spec.id);
    const node = new SimNode(spec, address, undefined as unknown as Membership);
    node.membership = this.build(node);
    this.nodes.set(spec.id, node);
    await this.boot(node);
    return node;
  }

  /**
   * Crash: the node vanishes from the network and its timers stop. Nothing it would have
   * persisted after this moment survives.
   */
  async crash(id: string): Promise<void> {
    const node = this.node(id);
    if (!node.alive) return;
    node.alive = false;
    this.sim.net.unregister(node.address);
    await node.membership.stop();
  }

  /** Restart a crashed node: a fresh Membership (new incarnation), restoring its "disk". */
  async restart(id: string): Promise<SimNode> {
    const node = this.node(id);
    if (node.alive) throw new Error(`sim node ${id} is running`);
    node.membership = this.build(node);
    await this.boot(node);
    return node;
  }

  /**
   * Restart a crashed node in the same process: the same Membership, started again (what
   * NodeCore.start() after stop() does), keeping what it held in memory.
   */
  async resume(id: string): Promise<SimNode> {
    const node = this.node(id);
    if (node.alive) throw new Error(`sim node ${id} is running`);
    await this.boot(node);
    return node;
  }

  /** Stops every node (end of a run). */
  async stopAll(): Promise<void> {
    for (const n of this.live()) await this.crash(n.id);
  }

  private build(node: SimNode): Membership {
    const { sim } = this;
    const restore = this.opts.persistence ?? true;
    return new Membership(
      {
        transport: sim.net.transport(node.address),
        clock: sim.time,
        timers: sim.time,
        random: sim.fork(),
        persist: async (records) => {
          // A crashed node's late writes never reach its disk.
          if (node.alive) node.persisted = records;
        },
      },
      {
        self: { id: node.id, address: node.address, zone: node.spec.zone ?? 'default', weight: node.spec.weight ?? 1 },
        seeds: node.spec.seeds ?? [],
        n: this.opts.n ?? 3,
        gossipIntervalMs: this.gossipIntervalMs,
        partitionBits: this.opts.partitionBits ?? 8,
        ...(restore && node.persisted ? { initialRecords: node.persisted } : {}),
        ...this.opts.init,
      },
    );
  }

  private async boot(node: SimNode): Promise<void> {
    const handlers = new Map(node.membership.handlers());
    for (const [route, h] of this.opts.extraHandlers?.(node) ?? []) handlers.set(route, h);
    this.sim.net.register(node.address, handlers);
    node.alive = true;
    await node.membership.start();
    const inc = node.membership.member(node.id)?.incarnation;
    if (inc !== undefined) node.incarnations.push(inc);
  }

  // ---- views -----------------------------------------------------------------------------

  /** A node's table as `id:state:incarnation` strings (heartbeats excluded: they never settle). */
  tableSignature(id: string): string {
    return this.node(id)
      .membership.records()
      .map((r) => `${r.id}:${r.state}:${r.incarnation}`)
      .join(',');
  }

  /**
   * All live nodes agree on the table (ids, states, incarnations) and the ring checksum, and
   * each sees every other live, non-removed member as up.
   */
  converged(): boolean {
    const live = this.live();
    const first = live[0];
    if (first === undefined) return true;
    const sig = this.tableSignature(first.id);
    const checksum = first.membership.ring().checksum;
    for (const n of live) {
      if (this.tableSignature(n.id) !== sig || n.membership.ring().checksum !== checksum) return false;
    }
    return this.allSeeLiveUp();
  }

  /** Each live node sees each other live, non-removed member as up. */
  allSeeLiveUp(): boolean {
    const live = this.live();
    for (const a of live) {
      for (const b of live) {
        if (a === b || a.membership.member(b.id)?.state === 'removed') continue;
        if (!a.membership.isUp(b.id)) return false;
      }
    }
    return true;
  }

  /** A human-readable dump of every live node's view (for failure messages). */
  explain(): string {
    return this.live()
      .map((n) => {
        const m = n.membership;
        const st = m
          .statuses()
          .map((s) => `${s.id}=${s.status}`)
          .join(' ');
        return `${n.id}: ring ${m.ring().checksum.slice(0, 8)} [${st}] table ${this.tableSignature(n.id)}`;
      })
      .join('\n');
  }

  /** Live observers (other than `id`) that currently judge `id` up. */
  observersSeeingUp(id: string): string[] {
    return this.live()
      .filter((n) => n.id !== id && n.membership.isUp(id))
      .map((n) => n.id);
  }
}
