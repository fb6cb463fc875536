/**
 * Ownership transfer (a driver). When members join or leave, the ring the cluster is moving
 * to (membership.pendingRing) differs from the current one. Each node then PULLS the
 * partitions it gains from their current owners, in batches, with one request in flight per
 * source (back-pressure) and a cursor persisted after every batch (resume after a restart of
 * either side). Meanwhile the coordinator also writes to the gaining nodes, so nothing written
 * during the move is missed. A joining node turns active only when its pulls are complete; a
 * leaving node removes itself only when every receiver reports its pulls complete. Once the
 * ring has moved, copies a node no longer owns are handed to the owners and then dropped.
 */
import type { Membership } from '../membership/index.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { LocalReplica } from '../replica/local-replica.js';
import type { Clock } from '../runtime/clock.js';
import type { TimerHandle, Timers } from '../runtime/timers.js';
import type { Ring } from '../ring/types.js';
import { compareBytes, objectKeyPartition, parseObjectKey, partitionRange, type Store, utf8 } from '../storage/index.js';
import { type InternalHandler, MAX_MESSAGE_COPY_BYTES, type Transport } from '../transport/transport.js';
import { decodeUnlessCorrupt, type VersionedObject } from '../version/index.js';
import { Reader, Writer } from '../wire.js';
import { encodeWriteBatch, ROUTES } from '../coordinator/messages.js';
import { settleAll } from '../settle.js';
import { foreignRuns, hasBit, type PartitionRun, planId, receivePlan, receivers, toBitmap } from './transfer-plan.js';

/**
 * `bytes` decoded, or undefined (logged with `what`) when the copy is damaged (see
 * isCorruptObject): a transfer or a stray hand-off goes past it instead of failing at the same
 * key on every pass.
 */
function decodeOrSkip(bytes: Uint8Array, key: string, holder: string, log: Logger, what: string): VersionedObject | undefined {
  const object = decodeUnlessCorrupt(bytes);
  if (object === undefined) log.error({ key, holder }, what);
  return object;
}

/** A copy in a pull reply: its size, and the object, undefined when damaged at the source (skipped, logged). */
interface PulledCopy {
  readonly key: string;
  readonly bytes: number;
  readonly object: VersionedObject | undefined;
}

/** A source's answer to one pull request (see Transfers.onPull). */
interface PullReply {
  /** The source has nothing after `next` in the partitions asked for. */
  readonly done: boolean;
  /** Where the next request resumes (empty: where this one did). */
  readonly next: Uint8Array;
  readonly items: readonly PulledCopy[];
}

/** Decodes a pull reply from `source`; throws (BAD_REQUEST) if it is malformed. */
function decodePullReply(reply: Uint8Array, source: string, log: Logger): PullReply {
  const r = new Reader(reply);
  const done = r.uint() === 1;
  const next = Uint8Array.from(r.bytes());
  const n = r.uint();
  const items: PulledCopy[] = [];
  for (let k = 0; k < n; k++) {
    const key = r.str();
    const bytes = r.bytes();
    // A damaged copy at the source: the receiver gets the key from its co-replicas by
    // anti-entropy once it is active.
    items.push({ key, bytes: bytes.length, object: decodeOrSkip(bytes, key, source, log, 'skipping a corrupt copy in a transfer') });
  }
  return { done, next, items };
}

export const TRANSFER_ROUTES = {
  pull: 'xfer-pull',
  status: 'xfer-status',
} as const;

export interface TransferInit {
  /** Pause between passes. */
  readonly intervalMs: number;
  /** Objects per pull reply. */
  readonly batchSize: number;
  /** Keys a source scans per pull request at most (bounds its work per request). */
  readonly maxScan: number;
  readonly timeoutMs: number;
  /** Wait after a plan first appears before pulling, so every coordinator has learnt of it. */
  readonly settleMs: number;
  /**
   * Pull requests to one source that fail in a row before re-plans pass it over for
   * `avoidMs`: its partitions go to another replica that is up, except those of a leaving
   * member, which only it can hand over (see receivePlan); they wait, unsourced, until it
   * serves again or an admin removes it.
   */
  readonly sourceFailures: number;
  readonly avoidMs: number;
}

