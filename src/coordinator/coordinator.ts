/**
 * The request coordinator (a driver): turns a client GET/PUT/DELETE into replica calls,
 * counts answers with QuorumRound, parks hints for replicas that miss a write, and repairs
 * stale replicas after a read. Decisions are pure (quorum.ts, placement.ts); this file does I/O.
 */
import { quorumFailed, RingkvError } from '../errors.js';
import type { MembershipView } from '../membership/types.js';
import { LogLimiter } from '../observability/log-limiter.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { LocalReplica } from '../replica/local-replica.js';
import type { Ring } from '../ring/types.js';
import type { Clock } from '../runtime/clock.js';
import type { TimerHandle, Timers } from '../runtime/timers.js';
import type { InternalHandler, Transport } from '../transport/transport.js';
import { TransportError } from '../transport/transport.js';
import {
  contextAfterWrite,
  decodeContext,
  encodeContext,
  encodeObject,
  isCorruptObject,
  isStale,
  merge,
  mergeKeepsIncoming,
  type VersionedObject,
  type VersionStamp,
  type VersionVector,
  type WriteValue,
} from '../version/index.js';
import { LatencyWindow } from './latency-window.js';
import {
  decodeForwardedPut,
  decodeString,
  encodeForwardedPut,
  encodeString,
  type ReplicaAnswer,
  ROUTES,
} from './messages.js';
import { planReplicas, type ReplicaSlot } from './placement.js';
import { effectiveQuorum, QuorumRound } from './quorum.js';
import { ReplicaClient } from './replica-client.js';

export interface CoordinatorInit {
  readonly n: number;
  readonly r: number;
  readonly w: number;
  readonly hintedHandoff: boolean;
  /** Read repairs allowed in flight at once; beyond it repairs are skipped (anti-entropy catches up). */
  readonly maxReadRepairs?: number;
  /**
   * Time a forwarding node keeps back from what is left of the request's timeout when it
   * hands a write to an owner, at most a tenth of it (see forwardedTimeoutMs): the owner
   * coordinates within the rest, so its own 503, which says how many replicas stored the
   * write, gets back before the forwarding node's deadline. Default 500.
   */
  readonly forwardMarginMs?: number;
}

export const COORDINATOR_DEFAULTS = { maxReadRepairs: 256, forwardMarginMs: 500 } as const;

/** At most this share of a forwarded write's remaining budget is kept back (see forwardMarginMs). */
const FORWARD_MARGIN_SHARE = 0.1;

/**
 * The timeout a forwarded write's coordinator gets when `leftMs` of the request's own budget
 * is left: less a margin for its reply, so the forwarding node, which waits `leftMs` at most,
 * hears the coordinator's answer (a 503 with its count, say) rather than timing out itself.
 * At least 1 (a whole ms: the message carries an integer).
 */
export function forwardedTimeoutMs(leftMs: number, marginMs: number): number {
  return Math.max(1, Math.floor(leftMs - Math.min(marginMs, leftMs * FORWARD_MARGIN_SHARE)));
}

export interface CoordinatorComponents {
  readonly membership: MembershipView;
  readonly transport: Transport;
  readonly replica: LocalReplica;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly log: Logger;
  readonly metrics: Metrics;
}

export interface ReadResult {
  /** The merged object from the replicas that answered, or undefined if none had the key. */
  readonly object: VersionedObject | undefined;
}

/** Resolves when every promise settles or the deadline passes, whichever comes first. */
function withDeadline<T>(timers: Timers, p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return new Promise((resolve, reject) => {
    const h = timers.setTimeout(() => resolve('timeout'), ms);
    p.then(
      (v) => {
        h.cancel();
        resolve(v);
      },
      (e: unknown) => {
        h.cancel();
        reject(e);
      },
    );
  });
}

/**
 * One deadline for several awaits in a row: a single timer, which each `race` runs against
 * (a write's own store write, then its replica round, share its timeout).
 */
class Deadline {
  readonly #handle: TimerHandle;
  readonly #expired: Promise<'timeout'>;

