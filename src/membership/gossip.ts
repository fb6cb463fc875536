/**
 * The membership driver: push-pull gossip of the member table plus local failure detection.
 *
 * Decisions live in pure modules (table.ts merges records, phi.ts judges liveness); this
 * class only owns the clock-driven loop, the transport calls and the caches built from the
 * table (the ring, the liveness verdicts).
 *
 * Lifecycle of the node's own record:
 * - start: incarnation = max(clock.now(), last known own incarnation + 1). A member that was
 *   active or leaving resumes that state; any other (new, or removed) joins ('joining') when
 *   it has seeds or a saved table naming live members, else starts a cluster ('active').
 *   Resuming (a join in progress included) keeps the record's `since`, the incarnation at
 *   which its membership began; anything else begins a membership (`since` = incarnation).
 *   The same holds for a start after a stop in the same process.
 * - joining -> active after the first successful gossip exchange with any peer, once the
 *   optional `readyToActivate` seam (ownership transfer) agrees.
 * - leave(): active -> leaving (a joining node owns nothing, so it goes straight to removed).
 * - Every own state change bumps the incarnation; every round bumps the heartbeat.
 * - remove(id), on any node, rewrites id's record as 'removed' at incarnation max(the one
 *   this node knows, its wall clock now). Incarnations are wall-clock starts, so the removal
 *   ends every membership of the member that began before it, including one this node has
 *   not heard of yet. The removal is sticky (table.ts): every node that merges it keeps it,
 *   and holds any record whose membership began at or before it as removed, whatever that
 *   record's incarnation. A restart that resumes the old place therefore cannot undo it,
 *   whichever reaches a node first, and the member learns of it however late, from any
 *   node that knows (so it also does when the first peer it heard from after a restart did
 *   not know yet, and after any number of restarts since). Removal is "end every membership
 *   begun before now", not a ban: the member learns it and
 *   - if the removal was issued during this process life, accepts it, re-issued at its own
 *     incarnation (a state change it made since, e.g. joining -> active, bumped that past the
 *     removal's, which older versions, ordering by incarnation alone, would take as newer);
 *     it leaves the ring but keeps answering gossip, and comes back only when started again;
 *   - if it was issued while it was down, joins afresh through 'joining' with a new `since`
 *     (`onRejoin`: what it held, or pulled for a join, lacks the writes made since), or, if
 *     it had been leaving, ends its leave ('removed', `onLeftWhileDown`).
 *   This trusts the clocks of the admin's node and the member to agree to within the time
 *   between a restart and a removal issued after it.
 * - Any other record of itself that is greater (from an earlier life, if the wall clock went
 *   backwards) is refuted by jumping past it.
 * - A life that resumed 'active', 'leaving' or 'joining' gossips its previous life's record
 *   until it first hears from the cluster: peers of older versions (which drop `since`) would
 *   otherwise let its new incarnation override a removal they know of. Gossip addressed to
 *   itself (a seed that is this node under another address) is refused: it would pass for
 *   hearing from a cluster.
 *
 * Liveness: each member's heartbeat increases, learned directly or through third parties,
 * feed a phi-accrual detector. isUp() asks the detector live; flips are noticed every round
 * and after every merge, and `onChange` fires then. The coordinator may add direct evidence through
 * reportUnreachable/reportReachable (see there).
 */
import { RingkvError } from '../errors.js';
import { buildRing, type Ring } from '../ring/index.js';
import type { Clock } from '../runtime/clock.js';
import type { Random } from '../runtime/random.js';
import type { TimerHandle, Timers } from '../runtime/timers.js';
import { type InternalHandler, type PeerAddress, type Transport, TransportError } from '../transport/transport.js';
import { PhiAccrualDetector } from './phi.js';
import {
  applyRecords,
  compareRecords,
  isNewerBeat,
  isSignificant,
  mergeRecord,
  parseRecord,
  pendingRingMembersOf,
  removalOf,
  ringKey,
  ringMembersOf,
  settleRecord,
  sinceOf,
  sortedRecords,
} from './table.js';
import type { MemberRecord, MemberState, MemberStatus, MembershipView } from './types.js';

/** The internal route gossip is served on. */
export const GOSSIP_ROUTE = 'gossip';

/** Defaults of the options in {@link MembershipInit} that do not depend on the interval. */
export const MEMBERSHIP_DEFAULTS = Object.freeze({
  /** Phi at which a member is judged down (Cassandra's default). */
  phiThreshold: 8,
  /** Heartbeat intervals the detector fits its distribution to. */
  phiWindowSize: 100,
  /** Round period is the interval times a uniform factor in [1 - jitter, 1 + jitter]. */
  jitter: 0.2,
  /** Chance per round of also probing a random down member, to notice its recovery. */
  downProbeProbability: 1 / 3,
  /** Cap on the gossip send timeout; the default is min(this, 2 x interval). */
  maxGossipTimeoutMs: 1000,
  /**
   * A round this many intervals late means this node itself stalled (rounds are at most
   * 1 + jitter intervals apart): verdicts freeze until it catches up, and the stall is not
   * counted as its peers' silence. Below the detector's ~4.6 intervals to a verdict.
   */
  stallIntervals: 3,
});