export const TRANSFER_DEFAULTS: TransferInit = {
  intervalMs: 500,
  batchSize: 256,
  maxScan: 4096,
  timeoutMs: 10_000,
  settleMs: 2000,
  sourceFailures: 3,
  avoidMs: 30_000,
};

interface PullState {
  readonly source: string;
  readonly partitions: number[];
  /** `partitions` as a bitmap (see toBitmap): sent with each pull and saved with its record. */
  readonly bitmap: Uint8Array;
  cursor: Uint8Array | undefined;
  done: boolean;
  /** Pull requests that failed in a row. */
  failures: number;
}

/** What this node receives in one transition (plan id), and from whom. */
interface Plan {
  readonly id: string;
  readonly pulls: PullState[];
  /** Partitions no member that is up can serve yet. */
  readonly unsourced: number[];
  /** Partitions received in this transition, in all. */
  readonly total: number;
  readonly firstSeen: number;
}

const PULL_PREFIX = 'pull/';
/** The range of every pull record's key ('0' follows '/'). */
const PULL_RECORDS = { gte: utf8.encode(PULL_PREFIX), lt: utf8.encode('pull0') };
const EMPTY = new Uint8Array(0);

export class Transfers {
  private readonly init: TransferInit;
  private timer: TimerHandle | undefined;
  private stopped = true;
  private running: Promise<void> | undefined;
  private plan: Plan | undefined;
  /** For a leaving node: partitions still to be received by others (from their status replies). */
  private sendPending = 0;
  private leftAt: number | undefined;
  /** The leave waited on hints parked here (logged once). */
  private waitedOnHints = false;
  private readonly strays: StrayCleaner;
  private ringSum = '';
  private ringSince = 0;
  /** No pull record of a transition that is over is left in the store (see dropPullRecords). */
  private pullRecordsDropped = false;
  /** Set by restartJoin until the next pass has dropped the plan and the pull records. */
  private joinRestarted = false;
  /** Sources whose pulls kept failing, and until when (monotonic ms) plans pass them over. */
  private readonly avoided = new Map<string, number>();
  /** Called once a leaving node has handed everything over and removed itself. */
  onLeft: (() => void) | undefined;

  constructor(
    private readonly c: {
      store: Store;
      replica: LocalReplica;
      membership: Membership;
      transport: Transport;
      timers: Timers;
      clock: Clock;
      log: Logger;
      metrics: Metrics;
    },
    init: Partial<TransferInit> = {},
  ) {
    this.init = { ...TRANSFER_DEFAULTS, ...init };
    this.strays = new StrayCleaner(c);
  }

  /** Partitions this node still has to receive or send (SPEC §2 `transfers.pending`). */
  get pending(): number {
    const recv = this.plan ? this.plan.total - this.completedPartitions() : 0;
    return recv + this.sendPending;
  }

  /**
   * The cluster removed this node while it was down, and it joins afresh: the plan and every
   * pull record go (at the next pass), and until then the join is not complete. Whatever it
   * pulled before misses the writes made while it was out of every ring.
   */
  restartJoin(): void {
    this.joinRestarted = true;
  }

  /** True when this node has nothing left to receive for the current transition. */
  complete(): boolean {
    if (this.joinRestarted) return false;
    const m = this.c.membership;
    const current = m.ring();
    const pending = m.pendingRing();
    if (current === pending) return true;
    if (!this.plan || this.plan.id !== planId(current, pending)) return false;
    return this.plan.unsourced.length === 0 && this.plan.pulls.every((p) => p.done);
  }

  /** Partitions of the plan with every pull done and no source missing (some have several). */
  private completedPartitions(): number {
    if (!this.plan) return 0;
    const open = new Set<number>(this.plan.unsourced);
    for (const p of this.plan.pulls) if (!p.done) for (const x of p.partitions) open.add(x);
    return this.plan.total - open.size;
  }

  handlers(): Map<string, InternalHandler> {
    return new Map<string, InternalHandler>([
      [TRANSFER_ROUTES.pull, (b) => this.onPull(b)],
      [TRANSFER_ROUTES.status, (b) => this.onStatus(b)],
    ]);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    await this.running;
  }