  constructor(timers: Timers, ms: number) {
    let fire!: () => void;
    this.#expired = new Promise((resolve) => {
      fire = () => resolve('timeout');
    });
    this.#handle = timers.setTimeout(fire, ms);
  }

  /** `p`'s outcome, or 'timeout' if the deadline passes first (at once if it has passed). */
  race<T>(p: Promise<T>): Promise<T | 'timeout'> {
    return Promise.race([p, this.#expired]);
  }

  cancel(): void {
    this.#handle.cancel();
  }
}

/**
 * The 503 of a node that knows no ring yet (joining, before its first exchange): a quorum
 * failure like any (0 answered), whose message says why, for an operator whose seeds are
 * down while /v1/health says ok.
 */
function notJoined(op: 'read' | 'write', needed: number): RingkvError {
  return new RingkvError(
    'QUORUM_FAILED',
    `${op} quorum not met: this node has not joined its cluster yet (it has heard from no seed or peer), ` +
      `so it knows no replica of the key; 0 of ${needed} required replicas answered` +
      (op === 'write' ? '; nothing was stored' : ''),
    { answered: 0, needed },
  );
}

/** Every version the replicas answered, merged (undefined if none had the key). */
function mergeReplies(replies: Map<ReplicaSlot, VersionedObject | undefined>): VersionedObject | undefined {
  let merged: VersionedObject | undefined;
  for (const v of replies.values()) if (v) merged = merged ? merge(merged, v) : v;
  return merged;
}

/** Order of peers for `self`'s reads: ids after self's (ascending), then the rest (ascending). */
function readPreference(self: string, a: string, b: string): number {
  const afterA = a > self;
  const afterB = b > self;
  if (afterA !== afterB) return afterA ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function wholeAnswer(object: VersionedObject | undefined): ReplicaAnswer {
  return { object };
}

/** True if some replica's answer, whole or version only, is older than the merge of all answers. */
function anyStale(
  replies: ReadonlyMap<ReplicaSlot, VersionedObject | undefined>,
  stamps: ReadonlyMap<ReplicaSlot, VersionStamp>,
  merged: VersionedObject,
): boolean {
  for (const v of replies.values()) if (isStale(v, merged)) return true;
  for (const v of stamps.values()) if (isStale(v, merged)) return true;
  return false;
}

/**
 * Version-only answers that hold something the whole answers lack (merging them would change
 * `merged`): those replicas must be read whole. Usually none.
 */
function uncoveredStamps(
  stamps: ReadonlyMap<ReplicaSlot, VersionStamp>,
  merged: VersionedObject | undefined,
): ReplicaSlot[] {
  const out: ReplicaSlot[] = [];
  for (const [slot, stamp] of stamps) if (merged === undefined || !mergeKeepsIncoming(stamp, merged)) out.push(slot);
  return out;
}

/** Every answer's version, whole objects and version-only answers together (for repair); no copy. */
function* answersOf(
  replies: ReadonlyMap<ReplicaSlot, VersionedObject | undefined>,
  stamps: ReadonlyMap<ReplicaSlot, VersionStamp>,
): Generator<readonly [ReplicaSlot, VersionStamp | undefined]> {
  yield* replies;
  yield* stamps;
}

const NO_OWNERS: readonly string[] = [];

/** The owners `self` parks hints for along with its own copy (see coordinatePut); usually none. */
function localHintOwners(slots: readonly ReplicaSlot[], self: string): readonly string[] {
  let out: string[] | undefined;
  for (const s of slots) {
    if (!((s.target === self && s.hintFor) || s.suspect)) continue;
    if (out === undefined) out = [];
    out.push(s.owner);
  }
  return out ?? NO_OWNERS;
}

export class Coordinator {
  private repairsInFlight = 0;
  /** Work that outlives the request that started it (replica sends after quorum, hints). */
  private readonly background = new Set<Promise<unknown>>();
  private readonly maxReadRepairs: number;
  /** Answers from peers this node cannot read (not damage): logged at most once a minute. */
  private readonly unreadableLog: LogLimiter;
  private readonly replicas: ReplicaClient;
  /** Recent remote replica read times: when a read is late enough to ask one more replica. */
  private readonly readLatency = new LatencyWindow();

  constructor(
    private readonly c: CoordinatorComponents,
    private readonly init: CoordinatorInit,
  ) {
    this.maxReadRepairs = init.maxReadRepairs ?? COORDINATOR_DEFAULTS.maxReadRepairs;
    this.unreadableLog = new LogLimiter(c.clock, 60_000);
    this.replicas = new ReplicaClient(
      { transport: c.transport, replica: c.replica, membership: c.membership },
      { hintedHandoff: init.hintedHandoff },
    );
  }

  /** Track a promise that runs past its request, so shutdown can wait for it. */
  private track(p: Promise<unknown>): void {
    // One `then` for both outcomes (never rejects): two replica sends per write pass here.
    const done = (): void => {
      this.background.delete(t);
    };
    const t = p.then(done, done);
    this.background.add(t);
  }

  /** Wait (at most `ms`) for background replica sends, hint parking and read repairs. */
  async drain(ms = 5000): Promise<void> {
    const end = this.c.clock.monotonic() + ms;
    // Loop: a finishing send may start new work (a failed replica write parks a hint).
    while (this.background.size > 0) {
      const left = end - this.c.clock.monotonic();
      if (left <= 0) return;
      await withDeadline(this.c.timers, Promise.all([...this.background]), left);
    }
  }

  /** The internal routes this coordinator serves. */
  handlers(): Map<string, InternalHandler> {
    return new Map<string, InternalHandler>([
      [ROUTES.put, (b) => this.onForwardedPut(b)],
      ...this.replicas.handlers(),
    ]);
  }

  // ---------------------------------------------------------------- writes

  /**
   * Write (or delete) a key. The version is minted by a replica: this node if it is one,
   * otherwise the first reachable replica, reached in one forwarding hop.
   * Returns the clock of the new version (the client's next context). `decoded` is `context`
   * already decoded, when the caller has validated it (the public API does): then this node
   * does not decode it again.
   *
   * `opts.timeoutMs` bounds the whole call, forwarded or not: owners that turn out to be
   * unreachable (a connect that times out takes time too) are tried within it, each with
   * what is left, and so is this node's own write when none could be reached.
   */
  async put(
    key: string,
    write: WriteValue,
    context: string,
    opts: { w: number; timeoutMs: number },
    decoded?: VersionVector,
  ): Promise<VersionVector> {
    const ring = this.c.membership.ring();
    const partition = ring.partitionOf(key);
    const pref = ring.preferenceList(partition);
    const self = this.c.membership.self;
    if (pref.includes(self)) return this.coordinatePut(key, partition, write, context, opts, decoded);

    // Forwarding only (this node is no replica): one clock read per owner tried.
    const end = this.c.clock.monotonic() + opts.timeoutMs;
    const marginMs = this.init.forwardMarginMs ?? COORDINATOR_DEFAULTS.forwardMarginMs;
    for (const id of pref) {
      if (!this.c.membership.isUp(id)) continue;
      const address = this.c.membership.member(id)?.address;
      if (!address) continue;
      const leftMs = end - this.c.clock.monotonic();
      if (leftMs < 1) throw this.forwardBudgetSpent(opts.w, pref.length);
      try {
        const reply = await this.c.transport.send(
          address,
          ROUTES.put,
          encodeForwardedPut({ key, write, context, w: opts.w, timeoutMs: forwardedTimeoutMs(leftMs, marginMs) }),
          { timeoutMs: leftMs },
        );
        return decodeContext(decodeString(reply));
      } catch (err) {
        if (err instanceof TransportError && err.kind === 'unreachable') continue;
        throw this.forwardError(err, opts.w);
      }
    }
    // No replica could be reached at all: mint here and hold the write for the owners (or,
    // with no ring at all, refuse it: see coordinatePut), within what is left of the timeout.
    const leftMs = end - this.c.clock.monotonic();
    if (leftMs < 1) throw this.forwardBudgetSpent(opts.w, pref.length);
    return this.coordinatePut(key, partition, write, context, { w: opts.w, timeoutMs: leftMs }, decoded);
  }

  /**
   * The 503 of a write whose timeout ran out while the owners it was to be forwarded to
   * failed to connect: nothing was stored anywhere (each failure proved the write unsent).
   */
  private forwardBudgetSpent(w: number, replicas: number): RingkvError {
    this.c.metrics.quorumFailures.inc({ op: 'write' });
    const needed = effectiveQuorum(w, replicas);
    return new RingkvError(
      'QUORUM_FAILED',
      `write quorum not met: 0 of ${needed} required replicas answered in time (no replica of the key could be reached); nothing was stored`,
      { answered: 0, needed },
    );
  }

  private forwardError(err: unknown, w: number): RingkvError {
    if (err instanceof TransportError && err.kind === 'remote' && err.body) {
      try {
        const parsed = JSON.parse(new TextDecoder().decode(err.body)) as {
          error?: { code?: string; message?: string; answered?: number; needed?: number };
        };
        const e = parsed.error;
        if (e?.code === 'QUORUM_FAILED' && typeof e.answered === 'number' && typeof e.needed === 'number')
          return quorumFailed('write', e.answered, e.needed);
        if (e?.code && e.message && e.code in { BAD_CONTEXT: 1, BAD_REQUEST: 1, VALUE_TOO_LARGE: 1 })
          return new RingkvError(e.code as 'BAD_REQUEST', e.message);
      } catch {
        // fall through to the generic unknown-outcome error
      }
    }
    this.c.log.warn({ err: String(err) }, 'forwarded write failed with unknown outcome');
    return quorumFailed('write', 0, w);
  }

  private async coordinatePut(
    key: string,
    partition: number,
    write: WriteValue,
    contextStr: string,
    opts: { w: number; timeoutMs: number },
    decoded?: VersionVector,
  ): Promise<VersionVector> {
    const context = decoded ?? (contextStr === '' ? {} : decodeContext(contextStr));
    const self = this.c.membership.self;
    const { ring, pref, slots } = this.plan(partition);
    if (pref.length === 0) {
      // No ring: this node has not joined its cluster yet (a node without seeds is a ring of
      // one from the start), so it knows no replica of the key, itself included. Storing the
      // write here and counting it would acknowledge any W with one copy on a node that owns
      // nothing.
      this.c.metrics.quorumFailures.inc({ op: 'write' });
      throw notJoined('write', opts.w);
    }
    const needed = effectiveQuorum(opts.w, pref.length);

    // Hints this node parks atomically with its own copy: owners it stands in for, and
    // suspected owners with no stand-in (if such an owner does ack, delivering the hint later
    // is a harmless idempotent merge; if it doesn't, the hint is already durable).
    const localHints = this.init.hintedHandoff ? localHintOwners(slots, self) : NO_OWNERS;
    const minting = this.c.replica.coordinate(partition, key, context, write, this.c.clock.now(), localHints);
    // The timeout covers this node's own write too: a stalled disk or a key lock held long
    // must not keep the client waiting past it. One timer for the whole write.
    const deadline = new Deadline(this.c.timers, opts.timeoutMs);
    try {
      const minted = await deadline.race(minting);
      if (minted === 'timeout') {
        // The write may still land here; when it does, it goes to the other replicas as usual
        // (sends, hints), so it is not left on this node alone.
        this.track(
          minting.then(
            ({ object }) => this.replicate(ring, partition, key, slots, object, needed, opts.timeoutMs).done,
            () => undefined,
          ),
        );
        this.c.metrics.quorumFailures.inc({ op: 'write' });
        throw quorumFailed('write', 0, needed);
      }
      const { object, dot } = minted;
      const { round, done, healthySends } = this.replicate(ring, partition, key, slots, object, needed, opts.timeoutMs);
      const outcome = await deadline.race(done);
      // Failed early because a suspected replica cannot answer: let the healthy ones finish,
      // so the 503 counts every replica that did store the write (or, if the detector was
      // wrong, the write succeeds after all). Suspects are not awaited: failing fast matters.
      if (outcome !== 'timeout' && round.state === 'failed') await deadline.race(Promise.allSettled(healthySends));
      // Hand back what the client read plus its own write, never object.clock: that would also
      // cover concurrent siblings the client has not seen, and its next write would drop them.
      if (outcome !== 'timeout' && round.state === 'ok') return contextAfterWrite(context, object, dot);
      this.c.metrics.quorumFailures.inc({ op: 'write' });
      throw quorumFailed('write', round.answered, needed);
    } finally {
      deadline.cancel();
    }
  }

  /**
   * Send a version this node has stored to every replica slot (counting itself), parking
   * hints for the owners it cannot reach, and to owners gaining the partition. `done`
   * resolves once the round is decided; `healthySends` are the sends to non-suspects.
   */
  private replicate(
    ring: Ring,
    partition: number,
    key: string,
    slots: readonly ReplicaSlot[],
    object: VersionedObject,
    needed: number,
    timeoutMs: number,
  ): { round: QuorumRound; done: Promise<void>; healthySends: Promise<unknown>[] } {
    const self = this.c.membership.self;
    const round = new QuorumRound(needed, slots.length);
    const encoded = encodeObject(object);
    const healthySends: Promise<unknown>[] = [];
    const done = new Promise<void>((resolve) => {
      const check = (): void => {
        if (round.state !== 'pending') resolve();
      };
      for (const slot of slots) {
        if (slot.target === self) {
          round.ack();
          check();
          continue;
        }
        const address = this.c.membership.member(slot.target)?.address;
        if (!address) {
          round.fail();
          this.parkHint(partition, key, slot.owner);
          check();
          continue;
        }
        const sent = this.replicas.write(address, key, object, slot.hintFor ? [slot.owner] : [], timeoutMs, encoded);
        this.track(sent);
        if (!slot.suspect) healthySends.push(sent);
        sent.then(
          () => {
            this.c.metrics.replicaRequests.inc({ route: ROUTES.replicaWrite, outcome: 'ok' });
            round.ack();
            check();
          },
          (err: unknown) => {
            this.c.metrics.replicaRequests.inc({ route: ROUTES.replicaWrite, outcome: 'error' });
            this.c.log.debug({ peer: slot.target, err: String(err) }, 'replica write failed');
            round.fail();
            if (!slot.suspect) this.parkHint(partition, key, slot.owner);
            check();
          },
        );
      }
      check();
    });

    this.copyToGainingOwners(ring, partition, key, object, encoded, timeoutMs);
    return { round, done, healthySends };
  }

  /**
   * While members join or leave, nodes that gain this partition in the pending ring also get
   * every write (not counted toward W), so nothing written during their transfer is missed.
   */
  private copyToGainingOwners(
    ring: Ring,
    partition: number,
    key: string,
    object: VersionedObject,
    encoded: Uint8Array,
    timeoutMs: number,
  ): void {
    const pending = this.c.membership.pendingRing();
    if (pending === ring) return;
    const self = this.c.membership.self;
    const current = ring.preferenceList(partition);
    for (const id of pending.preferenceList(partition)) {
      if (id === self || current.includes(id)) continue;
      const address = this.c.membership.member(id)?.address;
      if (!address || !this.c.membership.isUp(id)) {
        this.parkHint(partition, key, id);
        continue;
      }
      const sent = this.replicas.write(address, key, object, [], timeoutMs, encoded);
      this.track(sent);
      sent.catch(() => this.parkHint(partition, key, id));
    }
  }

  /** Keep a hint here for an owner whose replica write failed (this node holds the object). */
  private parkHint(partition: number, key: string, owner: string): void {
    if (!this.init.hintedHandoff || owner === this.c.membership.self) return;
    this.track(
      this.c.replica.addHints(partition, key, [owner]).catch((err: unknown) => {
        this.c.log.error({ err: String(err), key }, 'could not park hint');
      }),
    );
  }

  /** Who serves each replica slot of a partition right now (pure placement, live verdicts). */
  private plan(partition: number): { ring: Ring; pref: readonly string[]; slots: ReplicaSlot[] } {
    const ring = this.c.membership.ring();
    const pref = ring.preferenceList(partition);
    const slots = planReplicas({
      preferenceList: pref,
      fullOrder: () => ring.fullOrder(partition),
      self: this.c.membership.self,
      isUp: (id) => this.c.membership.isUp(id),
      useFallbacks: this.init.hintedHandoff,
      zoneOf: (id) => this.c.membership.member(id)?.zone,
      leaving: (id) => this.c.membership.member(id)?.state === 'leaving',
    });
    return { ring, pref, slots };
  }

  // ---------------------------------------------------------------- reads

  /**
   * Read a key from R replicas, not all N: this node first when it holds a copy (a local read
   * costs no message), then the others in a fixed order (see readOrder), stand-ins after the
   * owners that are up, suspects last. A replica that fails is replaced at once by the next
   * one not yet asked; one that is merely slow is backed up by the next one after the recent
   * p99 of replica reads (a speculative read), so a sick replica costs a read one extra
   * message instead of its whole timeout. Replicas not asked are still repaired: when the
   * answers disagree, the rest are read after the reply and every stale primary gets the
   * merged version (R = N asks everyone, as before).
   */
  async get(key: string, opts: { r: number; timeoutMs: number }): Promise<ReadResult> {
    const partition = this.c.membership.ring().partitionOf(key);
    const { pref, slots } = this.plan(partition);
    if (pref.length === 0) {
      // No ring: this node has not joined its cluster yet (see coordinatePut). Its own copy
      // is no answer: "not found" here says nothing of a key the cluster may hold.
      this.c.metrics.quorumFailures.inc({ op: 'read' });
      throw notJoined('read', opts.r);
    }
    const order = this.readOrder(slots);
    const needed = effectiveQuorum(opts.r, Math.max(1, pref.length));
    const round = new QuorumRound(needed, order.length);
    const replies = new Map<ReplicaSlot, VersionedObject | undefined>();
    // When this node holds a copy it reads it whole (first in `order`), so the peers need only
    // say which version they hold: see ReplicaClient.readVersion and resolveVersions.
    const versionsOnly = order[0]?.target === this.c.membership.self;
    // This node's own copy once read: a peer's answer of that same version is not decoded.
    const own = versionsOnly ? (): VersionedObject | undefined => replies.get(order[0] as ReplicaSlot) : undefined;
    const stamps = new Map<ReplicaSlot, VersionStamp>();
    /** Replicas whose stored copy failed its checksum: replaced after the answer. */
    let corrupt: ReplicaSlot[] | undefined;
    const reads: Promise<void>[] = [];
    const started = this.c.clock.monotonic();
    let asked = 0;

    let resolveQuorum!: () => void;
    const quorumReached = new Promise<void>((r) => {
      resolveQuorum = r;
    });
    const ask = (): void => {
      const slot = order[asked++];
      if (slot === undefined) return;
      reads.push(
        this.readFrom(slot.target, partition, key, opts.timeoutMs, versionsOnly, own).then(
          (answer) => {
            if (answer.stamp !== undefined) stamps.set(slot, answer.stamp);
            else replies.set(slot, answer.object);
            round.ack();
            if (round.state !== 'pending') resolveQuorum();
          },
          (err: unknown) => {
            if (slot.target !== this.c.membership.self)
              this.c.metrics.replicaRequests.inc({ route: versionsOnly ? ROUTES.replicaReadVersion : ROUTES.replicaRead, outcome: 'error' });
            // A peer sends its stored bytes undecoded, so a corrupt copy shows up here, at the
            // reader: name it loudly (the peer itself logs nothing), ask another replica, and
            // replace the copy once the read is answered.
            if (isCorruptObject(err)) {
              if (corrupt === undefined) corrupt = [];
              corrupt.push(slot);
              this.c.log.error({ peer: slot.target, key, err: String(err) }, 'replica holds a corrupt copy; read repair replaces it');
            } else if (err instanceof RingkvError && err.code === 'INTERNAL') {
              // An answer this node cannot read that is not damage (a format it does not know,
              // during a rolling upgrade, say): not replaced, and logged once a minute at most.
              const unloggedSince = this.unreadableLog.take();
              if (unloggedSince !== undefined)
                this.c.log.error({ peer: slot.target, key, err: err.message, unloggedSince }, 'replica answered a copy this node cannot read');
            } else this.c.log.debug({ peer: slot.target, err: String(err) }, 'replica read failed');
            round.fail();
            if (round.state !== 'pending') resolveQuorum();
            else ask();
          },
        ),
      );
    };
    for (let i = 0; i < needed; i++) ask();

    // Still short of R after a normal read's time: ask one more replica, and again each
    // such interval, until R answered or everyone was asked.
    const speculateAfterMs = this.readLatency.speculateAfterMs();
    let speculation: TimerHandle | undefined;
    const arm = (): void => {
      speculation = this.c.timers.setTimeout(() => {
        if (round.state !== 'pending' || asked >= order.length) return;
        this.c.metrics.speculativeReads.inc();
        ask();
        arm();
      }, speculateAfterMs);
    };
    if (asked < order.length) arm();
    const outcome = await withDeadline(this.c.timers, quorumReached, opts.timeoutMs);
    speculation?.cancel();
    if (outcome === 'timeout' || round.state !== 'ok') {
      this.c.metrics.quorumFailures.inc({ op: 'read' });
      throw quorumFailed('read', round.answered, needed);
    }
    // Usually every version-only answer is covered by the whole ones: no await at all then.
    let object = mergeReplies(replies);
    let complete = true;
    let failedWhole = 0;
    // Version-only answers that came in while the whole reads below were out (a slow or
    // speculative read) and hold something their merge lacks. The quorum was met without
    // them, so the answer stands; they are read whole and repaired after it, like late ones.
    let arrivedMeanwhile = false;
    const uncovered = uncoveredStamps(stamps, object);
    if (uncovered.length > 0) {
      const remainingMs = Math.max(1, opts.timeoutMs - (this.c.clock.monotonic() - started));
      ({ merged: object, complete, failed: failedWhole } = await this.readWhole(partition, key, uncovered, replies, stamps, remainingMs));
      arrivedMeanwhile = complete && uncoveredStamps(stamps, object).length > 0;
    }
    if (!complete) {
      this.c.metrics.quorumFailures.inc({ op: 'read' });
      // Every replica that answered, less those whose whole read then failed (a replica whose
      // version the others already cover answered in full, though it stays a version).
      throw quorumFailed('read', round.answered - failedWhole, needed);
    }

    // Read repair happens after the answer, off the request path.
    const unasked = order.slice(asked);
    // Usually every replica asked has answered by now (and was resolved above): no need for a
    // timer to wait on them, nor to resolve and merge their answers again.
    const late = asked !== replies.size + stamps.size;
    // The usual read: every answer is in and none is stale, so there is nothing to repair and
    // nobody else to read. Say so now rather than in a background step (an async frame and
    // two passes over the answers per read, for nothing).
    if (!late && !arrivedMeanwhile && corrupt === undefined && (object === undefined || !anyStale(replies, stamps, object)))
      return { object };
    const answered = late ? withDeadline(this.c.timers, Promise.allSettled(reads), opts.timeoutMs) : Promise.resolve();
    void answered.then(async () => {
      // Version-only answers that came late and hold something the others lack: fetch them whole.
      let merged =
        late || arrivedMeanwhile ? (await this.resolveVersions(partition, key, replies, stamps, opts.timeoutMs)).merged : object;
      if (merged !== undefined && unasked.length > 0 && anyStale(replies, stamps, merged)) {
        // Whoever was not asked may be stale too: read them before repairing.
        await withDeadline(
          this.c.timers,
          Promise.allSettled(
            unasked.map(async (slot) => {
              replies.set(slot, (await this.readFrom(slot.target, partition, key, opts.timeoutMs, false)).object);
            }),
          ),
          opts.timeoutMs,
        );
        merged = mergeReplies(replies);
      }
      if (merged === undefined) return;
      this.readRepair(partition, key, answersOf(replies, stamps), pref, merged);
      for (const slot of corrupt ?? []) if (pref.includes(slot.target)) this.repair(slot.target, partition, key, merged, true);
    });
    return { object };
  }

  /**
   * Turn version-only answers into whole ones where the values matter. A replica whose version
   * the whole answers already cover (merging it would change nothing: the usual case) stays a
   * version; one that holds something they lack is read again, whole, and moves to `replies`.
   * Returns the merge of the whole answers, and `complete: false` if such a read failed (its
   * values are then missing from the merge).
   */
  private async resolveVersions(
    partition: number,
    key: string,
    replies: Map<ReplicaSlot, VersionedObject | undefined>,
    stamps: Map<ReplicaSlot, VersionStamp>,
    timeoutMs: number,
  ): Promise<{ merged: VersionedObject | undefined; complete: boolean; failed: number }> {
    const merged = mergeReplies(replies);
    const needed = uncoveredStamps(stamps, merged);
    if (needed.length === 0) return { merged, complete: true, failed: 0 };
    return this.readWhole(partition, key, needed, replies, stamps, timeoutMs);
  }

  /** Read `slots` whole (they answered with versions only); see resolveVersions. `failed` counts the reads that failed. */
  private async readWhole(
    partition: number,
    key: string,
    slots: readonly ReplicaSlot[],
    replies: Map<ReplicaSlot, VersionedObject | undefined>,
    stamps: Map<ReplicaSlot, VersionStamp>,
    timeoutMs: number,
  ): Promise<{ merged: VersionedObject | undefined; complete: boolean; failed: number }> {
    const results = await Promise.allSettled(
      slots.map(async (slot) => {
        try {
          const answer = await this.readFrom(slot.target, partition, key, timeoutMs, false);
          stamps.delete(slot);
          replies.set(slot, answer.object);
        } catch (err) {
          this.c.metrics.replicaRequests.inc({ route: ROUTES.replicaRead, outcome: 'error' });
          this.c.log.debug({ peer: slot.target, key, err: String(err) }, 'whole read after a version read failed');
          throw err;
        }
      }),
    );
    const failed = results.filter((r) => r.status === 'rejected').length;
    return { merged: mergeReplies(replies), complete: failed === 0, failed };
  }

  /**
   * The order in which a read asks replicas: self, then the others, suspects last. The others
   * come in one fixed order per node: the member ids after this node's first, then the ones
   * before it (n1 asks n2 before n3, n2 asks n3, n3 asks n1). So a coordinator's version reads
   * go to one peer, and share its batches: rotating per read split them over two links, and
   * each link's batches held half as many (5.0 reads per batch rotating, 9.2 fixed, in one GET
   * run each; in `bench:ab`, 4 rounds, GET 118 -> 107 µs of server CPU per request, 3 of 4
   * rounds cheaper). Load still spreads: every node is some node's first choice, and replica
   * sets differ across partitions. A slow first choice is backed up by a speculative read, a
   * failing one replaced at once, a suspect asked last.
   *
   * Stand-ins (while an owner is down) come after every owner that is up, this node's own
   * stand-in copy first: a stand-in holds only what was written since the owner went down,
   * so its "not found" counted toward R in place of an up owner's answer would let a read
   * miss a write that W owners acknowledged before the crash: R + W > N only makes the
   * replicas read and those written overlap if the read asks owners.
   */
  private readOrder(slots: readonly ReplicaSlot[]): ReplicaSlot[] {
    const self = this.c.membership.self;
    const local: ReplicaSlot[] = [];
    const others: ReplicaSlot[] = [];
    const suspects: ReplicaSlot[] = [];
    // Only while an owner is down: no array for it on the usual read.
    let standIns: ReplicaSlot[] | undefined;
    for (const slot of slots) {
      if (slot.hintFor) {
        if (standIns === undefined) standIns = [];
        standIns.push(slot);
      } else if (slot.target === self) local.push(slot);
      else if (slot.suspect) suspects.push(slot);
      else others.push(slot);
    }
    if (others.length > 1) others.sort((a, b) => readPreference(self, a.target, b.target));
    if (standIns === undefined) return [...local, ...others, ...suspects];
    standIns.sort((a, b) => (a.target === self ? -1 : b.target === self ? 1 : readPreference(self, a.target, b.target)));
    return [...local, ...others, ...standIns, ...suspects];
  }

  /**
   * One replica's answer; with `versionsOnly` a peer may answer with the version alone, and
   * `own()` (this node's copy, when read) spares decoding an answer of that very version.
   */
  private readFrom(
    target: string,
    partition: number,
    key: string,
    timeoutMs: number,
    versionsOnly: boolean,
    own?: () => VersionedObject | undefined,
  ): Promise<ReplicaAnswer> {
    // This node's own copy: no async frame of its own (it is on every GET's path).
    if (target === this.c.membership.self) return this.c.replica.read(partition, key).then(wholeAnswer);
    return this.readRemote(target, key, timeoutMs, versionsOnly, own);
  }

  private async readRemote(
    target: string,
    key: string,
    timeoutMs: number,
    versionsOnly: boolean,
    own?: () => VersionedObject | undefined,
  ): Promise<ReplicaAnswer> {
    const address = this.c.membership.member(target)?.address;
    if (!address) throw new Error(`unknown member ${target}`);
    const started = this.c.clock.monotonic();
    const answer = versionsOnly
      ? await this.replicas.readVersion(address, key, timeoutMs, own)
      : { object: await this.replicas.read(address, key, timeoutMs) };
    this.readLatency.add(this.c.clock.monotonic() - started);
    this.c.metrics.replicaRequests.inc({ route: versionsOnly ? ROUTES.replicaReadVersion : ROUTES.replicaRead, outcome: 'ok' });
    return answer;
  }

  private readRepair(
    partition: number,
    key: string,
    answers: Iterable<readonly [ReplicaSlot, VersionStamp | undefined]>,
    pref: readonly string[],
    final: VersionedObject,
  ): void {
    for (const [slot, obj] of answers) {
      // Repair primaries only: fallbacks hand their copies back through hints.
      if (pref.includes(slot.target) && isStale(obj, final)) this.repair(slot.target, partition, key, final, false);
    }
  }

  /** One read repair in the background, within the bound on repairs in flight. */
  private repair(target: string, partition: number, key: string, final: VersionedObject, verifyStored: boolean): void {
    if (this.repairsInFlight >= this.maxReadRepairs) {
      this.c.metrics.readRepairs.inc({ outcome: 'skipped' });
      return;
    }
    this.repairsInFlight++;
    const pushed = this.pushTo(target, partition, key, final, verifyStored);
    this.track(pushed);
    pushed
      .then(
        () => this.c.metrics.readRepairs.inc({ outcome: 'ok' }),
        (err: unknown) => {
          this.c.metrics.readRepairs.inc({ outcome: 'error' });
          this.c.log.debug({ peer: target, err: String(err) }, 'read repair failed');
        },
      )
      .finally(() => {
        this.repairsInFlight--;
      });
  }

  /**
   * Merge a version into one replica (local or remote). With `verifyStored`, the replica reads
   * its stored copy rather than trusting its version cache: for a copy found corrupt, which the
   * merge then replaces.
   */
  private async pushTo(target: string, partition: number, key: string, object: VersionedObject, verifyStored: boolean): Promise<void> {
    if (target === this.c.membership.self) {
      await this.c.replica.apply(partition, key, object, [], verifyStored);
      return;
    }
    const address = this.c.membership.member(target)?.address;
    if (!address) throw new Error(`unknown member ${target}`);
    if (verifyStored) await this.replicas.repairVerified(address, partition, key, object, 5000);
    else await this.replicas.write(address, key, object, [], 5000);
  }

  // ---------------------------------------------------------------- internal handlers

  private async onForwardedPut(body: Uint8Array): Promise<Uint8Array> {
    const m = decodeForwardedPut(body);
    const partition = this.c.membership.ring().partitionOf(m.key);
    const clock = await this.coordinatePut(m.key, partition, m.write, m.context, { w: m.w, timeoutMs: m.timeoutMs });
    return encodeString(encodeContext(clock));
  }
}