/** The message of the refusal of gossip from the receiving node's own id (see handleGossip). */
const SELF_GOSSIP = 'gossip from the receiving node itself';

/** The subset of a pino logger membership uses. */
export interface MembershipLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface MembershipComponents {
  readonly transport: Transport;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly random: Random;
  readonly log?: MembershipLog;
  /**
   * Persists the table (called at most once per round, after significant changes, and once
   * on stop if something is unsaved). A failure is logged and retried next round.
   */
  readonly persist?: (records: MemberRecord[]) => Promise<void>;
}

export interface MembershipInit {
  readonly self: { readonly id: string; readonly address: string; readonly zone: string; readonly weight: number };
  /** Addresses to join through (ids unknown); this node's own address is ignored. */
  readonly seeds: readonly string[];
  /** Replication factor the ring is built for. */
  readonly n: number;
  readonly gossipIntervalMs: number;
  /** Timeout of one exchange; default min(1000, 2 x gossipIntervalMs). */
  readonly gossipTimeoutMs?: number;
  /** Ring partition bits (see buildRing); default the ring's own. Simulations use fewer. */
  readonly partitionBits?: number;
  /** Default {@link MEMBERSHIP_DEFAULTS}.phiThreshold. */
  readonly phiThreshold?: number;
  /** Default {@link MEMBERSHIP_DEFAULTS}.phiWindowSize. */
  readonly phiWindowSize?: number;
  /** Floor of the detector's deviation; default gossipIntervalMs / 2. */
  readonly minStdDevMs?: number;
  /** Pause the detector forgives on top of the mean interval; default gossipIntervalMs. */
  readonly acceptablePauseMs?: number;
  /** Default {@link MEMBERSHIP_DEFAULTS}.downProbeProbability. */
  readonly downProbeProbability?: number;
  /**
   * Seam for ownership transfer: a joining node turns active only once this returns true
   * (checked every round after the first successful exchange). Absent: activate at once.
   */
  readonly readyToActivate?: () => boolean;
  /**
   * Seam for ownership transfer: called when this node learns that the cluster removed it
   * while it was down, or when it is started again in the same process after it was
   * removed, so that it joins afresh: whatever it pulled in an earlier join (the same
   * transition again, if it rejoins the same ring) misses every write made meanwhile.
   */
  readonly onRejoin?: () => void;
  /**
   * Called when this node, restarted in the middle of a leave, learns that the cluster
   * removed it meanwhile (its leave finished, or an admin removed it): the leave is over, and
   * the node may exit as a finished leave does.
   */
  readonly onLeftWhileDown?: () => void;
  /** Called after every exchange this node started (true when the peer answered). */
  readonly onGossipRound?: (ok: boolean) => void;
  /** Records restored from disk (e.g. the last `persist` call of a previous run). */
  readonly initialRecords?: readonly MemberRecord[];
  /** Same as {@link MembershipComponents}.persist (either place; this one wins). */
  readonly persist?: (records: MemberRecord[]) => Promise<void>;
}

/** Counters for metrics. */
export interface MembershipStats {
  /** Exchanges this node started (one per chosen peer per round). */
  readonly gossipRounds: number;
  /** Of those, the ones that failed (timeout, unreachable, bad reply). */
  readonly gossipFailures: number;
}

interface GossipMessage {
  readonly from: string;
  readonly records: MemberRecord[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Encodes a gossip message (JSON: tables are small, and readable in a packet capture). */
export function encodeGossip(from: string, records: readonly MemberRecord[]): Uint8Array {
  return encoder.encode(JSON.stringify({ from, records }));
}

/** Decodes and validates a gossip message; throws RingkvError BAD_REQUEST when malformed. */
export function decodeGossip(body: Uint8Array): GossipMessage {
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(body));
  } catch {
    throw new RingkvError('BAD_REQUEST', 'malformed gossip message: not JSON');
  }
  const o = v as { from?: unknown; records?: unknown } | null;
  if (typeof o !== 'object' || o === null || typeof o.from !== 'string' || !Array.isArray(o.records)) {
    throw new RingkvError('BAD_REQUEST', 'malformed gossip message: expected {from, records}');
  }
  const records: MemberRecord[] = [];
  for (const raw of o.records) {
    const r = parseRecord(raw);
    if (r === undefined) throw new RingkvError('BAD_REQUEST', 'malformed gossip message: bad member record');
    records.push(r);
  }
  return { from: o.from, records };
}

const noop = (): void => undefined;
const silent: MembershipLog = { debug: noop, info: noop, warn: noop };

/** Gossip membership and failure detection for one node. */
export class Membership implements MembershipView {
  readonly self: string;

  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly random: Random;
  private readonly log: MembershipLog;
  private readonly persist: ((records: MemberRecord[]) => Promise<void>) | undefined;