  private schedule(ms: number): void {
    this.timer = this.c.timers.setTimeout(() => {
      this.running = this.pass()
        .catch((err: unknown) => this.c.log.warn({ err: String(err) }, 'transfer pass failed'))
        .finally(() => {
          this.running = undefined;
          this.c.metrics.transfersPending.set(this.pending);
          if (!this.stopped) this.schedule(this.init.intervalMs);
        });
    }, ms);
  }

  /** One pass: refresh the plan, pull a bounded amount, check a leave, clean up strays. */
  async pass(): Promise<void> {
    const m = this.c.membership;
    const current = m.ring();
    const pending = m.pendingRing();
    const now = this.c.clock.monotonic();
    if (current.checksum !== this.ringSum) {
      this.ringSum = current.checksum;
      this.ringSince = now;
    }
    if (this.joinRestarted) {
      this.plan = undefined;
      await this.dropPullRecords();
      this.joinRestarted = false;
    }
    if (current === pending) {
      if (this.plan !== undefined || !this.pullRecordsDropped) await this.dropPullRecords();
      this.plan = undefined;
      this.sendPending = 0;
      // Drop copies we no longer own only once the ring has been stable for a while, so a
      // node that just restarted with an old member table never gives away data by mistake.
      if (now - this.ringSince >= 10 * this.init.settleMs) await this.strays.step();
      return;
    }
    const id = planId(current, pending);
    if (!this.plan || this.plan.id !== id) await this.newPlan(id);
    const plan = this.plan!;
    if (this.c.clock.monotonic() - plan.firstSeen < this.init.settleMs) return;

    for (const pull of plan.pulls) {
      if (this.stopped) return;
      if (!pull.done && this.canServe(pull.source)) await this.pullSome(plan.id, pull);
    }
    // A source may be back for unsourced partitions, and a source that went down (or kept
    // failing) before its pulls finished is replaced by another owner that can serve, so the
    // transition never waits on one node while another replica could serve.
    if (plan.unsourced.length > 0 || plan.pulls.some((p) => !p.done && !this.canServe(p.source))) await this.replan(plan);

    if (m.member(m.self)?.state === 'leaving') await this.checkLeave(current, pending, id);
  }

  private async newPlan(id: string): Promise<void> {
    await this.dropPullRecords(id);
    const m = this.c.membership;
    const { bySource, unsourced, total } = receivePlan(m.ring(), m.pendingRing(), m.self, (x) => this.canServe(x));
    const pulls: PullState[] = [];
    for (const [source, partitions] of bySource) pulls.push(await this.resumePull(id, source, partitions));
    this.plan = { id, pulls, unsourced, total, firstSeen: this.c.clock.monotonic() };
    if (total > 0) this.c.log.info({ plan: id, partitions: total, sources: [...bySource.keys()] }, 'transfer plan');
  }

  /**
   * A member to pull from: up, and not passed over for pulls that kept failing (a node with a
   * broken disk still gossips; without this, a join or leave would wait on it for good).
   */
  private canServe(id: string): boolean {
    const until = this.avoided.get(id);
    if (until !== undefined) {
      if (this.c.clock.monotonic() < until) return false;
      this.avoided.delete(id);
    }
    return this.c.membership.isUp(id);
  }

  /**
   * Deletes the pull records of every transition but `keep` (all of them without one). A
   * record is only good while its transition lasts: the same transition can come back (a join
   * called off and made again moves between the same two rings, so its plan id is the same),
   * and a cursor of the first time would then skip every key written in between, which no
   * coordinator copied to this node (it was no owner-to-be meanwhile). A restart in the middle
   * of a transition keeps its records (its first plan has the same id), unless its first
   * pass finds the ring stable: then they go, and the pulls start over (only a cost).
   */
  private async dropPullRecords(keep?: string): Promise<void> {
    const stale: Uint8Array[] = [];
    for await (const [key, value] of this.c.store.entries('xfer', PULL_RECORDS)) {
      let id: string | undefined;
      try {
        id = new Reader(value).str();
      } catch {
        id = undefined; // unreadable: never resumed from, so dropped too
      }
      if (keep === undefined || id !== keep) stale.push(Uint8Array.from(key));
    }
    if (stale.length > 0) await this.c.store.batch(stale.map((key) => ({ type: 'del' as const, ns: 'xfer' as const, key })));
    this.pullRecordsDropped = true;
  }