  private readonly address: PeerAddress;
  private readonly seeds: readonly PeerAddress[];
  private readonly seedSet: ReadonlySet<PeerAddress>;
  private readonly n: number;
  private readonly partitionBits: number | undefined;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly downProbeProbability: number;
  private readonly readyToActivate: (() => boolean) | undefined;
  private readonly onRejoin: (() => void) | undefined;
  private readonly onLeftWhileDown: (() => void) | undefined;
  /**
   * Seed addresses that turned out to be this node (they refused our gossip as our own): not
   * contacted again. A node whose every seed is itself, knowing no other member, is a cluster
   * of one, as one started without seeds.
   */
  private readonly selfAliases = new Set<PeerAddress>();
  private readonly onGossipRound: ((ok: boolean) => void) | undefined;

  private readonly table = new Map<string, MemberRecord>();
  private readonly detector: PhiAccrualDetector;
  /**
   * Liveness verdicts as last told to listeners, per other non-removed member (true = up);
   * isUp() reads the detector live, this only detects flips worth an onChange.
   */
  private readonly verdicts = new Map<string, boolean>();
  private ringCache: Ring;
  private ringCacheKey: string;
  private pendingCache: Ring;
  private pendingCacheKey: string;
  private readonly listeners = new Set<() => void>();

  private running = false;
  private startedOnce = false;
  private timer: TimerHandle | undefined;
  private readonly inflight = new Set<AbortController>();
  /** Some exchange (either direction) succeeded since start: we have heard from the cluster. */
  private exchanged = false;
  private seedContacted = false;
  /**
   * The incarnation this process life began with: a removal at or above it was issued during
   * it; one below it but at or above our membership's `since` was issued while we were down.
   */
  private lifeStart: number;
  /**
   * While this life resumed an earlier one and has not heard from the cluster yet: that
   * life's saved record, gossiped instead of ours. Nodes of this version hold a resumed
   * record removed if they know of a removal of its membership (`since`), whenever they
   * hear of either; nodes of older versions would instead let its newer incarnation override
   * the removal, putting us back in their rings with none of the writes made since. Holding
   * back until we first hear from the cluster narrows that for them (see absorbSelf).
   */
  private heldBack: MemberRecord | undefined;
  /** Unsaved significant changes (true at first: our new incarnation is worth saving). */
  private dirty = true;
  private persisting: Promise<void> | undefined;
  private rounds = 0;
  /** Monotonic time of the last round (undefined before the first): see stalled(). */
  private lastRoundAt: number | undefined;
  private failures = 0;
  /** Up peers left to visit in this cycle (see nextInCycle). */
  private cycle: PeerAddress[] = [];

  constructor(components: MembershipComponents, init: MembershipInit) {
    const { self } = init;
    if (typeof self.id !== 'string' || self.id.length === 0) throw new RangeError('membership: self.id must be non-empty');
    if (!(self.weight > 0) || !Number.isFinite(self.weight)) throw new RangeError(`membership: weight must be > 0, got ${self.weight}`);
    if (!Number.isInteger(init.n) || init.n < 1) throw new RangeError(`membership: n must be an integer >= 1, got ${init.n}`);
    if (!(init.gossipIntervalMs > 0)) throw new RangeError(`membership: gossipIntervalMs must be > 0, got ${init.gossipIntervalMs}`);

    this.transport = components.transport;
    this.clock = components.clock;
    this.timers = components.timers;
    this.random = components.random;
    this.log = components.log ?? silent;
    this.persist = init.persist ?? components.persist;

    this.self = self.id;
    this.address = self.address;
    this.seeds = [...new Set(init.seeds)].filter((s) => s !== self.address);
    this.seedSet = new Set(this.seeds);
    this.n = init.n;
    this.partitionBits = init.partitionBits;
    this.intervalMs = init.gossipIntervalMs;
    this.timeoutMs =
      init.gossipTimeoutMs ?? Math.min(MEMBERSHIP_DEFAULTS.maxGossipTimeoutMs, 2 * init.gossipIntervalMs);
    this.downProbeProbability = init.downProbeProbability ?? MEMBERSHIP_DEFAULTS.downProbeProbability;
    this.readyToActivate = init.readyToActivate;
    this.onRejoin = init.onRejoin;
    this.onLeftWhileDown = init.onLeftWhileDown;
    this.onGossipRound = init.onGossipRound;
    this.detector = new PhiAccrualDetector({
      threshold: init.phiThreshold ?? MEMBERSHIP_DEFAULTS.phiThreshold,
      windowSize: init.phiWindowSize ?? MEMBERSHIP_DEFAULTS.phiWindowSize,
      minStdDevMs: init.minStdDevMs ?? init.gossipIntervalMs / 2,
      acceptablePauseMs: init.acceptablePauseMs ?? init.gossipIntervalMs,
      bootstrapIntervalMs: init.gossipIntervalMs,
    });

    // Restore what a previous run knew; our own old record only bounds our new incarnation.
    let own: MemberRecord | undefined;
    const restored: MemberRecord[] = [];
    for (const raw of init.initialRecords ?? []) {
      const r = parseRecord(raw);
      if (r === undefined) continue;
      if (r.id === self.id) own = own === undefined ? r : mergeRecord(own, r);
      else restored.push(r);
    }
    const ownIncarnation = own?.incarnation ?? -1;
    const ownState = own?.state;
    // A restart is not a join: a member that was active (or leaving) resumes that state with
    // its data, instead of re-pulling everything it owns. New and removed members join; a
    // removed one restarted without seeds still knows its old peers from the saved table.
    const resumed = ownState === 'active' || ownState === 'leaving';
    // A join resumed after a restart is held back too: if the cluster removed us meanwhile,
    // the join starts over (see absorbSelf).
    const heldBack = resumed || ownState === 'joining';
    const hasPeers = this.seeds.length > 0 || restored.some((r) => r.state !== 'removed');
    const startState: MemberState = resumed && ownState !== undefined ? ownState : hasPeers ? 'joining' : 'active';
    applyRecords(this.table, restored);
    this.lifeStart = Math.max(this.wallMs(), ownIncarnation + 1);
    this.heldBack = heldBack ? own : undefined;
    // Resuming (a join included) keeps the membership the cluster knows us by, so that a
    // removal of it issued while we were down still ends it whenever it reaches anyone (see
    // table.ts). Anything else begins a membership now.
    const since = heldBack && own !== undefined ? sinceOf(own) : this.lifeStart;
    const removal = own === undefined ? undefined : removalOf(own);
    this.table.set(self.id, {
      id: self.id,
      address: self.address,
      zone: self.zone,
      weight: self.weight,
      state: startState,
      incarnation: this.lifeStart,
      heartbeat: 0,
      since,
      ...(removal === undefined ? {} : { removedAt: removal }),
    });
    const now = this.clock.monotonic();
    for (const r of this.table.values()) {
      if (r.id !== self.id && r.state !== 'removed') this.detector.heartbeat(r.id, now);
    }
    this.evaluate();
    const members = ringMembersOf(this.table);
    this.ringCacheKey = ringKey(members);
    this.ringCache = this.buildRing(members);
    const pending = pendingRingMembersOf(this.table);
    this.pendingCacheKey = ringKey(pending);
    this.pendingCache = this.pendingCacheKey === this.ringCacheKey ? this.ringCache : this.buildRing(pending);
  }