  /**
   * Plan again the partitions that have no source, or whose source went down before its
   * pulls finished. Finished pulls, and pulls whose source is up, stay as they are, cursor
   * and all: nothing already received is pulled again because some other node went down.
   */
  private async replan(plan: Plan): Promise<void> {
    const m = this.c.membership;
    const kept = plan.pulls.filter((p) => p.done || this.canServe(p.source));
    const orphans = new Set<number>(plan.unsourced);
    for (const p of plan.pulls) if (!kept.includes(p)) for (const x of p.partitions) orphans.add(x);
    // A partition with several sources (leaving members) keeps the pulls still good.
    const covered = (source: string, partition: number): boolean =>
      kept.some((p) => p.source === source && hasBit(p.bitmap, partition));
    const { bySource, unsourced } = receivePlan(m.ring(), m.pendingRing(), m.self, (x) => this.canServe(x), orphans, covered);
    const pulls = [...kept];
    for (const [source, partitions] of bySource) pulls.push(await this.resumePull(plan.id, source, partitions));
    this.plan = { ...plan, pulls, unsourced };
    if (bySource.size > 0)
      this.c.log.info({ plan: plan.id, partitions: orphans.size - unsourced.length, sources: [...bySource.keys()] }, 'transfer re-planned');
  }

  /**
   * A pull of `partitions` from `source`, resumed from its saved record when that record is
   * for this very plan and these very partitions; otherwise from the start. A cursor is only
   * valid for the partition set it was made with: the source scans its keys in partition
   * order, so a cursor reused for a grown set would skip the added partitions' keys before it.
   */
  private async resumePull(id: string, source: string, partitions: number[]): Promise<PullState> {
    const saved = await this.c.store.get('xfer', utf8.encode(`${PULL_PREFIX}${source}`));
    const bitmap = toBitmap(partitions, this.c.membership.pendingRing().partitions);
    if (saved) {
      const r = new Reader(saved);
      if (r.str() === id) {
        const done = r.uint() === 1;
        const c = r.bytes();
        // Records written before they named their partitions never match.
        if (!r.done() && compareBytes(r.bytes(), bitmap) === 0) {
          return { source, partitions, bitmap, cursor: c.length > 0 ? Uint8Array.from(c) : undefined, done, failures: 0 };
        }
      }
    }
    return { source, partitions, bitmap, cursor: undefined, done: false, failures: 0 };
  }

  private async pullSome(id: string, pull: PullState): Promise<void> {
    const address = this.c.membership.member(pull.source)?.address;
    if (!address) return;
    const bitmap = pull.bitmap;
    // Bounded work per pass so the pass returns and re-plans; back-pressure: one at a time.
    for (let i = 0; i < 16 && !pull.done && !this.stopped; i++) {
      const req = new Writer(bitmap.length + 64)
        .str(id)
        .bytes(bitmap)
        .bytes(pull.cursor ?? EMPTY)
        .uint(this.init.batchSize)
        .uint(this.init.maxScan)
        .finish();
      let reply: PullReply;
      try {
        // Decoded whole before anything is applied: a reply that does not decode (a peer with
        // a bug, or another version's format) is a failed pull like one that never came. Thrown
        // from the middle of the pass instead, it would end every pass at this source, so the
        // pulls after it would never run and it would never be passed over for another replica.
        reply = decodePullReply(
          await this.c.transport.send(address, TRANSFER_ROUTES.pull, req, { timeoutMs: this.init.timeoutMs, idempotent: true }),
          pull.source,
          this.c.log,
        );
      } catch (err) {
        pull.failures++;
        if (pull.failures >= this.init.sourceFailures) {
          pull.failures = 0;
          this.avoided.set(pull.source, this.c.clock.monotonic() + this.init.avoidMs);
          this.c.log.warn({ source: pull.source, err: String(err) }, 'transfer pulls keep failing; taking these partitions from another replica');
        } else this.c.log.info({ source: pull.source, err: String(err) }, 'transfer pull interrupted; will resume');
        return;
      }
      pull.failures = 0;
      const { done, next, items } = reply;
      const ring = this.c.membership.ring();
      for (const { key, bytes, object } of items) {
        this.c.metrics.transferBytes.inc(bytes);
        if (object !== undefined) await this.c.replica.apply(ring.partitionOf(key), key, object);
      }
      this.c.metrics.transferKeys.inc(items.length);
      pull.cursor = next.length > 0 ? next : pull.cursor;
      pull.done = done;
      await this.c.store.put(
        'xfer',
        utf8.encode(`${PULL_PREFIX}${pull.source}`),
        new Writer(bitmap.length + 128).str(id).uint(done ? 1 : 0).bytes(pull.cursor ?? EMPTY).bytes(bitmap).finish(),
      );
      if (done) this.c.log.info({ source: pull.source, partitions: pull.partitions.length }, 'transfer from source complete');
    }
  }