  // ---- lifecycle -------------------------------------------------------------------------

  /** Starts gossiping. Idempotent. A start after a stop is a restart: a new incarnation. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.startedOnce) {
      const me = this.me();
      this.lifeStart = this.nextIncarnation(me);
      if (me.state !== 'removed') {
        // Resumes its membership (same `since`). A life that never announced itself (still
        // held back) leaves the record it held back as the one the cluster last saw.
        this.heldBack = this.heldBack ?? me;
        this.table.set(this.self, { ...me, incarnation: this.lifeStart });
      } else {
        // Removed (by an admin, or its leave finished): started again, it is a new member, as
        // after a restart from disk; it has none of the writes made since, so it joins.
        this.heldBack = undefined;
        const hasPeers = this.seeds.length > 0 || [...this.table.values()].some((r) => r.id !== this.self && r.state !== 'removed');
        const state: MemberState = hasPeers ? 'joining' : 'active';
        const { removedAt: _, ...rest } = me;
        const removal = removalOf(me);
        this.table.set(this.self, {
          ...rest,
          state,
          incarnation: this.lifeStart,
          heartbeat: me.heartbeat + 1,
          since: this.lifeStart,
          ...(removal === undefined ? {} : { removedAt: removal }),
        });
        if (state === 'joining') this.callHook(this.onRejoin);
      }
      // Time passed while stopped: restart every detector clock instead of convicting everyone.
      const now = this.clock.monotonic();
      for (const id of [...this.detector.ids()]) {
        this.detector.forget(id);
        this.detector.heartbeat(id, now);
      }
      this.exchanged = false;
      this.seedContacted = false;
      this.lastRoundAt = undefined;
      this.afterChange(true);
    }
    this.startedOnce = true;
    this.log.info({ incarnation: this.me().incarnation, state: this.me().state, seeds: this.seeds }, 'membership started');
    // First round right away: a joining node should not wait a whole interval to be seen.
    this.timer = this.timers.setTimeout(() => this.tick(), 0);
  }

  /** Stops gossiping: cancels the round timer and every in-flight exchange. Idempotent. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
    for (const ac of this.inflight) ac.abort(new Error('membership stopped'));
    this.inflight.clear();
    if (this.persisting) await this.persisting;
    if (this.dirty) await this.flush();
    this.log.info({}, 'membership stopped');
  }

  /** Route handlers to serve (node.ts merges them with the other parts'). */
  handlers(): Map<string, InternalHandler> {
    return new Map([[GOSSIP_ROUTE, this.handleGossip]]);
  }

  // ---- MembershipView --------------------------------------------------------------------

  ring(): Ring {
    return this.ringCache;
  }

  /**
   * The ring the cluster is moving to (joining members in, leaving members out); the same
   * object as ring() when no transfer is under way.
   */
  pendingRing(): Ring {
    return this.pendingCache;
  }