  /** A leaving node may go once every receiver reports its pulls for this plan complete. */
  private async checkLeave(
    current: ReturnType<Membership['ring']>,
    pending: ReturnType<Membership['ring']>,
    id: string,
  ): Promise<void> {
    const m = this.c.membership;
    let left = 0;
    for (const r of receivers(current, pending)) {
      if (r === m.self) continue;
      const address = m.member(r)?.address;
      if (!address || !m.isUp(r)) {
        left += 1;
        continue;
      }
      try {
        const reply = new Reader(
          await this.c.transport.send(address, TRANSFER_ROUTES.status, new Writer(64).str(id).finish(), {
            timeoutMs: this.init.timeoutMs,
          }),
        );
        const same = reply.uint() === 1;
        const remaining = reply.uint();
        left += same ? remaining : 1;
      } catch {
        left += 1;
      }
    }
    this.sendPending = left;
    // Hints parked here go with this node unless delivered or handed to a stand-in first
    // (HintDelivery does either); each stands for a copy of an acknowledged write.
    const hints = this.c.replica.pendingHints;
    if (left === 0 && hints > 0 && !this.waitedOnHints) {
      this.waitedOnHints = true;
      this.c.log.info({ plan: id, hints }, 'every receiver has its data; waiting to hand over the hints parked here');
    }
    if (left === 0 && hints === 0 && this.leftAt === undefined) {
      this.leftAt = this.c.clock.monotonic();
      this.c.log.info({ plan: id }, 'every receiver has its data; leaving the cluster');
      m.remove(m.self);
      this.onLeft?.();
    }
  }

  // ---------------------------------------------------------------- serving

  private async onPull(body: Uint8Array): Promise<Uint8Array> {
    const r = new Reader(body);
    r.str(); // plan id: the receiver's view; the source serves whatever partitions it asks for
    const bitmap = r.bytes();
    const cursor = r.bytes();
    const limit = Math.min(r.uint(), 4096);
    const maxScan = Math.min(r.uint(), 65_536);
    const items: { key: string; object: Uint8Array }[] = [];
    let last: Uint8Array | undefined;
    let scanned = 0;
    let bytes = 0;
    let exhausted = true;
    for await (const [k, v] of this.c.store.entries('obj', cursor.length > 0 ? { gt: cursor } : {})) {
      last = k;
      scanned++;
      const { partition, key } = parseObjectKey(k);
      if (hasBit(bitmap, partition)) {
        items.push({ key, object: v });
        bytes += v.length;
      }
      if (items.length >= limit || bytes >= MAX_MESSAGE_COPY_BYTES || scanned >= maxScan) {
        exhausted = false;
        break;
      }
    }
    const w = new Writer(4096).uint(exhausted ? 1 : 0).bytes(last ?? cursor).uint(items.length);
    for (const it of items) w.str(it.key).bytes(it.object);
    return w.finish();
  }

  private async onStatus(body: Uint8Array): Promise<Uint8Array> {
    const id = new Reader(body).str();
    const m = this.c.membership;
    const current = m.ring();
    const pending = m.pendingRing();
    const mine = current === pending ? '' : planId(current, pending);
    if (mine !== id) return new Writer(8).uint(0).uint(0).finish();
    const remaining = this.complete() ? 0 : Math.max(1, this.plan ? this.plan.total - this.completedPartitions() : 1);
    return new Writer(16).uint(1).uint(remaining).finish();
  }
}

export interface StrayCleanerInit {
  /** Strays handed over per step. */
  readonly batchSize: number;
  /** Bytes of strays handed over per step (see MAX_MESSAGE_COPY_BYTES). */
  readonly maxBatchBytes: number;
  /** Keys examined per step at most (opening a range of partitions counts as RANGE_OPEN_COST). */
  readonly maxScan: number;
  readonly timeoutMs: number;
  /** After a full pass found nothing (and nothing changed), scan again after this long anyway. */
  readonly recheckMs: number;
}

/** Where a stray scan resumes: after a key it examined, or at the start of a range. */
interface StrayCursor {
  readonly key: Uint8Array;
  readonly after: boolean;
}

/**
 * What opening a range of partitions costs, in keys read, against maxScan: creating a LevelDB
 * iterator and its first and last thread-pool round trips took ~13x reading one more key
 * (4096 empty ranges: 376 ms, 4096 keys of one range: 28 ms, measured on a loaded node).
 */
const RANGE_OPEN_COST = 16;

export const STRAY_CLEANER_DEFAULTS: StrayCleanerInit = {
  batchSize: 256,
  maxBatchBytes: MAX_MESSAGE_COPY_BYTES,
  maxScan: 4096,
  timeoutMs: 10_000,
  recheckMs: 300_000,
};

/**
 * Copies this node holds for partitions it no longer replicates (after a ring change, or
 * fallback copies whose hints were delivered): hand each to its current owners, then drop it
 * if it did not change meanwhile. Runs only when no transfer is under way and no hints wait.
 */
export class StrayCleaner {
  private cursor: StrayCursor | undefined;
  /** Checksum of the ring the pass under way scans for. */
  private passSum: string | undefined;
  /** foreignRuns for the ring with this checksum. */
  private runs: { checksum: string; runs: PartitionRun[] } | undefined;
  /** Checksum of the ring for which the last full pass found no stray, and when it ended. */
  private cleanSum: string | undefined;
  private cleanAt = 0;
  /** The pass under way found strays (so finishing it does not prove the store clean). */
  private passHadStrays = false;
  /** Hints were parked here since the pass began: delivered fallback copies become strays. */
  private hintsSeen = false;

  constructor(
    private readonly c: {
      store: Store;
      replica: LocalReplica;
      membership: Membership;
      transport: Transport;
      clock: Clock;
      log: Logger;
    },
    private readonly init: StrayCleanerInit = STRAY_CLEANER_DEFAULTS,
  ) {}

  private runsFor(ring: Ring, self: string): PartitionRun[] {
    if (this.runs?.checksum !== ring.checksum) this.runs = { checksum: ring.checksum, runs: foreignRuns(ring, self) };
    return this.runs.runs;
  }