  member(id: string): MemberRecord | undefined {
    return this.table.get(id);
  }

  /**
   * Evaluated live from the detector, so a verdict is exact to the millisecond; `onChange`
   * learns of a flip at the next round or merge (within about one gossip interval).
   * Unknown and removed members are down. While this node has stalled (see stalled()) the
   * last verdict stands: the silence it measures is its own.
   */
  isUp(id: string): boolean {
    if (id === this.self) return true;
    const r = this.table.get(id);
    if (r === undefined || r.state === 'removed') return false;
    const now = this.clock.monotonic();
    if (this.stalled(now)) return this.verdicts.get(id) ?? true;
    return this.detector.isAvailable(id, now);
  }

  statuses(): { id: string; address: string; zone: string; weight: number; status: MemberStatus }[] {
    const out: { id: string; address: string; zone: string; weight: number; status: MemberStatus }[] = [];
    for (const r of sortedRecords(this.table)) {
      if (r.state === 'removed') continue;
      const status: MemberStatus =
        r.state === 'leaving' ? 'leaving' : r.state === 'joining' ? 'joining' : this.isUp(r.id) ? 'up' : 'down';
      out.push({ id: r.id, address: r.address, zone: r.zone, weight: r.weight, status });
    }
    return out;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  // ---- admin and hooks -------------------------------------------------------------------

  /** Every record (removed ones included), sorted by id. */
  records(): MemberRecord[] {
    return sortedRecords(this.table);
  }

  stats(): MembershipStats {
    return { gossipRounds: this.rounds, gossipFailures: this.failures };
  }

  /**
   * This node starts leaving: active -> leaving (it stays in the ring until it is removed).
   * A joining node owns nothing, so it is removed at once. Returns false if already leaving
   * or removed.
   */
  leave(): boolean {
    const state = this.me().state;
    if (state === 'active') this.setOwnState('leaving');
    else if (state === 'joining') this.setOwnState('removed');
    else return false;
    return true;
  }

  /**
   * Admin removal of a member (any node, any member, itself included): its record becomes
   * 'removed' at incarnation max(known, wall clock now) and spreads by gossip, so it also
   * outranks a restart this node has not heard of yet. Returns false if the id is unknown or
   * already removed. The member comes back only by restarting later (new incarnation).
   */
  remove(id: string): boolean {
    const r = this.table.get(id);
    if (r === undefined || r.state === 'removed') return false;
    const incarnation = Math.max(r.incarnation, this.wallMs());
    this.table.set(id, settleRecord({ ...r, state: 'removed', incarnation, removedAt: incarnation }));
    if (id === this.self) this.heldBack = undefined;
    this.detector.forget(id);
    this.log.info({ member: id, incarnation, known: r.incarnation }, 'member removed by admin');
    this.afterChange(true);
    return true;
  }

  /**
   * Direct evidence from the coordinator: a request to `id` failed as unreachable. It can
   * only hasten a verdict, never contradict gossip: `id` is judged down now only if no
   * heartbeat of it arrived in the last two gossip intervals (so one failed call to a member
   * that gossip shows alive changes nothing); the next heartbeat makes it up again.
   */
  reportUnreachable(id: string): void {
    if (id === this.self) return;
    const last = this.detector.lastHeartbeat(id);
    if (last === undefined || this.clock.monotonic() - last <= 2 * this.intervalMs) return;
    this.detector.suspect(id);
    if (this.evaluate()) this.notify();
  }

  /** Withdraws a reportUnreachable verdict (the phi detector still applies). */
  reportReachable(id: string): void {
    if (id === this.self) return;
    this.detector.unsuspect(id);
    if (this.evaluate()) this.notify();
  }

  // ---- the loop --------------------------------------------------------------------------

  private tick(): void {
    this.timer = undefined;
    if (!this.running) return;
    try {
      this.round();
    } catch (err) {
      // Whatever went wrong, the next round must still happen.
      this.log.warn({ err }, 'gossip round failed');
    }
    const j = MEMBERSHIP_DEFAULTS.jitter;
    const delay = Math.round(this.intervalMs * (1 - j + 2 * j * this.random.next()));
    this.timer = this.timers.setTimeout(() => this.tick(), delay);
  }

  private round(): void {
    const now = this.clock.monotonic();
    if (this.stalled(now) && this.lastRoundAt !== undefined) {
      // We were not running for a while (nor hearing anything): that time is on us.
      const pauseMs = now - this.lastRoundAt - this.intervalMs;
      this.log.warn({ pauseMs }, 'this node stalled; not counting that against its peers');
      this.detector.forgive(pauseMs, now);
    }
    this.lastRoundAt = now;
    const me = this.me();
    if (me.state !== 'removed') this.table.set(this.self, { ...me, heartbeat: me.heartbeat + 1 });
    this.maybeActivate();
    if (this.evaluate()) this.notify();
    for (const [address, isSeed] of this.choosePeers()) void this.exchange(address, isSeed);
    this.maybePersist();
  }

  /** Peers for this round: address -> whether it is a seed. */
  private choosePeers(): Map<PeerAddress, boolean> {
    const up: PeerAddress[] = [];
    const down: PeerAddress[] = [];
    for (const r of this.table.values()) {
      if (r.id === this.self || r.state === 'removed' || r.address === this.address) continue;
      (this.isUp(r.id) ? up : down).push(r.address);
    }
    const out = new Map<PeerAddress, boolean>();
    const pick = (list: readonly PeerAddress[]): void => {
      const a = list[this.random.int(list.length)];
      if (a !== undefined) out.set(a, this.seedSet.has(a));
    };
    const next = this.nextInCycle(up);
    if (next !== undefined) out.set(next, this.seedSet.has(next));
    if (down.length > 0 && this.random.next() < this.downProbeProbability) pick(down);
    if (!this.seedContacted) {
      const seeds = this.selfAliases.size === 0 ? this.seeds : this.seeds.filter((a) => !this.selfAliases.has(a));
      if (seeds.length > 0) pick(seeds);
    }
    return out;
  }

  /**
   * The next up peer of the current cycle: a random permutation of the up peers, drawn
   * without replacement and reshuffled when spent (SWIM's trick). Every peer is still a
   * uniformly random choice for the round, but no peer waits more than two cycles for a
   * visit, which trims the tail of heartbeat arrival gaps and with it the detection time.
   */
  private nextInCycle(up: readonly PeerAddress[]): PeerAddress | undefined {
    if (up.length === 0) return undefined;
    const current = new Set(up);
    for (;;) {
      const a = this.cycle.pop();
      if (a === undefined) break;
      if (current.has(a)) return a;
    }
    const order = [...up];
    for (let i = order.length - 1; i > 0; i--) {
      const j = this.random.int(i + 1);
      [order[i], order[j]] = [order[j] as PeerAddress, order[i] as PeerAddress];
    }
    this.cycle = order;
    return this.cycle.pop();
  }

  private async exchange(address: PeerAddress, isSeed: boolean): Promise<void> {
    const ac = new AbortController();
    this.inflight.add(ac);
    let ok = false;
    try {
      const reply = await this.transport.send(address, GOSSIP_ROUTE, encodeGossip(this.self, this.gossipRecords()), {
        timeoutMs: this.timeoutMs,
        signal: ac.signal,
      });
      if (this.running) {
        const msg = decodeGossip(reply);
        if (this.absorb(msg.from, msg.records) && isSeed) this.seedContacted = true;
        this.maybeActivate();
        ok = true;
      }
    } catch (err) {
      if (this.running && isSelfGossipRefusal(err)) this.foundSelfAlias(address);
      else if (this.running) this.log.debug({ peer: address, err }, 'gossip exchange failed');
    } finally {
      this.inflight.delete(ac);
    }
    if (!this.running) return;
    this.rounds++;
    if (!ok) this.failures++;
    try {
      this.onGossipRound?.(ok);
    } catch (err) {
      this.log.warn({ err }, 'onGossipRound listener threw');
    }
  }

  private readonly handleGossip: InternalHandler = async (body) => {
    if (!this.running) throw new RingkvError('UNAVAILABLE', 'membership is not running');
    const msg = decodeGossip(body);
    // We are talking to ourselves: a seed names this node under another address (SPEC lets
    // the list include itself). Answering would count as hearing from a cluster: a joining
    // node would turn active alone and stop contacting seeds, a cluster of its own for good.
    if (msg.from === this.self) {
      this.log.warn({}, 'gossip from this node itself: a seed is this node under another address');
      throw new RingkvError('BAD_REQUEST', SELF_GOSSIP);
    }
    const held = this.table.get(msg.from);
    this.absorb(msg.from, msg.records);
    this.maybeActivate();
    // Tell the sender how we held its record before its own replaced it: if we held it as
    // removed, only this reply can tell it so (see absorbSelf). Convergence is unaffected:
    // the sender keeps the greater of its record and this one, as with the merged one.
    const reply = this.gossipRecords().map((r) => (r.id === msg.from && held !== undefined ? held : r));
    return encodeGossip(this.self, reply);
  };

  /**
   * `address` answered our gossip as our own: it is this node under another spelling (a
   * seed list that names itself, SPEC §1). It is not contacted again; if every seed is this
   * node and no other member is known, this node is a cluster of one (as without seeds).
   */
  private foundSelfAlias(address: PeerAddress): void {
    if (this.selfAliases.has(address)) return;
    this.selfAliases.add(address);
    this.log.info({ seed: address }, 'a seed is this node under another address; not contacting it');
    const alone = this.seeds.every((a) => this.selfAliases.has(a)) && ![...this.table.values()].some((r) => r.id !== this.self && r.state !== 'removed');
    if (alone && this.me().state === 'joining') {
      this.exchanged = true;
      this.maybeActivate();
    }
  }

  /** The records we gossip: the table, with our own record held back (see heldBack). */
  private gossipRecords(): MemberRecord[] {
    const out = this.records();
    const held = this.heldBack;
    return held === undefined ? out : out.map((r) => (r.id === this.self ? held : r));
  }

  // ---- state changes ---------------------------------------------------------------------

  private me(): MemberRecord {
    return this.table.get(this.self) as MemberRecord;
  }

  private nextIncarnation(me: MemberRecord): number {
    return Math.max(this.wallMs(), me.incarnation + 1);
  }

  /** Wall-clock ms as an integer (incarnations must be integers to pass validation). */
  private wallMs(): number {
    return Math.floor(this.clock.now());
  }

  private setOwnState(state: MemberState): void {
    const me = this.me();
    // A change of our own (leave) is news to announce at once, held back or not.
    this.heldBack = undefined;
    const incarnation = this.nextIncarnation(me);
    // Removing ourselves (a join given up) is a removal at our own incarnation, not at an
    // earlier one we knew of.
    const next = state === 'removed' ? settleRecord({ ...me, state, incarnation, removedAt: incarnation }) : { ...me, state, incarnation };
    this.table.set(this.self, { ...next, heartbeat: me.heartbeat + 1 });
    this.log.info({ from: me.state, to: state }, 'own membership state changed');
    this.afterChange(true);
  }

  private maybeActivate(): void {
    if (this.me().state !== 'joining' || !this.exchanged) return;
    if (this.readyToActivate) {
      let ready = false;
      try {
        ready = this.readyToActivate();
      } catch (err) {
        this.log.warn({ err }, 'readyToActivate threw');
      }
      if (!ready) return;
    }
    this.setOwnState('active');
  }

  /**
   * Merges records from peer `from`; notifies listeners if anything mattered. Returns true if
   * that counts as hearing from the cluster: the peer is a member (not removed, as far as
   * anyone told us). A removed node that still runs answers gossip, but what it knows may be
   * long stale (nobody gossips with it), and a node that took it for the cluster would turn
   * active, or announce itself, in a cluster that does not know it: with every member that
   * node knows removed (the removed node's view), and it removed or unknown to every member,
   * nobody would ever gossip with it again, a split that never heals.
   */
  private absorb(from: string, records: readonly MemberRecord[]): boolean {
    let significant = false;
    const others: MemberRecord[] = [];
    for (const r of records) {
      if (r.id === this.self) significant = this.absorbSelf(r) || significant;
      else others.push(r);
    }
    const now = this.clock.monotonic();
    for (const c of applyRecords(this.table, others)) {
      const { before, after } = c;
      if (isSignificant(c)) {
        significant = true;
        if (before?.state !== after.state) {
          this.log.info({ member: after.id, from: before?.state, to: after.state }, 'member state changed');
        }
      }
      if (after.state === 'removed') this.detector.forget(after.id);
      else if (isNewerBeat(before, after)) this.detector.heartbeat(after.id, now);
    }
    const sender = this.table.get(from);
    const fromMember = from !== this.self && sender !== undefined && sender.state !== 'removed';
    if (fromMember) {
      this.exchanged = true;
      // We have heard from the cluster (and of our removal, if it knew): we may be announced.
      if (this.heldBack !== undefined) {
        this.heldBack = undefined;
        this.dirty = true; // save the record we now announce
      }
    }
    this.afterChange(significant);
    return fromMember;
  }

  /** Handles a record of ourselves from a peer; true if our record changed. */
  private absorbSelf(r: MemberRecord): boolean {
    const me = this.me();
    if (me.state === 'removed') return false;
    const removal = removalOf(r);
    if (removal !== undefined && removal >= sinceOf(me)) {
      if (removal >= this.lifeStart) {
        // A removal issued during this life (see remove()). Our own state changes since may
        // have bumped our incarnation past it: re-issue it at ours, or our record would win
        // on nodes of older versions (which order by incarnation alone).
        this.log.warn({ incarnation: me.incarnation }, 'this node was removed by an admin; it leaves the ring');
        this.table.set(this.self, settleRecord({ ...me, state: 'removed', incarnation: Math.max(r.incarnation, me.incarnation), removedAt: removal }));
        return true;
      }
      // Removed while we were down: the place we resumed (or were joining into) was given
      // away and we lack every write since. Like any new member, join afresh (pull our data
      // first); a leave it cut short is done. This holds however late the removal reaches
      // us, even after we announced this life, or restarted again: our membership is the
      // one it ended (`since`), and every node that knows of the removal holds it ended too.
      const state: MemberState = me.state === 'leaving' ? 'removed' : 'joining';
      const incarnation = Math.max(this.nextIncarnation(me), removal + 1);
      this.log.warn({ removedAt: removal, to: state }, 'this node was removed while it was down');
      this.table.set(this.self, {
        ...me,
        state,
        incarnation,
        heartbeat: me.heartbeat + 1,
        since: state === 'joining' ? incarnation : sinceOf(me),
        removedAt: removal,
      });
      this.callHook(state === 'joining' ? this.onRejoin : this.onLeftWhileDown);
      return true;
    }
    // A removal of an earlier membership of ours, later than the one we knew: carry it as
    // every other node does. (Not adopting it would leave their copy of our record greater
    // than ours, at our own incarnation, and we would refute it, round after round.)
    const known = removal !== undefined && (me.removedAt === undefined || removal > me.removedAt) ? { ...me, removedAt: removal } : me;
    if (compareRecords(r, known) <= 0) {
      if (known === me) return false;
      this.table.set(this.self, known);
      return true;
    }
    // Someone holds a newer record of us than we do: a previous life's (the wall clock went
    // backwards across a restart) or another process using our id. Refute it by jumping past.
    this.log.warn({ theirs: r.incarnation, ours: me.incarnation }, 'refuting a newer record of this node');
    this.table.set(this.self, {
      ...known,
      incarnation: Math.max(this.wallMs(), r.incarnation + 1),
      heartbeat: me.heartbeat + 1,
    });
    return true;
  }

  private callHook(hook: (() => void) | undefined): void {
    try {
      hook?.();
    } catch (err) {
      this.log.warn({ err }, 'a membership hook threw');
    }
  }

  /** Refreshes ring and verdicts after a table change; notifies if anything visible changed. */
  private afterChange(significant: boolean): void {
    if (significant) this.dirty = true;
    const ringChanged = this.refreshRing();
    const livenessChanged = this.evaluate();
    if (significant || ringChanged || livenessChanged) this.notify();
  }

  private refreshRing(): boolean {
    const pending = pendingRingMembersOf(this.table);
    const pendingKey = ringKey(pending);
    const members = ringMembersOf(this.table);
    const key = ringKey(members);
    let changed = false;
    if (key !== this.ringCacheKey) {
      this.ringCache = this.buildRing(members);
      this.ringCacheKey = key;
      this.log.info({ members: members.map((m) => m.id), checksum: this.ringCache.checksum }, 'ring rebuilt');
      changed = true;
    }
    if (pendingKey !== this.pendingCacheKey) {
      this.pendingCache = pendingKey === this.ringCacheKey ? this.ringCache : this.buildRing(pending);
      this.pendingCacheKey = pendingKey;
      changed = true;
    } else if (pendingKey === this.ringCacheKey && this.pendingCache !== this.ringCache) {
      // The ring caught up with the pending one: share the object so `pending === ring` holds.
      this.pendingCache = this.ringCache;
    }
    return changed;
  }

  private buildRing(members: ReturnType<typeof ringMembersOf>): Ring {
    return buildRing(members, this.partitionBits === undefined ? { n: this.n } : { n: this.n, partitionBits: this.partitionBits });
  }

  /**
   * True when our own round is long overdue: this node stalled, so the silence it measures
   * since then is its own, not its peers'. The next round forgives it.
   */
  private stalled(now: number): boolean {
    return (
      this.running && this.lastRoundAt !== undefined && now - this.lastRoundAt > MEMBERSHIP_DEFAULTS.stallIntervals * this.intervalMs
    );
  }

  /** Re-judges every member's liveness; true if any verdict changed. */
  private evaluate(): boolean {
    const now = this.clock.monotonic();
    let changed = false;
    for (const id of this.verdicts.keys()) {
      const r = this.table.get(id);
      if (r === undefined || r.state === 'removed') {
        this.verdicts.delete(id);
        changed = true;
      }
    }
    if (this.stalled(now)) return changed;
    for (const r of this.table.values()) {
      if (r.id === this.self || r.state === 'removed') continue;
      const up = this.detector.isAvailable(r.id, now);
      const was = this.verdicts.get(r.id);
      if (was === up) continue;
      this.verdicts.set(r.id, up);
      changed = true;
      if (was !== undefined) {
        this.log.info({ member: r.id, phi: this.detector.phi(r.id, now) }, up ? 'member is up' : 'member is down');
      }
    }
    return changed;
  }

  private notify(): void {
    for (const l of [...this.listeners]) {
      try {
        l();
      } catch (err) {
        this.log.warn({ err }, 'membership listener threw');
      }
    }
  }

  // ---- persistence -----------------------------------------------------------------------

  private maybePersist(): void {
    if (!this.dirty || this.persist === undefined || this.persisting !== undefined) return;
    this.persisting = this.flush().finally(() => {
      this.persisting = undefined;
    });
  }

  private async flush(): Promise<void> {
    if (this.persist === undefined) {
      this.dirty = false;
      return;
    }
    this.dirty = false;
    try {
      // What we announce: a life that crashes before announcing itself leaves the previous
      // one's record on disk, so the next start still knows which life the cluster last saw.
      await this.persist(this.gossipRecords());
    } catch (err) {
      this.dirty = true;
      this.log.warn({ err }, 'persisting the member table failed; will retry');
    }
  }
}

/** True when a peer refused our gossip because it came from its own id (see handleGossip). */
function isSelfGossipRefusal(err: unknown): boolean {
  if (!(err instanceof TransportError) || err.kind !== 'remote' || err.status !== 400 || err.body === undefined) return false;
  return new TextDecoder().decode(err.body).includes(SELF_GOSSIP);
}