  /**
   * One bounded step; returns the number of keys dropped. Strays appear only when the ring
   * changes or this node stood in for an owner (it parked hints), so once a full pass found
   * none the cleaner rests until one of those happens, or `recheckMs` passes. Scanning every
   * key every half second was ~10-16 % of a core per idle node (measured, 20k keys).
   */
  async step(): Promise<number> {
    const m = this.c.membership;
    const ring = m.ring();
    if (this.c.replica.pendingHints > 0) this.hintsSeen = true;
    if (ring !== m.pendingRing() || this.c.replica.pendingHints > 0 || ring.members.length === 0) return 0;
    const now = this.c.clock.monotonic();
    // The ring changed mid-pass: partitions behind the cursor may have become foreign, so
    // finishing this pass would not prove the store clean. Start over.
    if (this.cursor !== undefined && this.passSum !== ring.checksum) this.cursor = undefined;
    if (this.cursor === undefined) {
      const clean = this.cleanSum === ring.checksum && !this.hintsSeen && now - this.cleanAt < this.init.recheckMs;
      if (clean) return 0;
      // A new pass begins.
      this.passSum = ring.checksum;
      this.passHadStrays = false;
      this.hintsSeen = false;
    }
    const strays: { partition: number; key: string; object: VersionedObject; bytes: Uint8Array }[] = [];
    // Only partitions this node does not replicate can hold strays, and object keys sort by
    // partition: read those ranges alone. Scanning every key instead (every recheckMs, and
    // after any hint) read the whole store and mapped every LevelDB table it passed: on 3
    // nodes with N=3, where no partition is foreign, that kept ~60 MiB more of each node
    // resident after 1M keys, and slowed the writes it ran during. With more nodes than N
    // there are many short runs (~16k of 65,536 partitions on 4-10 nodes), each an iterator
    // open: a pass then costs ~1.5 s of thread-pool time. One iterator that seeks from run
    // to run would be cheaper; the Store interface has no seek yet.
    const runs = this.runsFor(ring, m.self);
    let resume = this.cursor;
    let next: StrayCursor | undefined;
    let scanned = 0;
    let bytes = 0;
    let i = resume ? runs.findIndex((r) => r.last >= objectKeyPartition(resume!.key)) : 0;
    if (i < 0) i = runs.length;
    scan: for (; i < runs.length; i++) {
      const run = runs[i]!;
      const lt = partitionRange(run.last).lt;
      const from =
        resume && objectKeyPartition(resume.key) >= run.first
          ? resume.after
            ? { gt: resume.key }
            : { gte: resume.key }
          : { gte: partitionRange(run.first).gte };
      resume = undefined;
      scanned += RANGE_OPEN_COST;
      // Keys only: the values of the (usually zero) strays are read one by one below.
      for await (const k of this.c.store.keys('obj', { ...from, lt })) {
        scanned++;
        const { partition, key } = parseObjectKey(k);
        if (!ring.preferenceList(partition).includes(m.self)) {
          const v = await this.c.store.get('obj', k);
          if (v !== undefined) {
            // A damaged stray has nothing to hand over, and its owners hold their own copies.
            const object = decodeOrSkip(v, key, m.self, this.c.log, 'dropping a corrupt copy this node does not own');
            if (object !== undefined) {
              strays.push({ partition, key, object, bytes: v });
              bytes += v.length;
            } else await this.c.replica.dropCorrupt(partition, key);
          }
        }
        if (strays.length >= this.init.batchSize || bytes >= this.init.maxBatchBytes || scanned >= this.init.maxScan) {
          next = { key: k, after: true };
          break scan;
        }
      }
      const following = runs[i + 1];
      if (scanned >= this.init.maxScan && following) {
        next = { key: partitionRange(following.first).gte, after: false };
        break;
      }
    }
    this.cursor = next;
    if (strays.length > 0) this.passHadStrays = true;
    if (this.cursor === undefined && !this.passHadStrays) {
      this.cleanSum = ring.checksum;
      this.cleanAt = now;
    }
    if (strays.length === 0) return 0;

    // Group by owner set; every owner must acknowledge before a copy is dropped.
    const byOwner = new Map<string, { key: string; object: Uint8Array }[]>();
    for (const s of strays)
      for (const o of ring.preferenceList(s.partition)) {
        const l = byOwner.get(o) ?? [];
        byOwner.set(o, l);
        l.push({ key: s.key, object: s.bytes });
      }
    const failed = new Set<string>();
    for (const [owner, items] of byOwner) {
      const address = m.member(owner)?.address;
      try {
        if (!address || !m.isUp(owner)) throw new Error('owner down');
        await this.c.transport.send(address, ROUTES.replicaWriteBatch, encodeWriteBatch(items), {
          timeoutMs: this.init.timeoutMs,
          idempotent: true,
        });
      } catch {
        failed.add(owner);
      }
    }
    // Concurrently: copies of different keys then leave in one database write.
    const drops = await settleAll(
      strays
        .filter((s) => !ring.preferenceList(s.partition).some((o) => failed.has(o)))
        .map((s) => this.c.replica.dropIfSame(s.partition, s.key, s.object)),
    );
    let dropped = 0;
    for (const ok of drops) if (ok) dropped++;
    if (dropped > 0) this.c.log.info({ dropped }, 'handed off and dropped copies this node no longer owns');
    return dropped;
  }
}
