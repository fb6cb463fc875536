/**
 * Active anti-entropy (a driver): keeps this node's hash tree current with every write and,
 * every `intervalMs` (jittered), compares it with one co-replica's and repairs what differs.
 *
 * One exchange with peer B over the partitions S both replicate (derived from the ring, so
 * both sides first agree on the ring checksum):
 *
 *   1. aae-root:   send (checksum, my id, root over S). Equal: done, one small round trip.
 *                  Different: B answers with its bucket hashes in the same reply.
 *   2. aae-leaves: leaf hashes of S's partitions in the differing buckets.
 *   3. aae-keys:   (key, version digest) lists of the differing partitions, compared with a
 *                  local scan of the same partitions.
 *   4. aae-fetch:  B's objects for the differing keys (a reply stops at B's byte bound, and the
 *                  rest is asked for again). Each is merged with the local copy and
 *                  the merge is written only where it changes something: locally through
 *                  `replica.apply`, remotely with aae-repair. Never an overwrite, always a
 *                  merge, so concurrent versions end up as siblings on both sides, and a key
 *                  that differed only because a write was in flight costs at most one no-op.
 *
 * Back-pressure: one exchange at a time, at most `maxKeysPerExchange` differing keys handled
 * per exchange (the rest the next round, with the same peer, after `continueAfterMs`), and a
 * token bucket of `keysPerSecond` so background repair cannot starve foreground requests.
 *
 * The tree is rebuilt by one scan of the store at start and then kept current by the
 * replica's write listener. Whenever a partition is scanned for its key list, the scan also
 * checks that partition's leaf, so a leaf that ever drifts from the store heals itself.
 */
import { RingkvError } from '../errors.js';
import type { MembershipView } from '../membership/types.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { LocalReplica, WriteListener } from '../replica/local-replica.js';
import type { Ring } from '../ring/types.js';
import type { Clock } from '../runtime/clock.js';
import type { Random } from '../runtime/random.js';
import type { TimerHandle, Timers } from '../runtime/timers.js';
import { objectKey, objectKeyPartition, parseObjectKey, partitionRange, type Store } from '../storage/index.js';
import { type InternalHandler, MAX_MESSAGE_COPY_BYTES, type Transport } from '../transport/transport.js';
import { decodeObject, decodeUnlessCorrupt, isStale, mergeMaybe, type VersionedObject, versionDigest } from '../version/index.js';
import { fetchCopies, readCopies } from './copies.js';
import {
  AAE_ROUTES,
  decodeFetchRequest,
  decodeFlags,
  decodeKeysReply,
  decodeLeavesReply,
  decodeObjectItems,
  decodePartitionsRequest,
  decodeRootReply,
  decodeRootRequest,
  encodeFetchReply,
  encodeFlags,
  encodeKeysReply,
  encodeLeavesReply,
  encodeObjectItems,
  encodePartitionsRequest,
  encodeRootReply,
  encodeRootRequest,
  type KeyRef,
  type ObjectItem,
} from './messages.js';
import { coReplicas, jittered, nextPeer, scanRuns, sharedPartitions, TokenBucket } from './plan.js';
import { type ReaperInit, type ReapPassResult, TombstoneReaper } from './reaper.js';
import {
  bucketHashes,
  diffBuckets,
  diffKeys,
  diffLeaves,
  HashTree,
  keyVersionHash,
  leafHashes,
  partitionsInBuckets,
  root,
} from './tree.js';

export interface AntiEntropyComponents {
  readonly store: Store;
  readonly replica: LocalReplica;
  readonly membership: MembershipView;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly random: Random;
  readonly log: Logger;
  readonly metrics: Metrics;
}

export interface AntiEntropyInit {
  /** Pause between exchanges (SPEC: --anti-entropy-interval-ms). */
  readonly intervalMs: number;
  /** The pause varies uniformly by ± this fraction. */
  readonly jitter: number;
  /** Timeout of each message of an exchange. */
  readonly timeoutMs: number;
  /** Differing keys handled per exchange; the rest wait for the next round. */
  readonly maxKeysPerExchange: number;
  /** Pause before the next round when an exchange stopped at maxKeysPerExchange (if shorter than the interval). */
  readonly continueAfterMs: number;
  /** Token bucket on differing keys handled per second (burst: one second's worth). */
  readonly keysPerSecond: number;
  /** Keys per aae-fetch / aae-repair message. */
  readonly batchSize: number;
  /** Bytes of copies per aae-repair message (see MAX_MESSAGE_COPY_BYTES). */
  readonly maxRepairBytes: number;
  /**
   * Bytes of copies per aae-fetch reply this node serves (see MAX_MESSAGE_COPY_BYTES); the
   * requester asks again for the rest.
   */
  readonly maxFetchBytes: number;
  /** Partitions per aae-keys message. */
  readonly partitionsPerRequest: number;
  /** Partitions per aae-leaves message. */
  readonly leavesPerRequest: number;
  /** Tombstone reaping options, or false to never reap. */
  readonly reaper: Partial<ReaperInit> | false;
  /**
   * Every partition this node replicates is read back from the store and checked against its
   * leaf once per this period, a slice each round (see verifySweep); 0 turns the sweep off.
   */
  readonly verifyPeriodMs: number;
}

/** The digest a stored copy that cannot be decoded hashes as (see digestOf). */
const CORRUPT_DIGEST = 0;

export const ANTI_ENTROPY_DEFAULTS: AntiEntropyInit = {
  intervalMs: 60_000,
  jitter: 0.25,
  timeoutMs: 10_000,
  maxKeysPerExchange: 1000,
  continueAfterMs: 1000,
  keysPerSecond: 2000,
  batchSize: 256,
  maxRepairBytes: MAX_MESSAGE_COPY_BYTES,
  maxFetchBytes: MAX_MESSAGE_COPY_BYTES,
  partitionsPerRequest: 256,
  leavesPerRequest: 16_384,
  reaper: {},
  verifyPeriodMs: 24 * 3600_000,
};

/** How an exchange ended (the `outcome` label of ringkv_antientropy_exchanges_total). */
export type ExchangeOutcome = 'identical' | 'repaired' | 'partial' | 'ring_mismatch' | 'failed';

export interface ExchangeResult {
  readonly peer: string;
  readonly outcome: ExchangeOutcome;
  /** Partitions both replicate (the compared set). */
  readonly partitions: number;
  readonly bucketsDiffering: number;
  readonly partitionsDiffering: number;
  /** Keys whose (presence, version digest) differed in the key lists. */
  readonly keysDiffering: number;
  /** Replica copies written because they were stale (local and remote). */
  readonly keysRepaired: number;
  /** Stopped at maxKeysPerExchange; the rest is left for the next round. */
  readonly truncated: boolean;
  readonly error?: string;
}

/** What one verify sweep read (see AntiEntropy.verifySweep). */
export interface SweepResult {
  /** Partitions read; first and last of them (-1 when none). */
  readonly partitions: number;
  readonly first: number;
  readonly last: number;
  /** Keys they held, by the tree's count (what the key-rate budget was charged). */
  readonly keys: number;
  /** Leaves reset because the store disagreed with them. */
  readonly reset: number;
}

/** Index of the first of the sorted `partitions` above `p` (partitions.length if none). */
function firstAfter(partitions: readonly number[], p: number): number {
  let lo = 0;
  let hi = partitions.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (partitions[mid]! <= p) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** What a self-check of a leaf saw (see checkLeaf). */
interface LeafSuspect {
  readonly leaf: number;
  readonly scanned: number;
  readonly seq: number;
}

export class AntiEntropy {
  readonly init: AntiEntropyInit;
  /** This node's leaves (one per ring partition); built by start(). */
  tree: HashTree | undefined;
  private readonly reaper: TombstoneReaper | undefined;
  private readonly bucket: TokenBucket;

  private running = false;
  private starting: Promise<void> | undefined;
  private timer: TimerHandle | undefined;
  private round: Promise<unknown> | undefined;
  private abort = new AbortController();
  private busy = false;
  private queue: Promise<unknown> = Promise.resolve();

  private listening = false;
  /** False from the start of a rebuild until it completed: the leaves are not to be trusted. */
  private treeReady = false;
  /** Partitions written during a rebuild: rescanned before the tree is trusted. */
  private readonly dirty = new Set<number>();
  /** Per-partition change counters, to tell whether a scan raced with a write. */
  private writeSeq: Uint32Array | undefined;
  /** Keys stored per partition (kept by the listener; only used to plan scans). */
  private keyCounts: Uint32Array | undefined;
  private readonly suspects = new Map<number, LeafSuspect>();
  /**
   * Per-partition time (clock.monotonic) of the last successful comparison with a co-replica.
   * Monotonic, not wall-clock: an age measured on the wall clock would stand at 0 for as long
   * as the clock was set back, and jump when it is set forward.
   */
  private verifiedAt: Float64Array | undefined;
  /** The last partition the verify sweep read (-1: none yet); the next sweep starts after it. */
  private sweptThrough = -1;
  /** What the sweep owes, in partition-milliseconds: the period's share of the time since it ran. */
  private sweepCredit = 0;
  /** Partitions in the slice the last sweep failed to read (0: it did not fail). */
  private sweepFailed = 0;
  /** When (clock.monotonic) the sweep last ran, or the tree was built. */
  private sweepClock: number | undefined;
  /** Leaves reset by checkLeaf since start (also a metric). */
  private leafResets = 0;

  private lastPeer: string | undefined;
  /** A peer whose last exchange was cut short: it goes first next round. */
  private unfinishedPeer: string | undefined;
  private lastReap = Number.NEGATIVE_INFINITY;
  private ringCache: { checksum: string; peers: string[]; shared: Map<string, number[]> } | undefined;

  constructor(
    private readonly c: AntiEntropyComponents,
    init: Partial<AntiEntropyInit> = {},
  ) {
    this.init = { ...ANTI_ENTROPY_DEFAULTS, ...init };
    c.metrics.observeVerificationAge(() => this.verificationAge());
    this.bucket = new TokenBucket(this.init.keysPerSecond, this.init.keysPerSecond, c.clock.monotonic());
    this.reaper =
      this.init.reaper === false
        ? undefined
        : new TombstoneReaper(
            { store: c.store, replica: c.replica, membership: c.membership, transport: c.transport, clock: c.clock, log: c.log },
            { timeoutMs: this.init.timeoutMs, ...this.init.reaper },
          );
  }

  // ---------------------------------------------------------------- lifecycle

  /** Build the tree (first start only), then exchange every intervalMs. Idempotent. */
  async start(): Promise<void> {
    if (this.running) return this.starting;
    this.running = true;
    this.abort = new AbortController();
    this.starting = (async () => {
      try {
        if (!this.treeReady) await this.rebuild();
      } catch (err) {
        this.running = false;
        throw err;
      }
      if (this.running && !this.timer) this.schedule(this.nextDelay());
    })();
    return this.starting;
  }

  /** Cancel the timer and any exchange or pause in progress; wait for it to unwind. Idempotent. */
  async stop(): Promise<void> {
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
    this.abort.abort(new RingkvError('UNAVAILABLE', 'anti-entropy stopped'));
    await this.starting?.catch(() => undefined);
    await this.round?.catch(() => undefined);
    await this.queue.catch(() => undefined);
  }

  private nextDelay(): number {
    return jittered(this.init.intervalMs, this.init.jitter, this.c.random.next());
  }

  private schedule(ms: number): void {
    this.timer = this.c.timers.setTimeout(() => {
      this.timer = undefined;
      this.round = this.runOnce()
        .catch((err: unknown) => this.c.log.warn({ err: String(err) }, 'anti-entropy round failed'))
        .finally(() => {
          this.round = undefined;
          // (a stop() and start() during the round may already have scheduled the next one)
          if (!this.running || this.timer) return;
          // Work left over from a cut-short exchange continues soon; the token bucket paces it.
          const next = this.nextDelay();
          this.schedule(this.unfinishedPeer === undefined ? next : Math.min(next, this.init.continueAfterMs));
        });
    }, ms);
  }

  // ---------------------------------------------------------------- the tree

  /**
   * Rebuild the tree with one scan of the `obj` namespace. Writes that land meanwhile only
   * mark their partition dirty (the scan may have seen either version), and dirty partitions
   * are rescanned before the tree goes live. Returns the key count and the time it took.
   */
  async rebuild(): Promise<{ keys: number; ms: number }> {
    const started = this.c.clock.monotonic();
    const partitions = this.c.membership.ring().partitions;
    if (!this.tree || this.tree.partitions !== partitions) {
      this.tree = new HashTree(partitions);
      this.writeSeq = new Uint32Array(partitions);
      this.keyCounts = new Uint32Array(partitions);
      this.verifiedAt = new Float64Array(partitions).fill(this.c.clock.monotonic());
    }
    const tree = this.tree;
    if (!this.listening) {
      this.listening = true;
      this.c.replica.onWrite(this.onWrite);
    }
    this.treeReady = false;
    this.dirty.clear();
    let keys = 0;
    try {
      const leaves = new Uint32Array(partitions);
      const counts = new Uint32Array(partitions);
      for await (const [k, v] of this.c.store.entries('obj')) {
        const { partition, key } = parseObjectKey(k);
        if (partition >= partitions) continue;
        leaves[partition] = leaves[partition]! ^ keyVersionHash(key, this.digestOf(partition, key, v));
        counts[partition] = counts[partition]! + 1;
        keys++;
      }
      tree.leaves.set(leaves);
      this.keyCounts!.set(counts);
      // Converges fast (a partition rescans in well under a millisecond); the cap only bounds a
      // pathological write storm, after which the self-check in scanPartitions fixes leaves.
      for (let round = 0; this.dirty.size > 0 && round < 100; round++) {
        const again = [...this.dirty];
        this.dirty.clear();
        for (const p of again) {
          const scan = await this.scanPartition(p);
          tree.setLeaf(p, scan.leaf);
          this.keyCounts![p] = scan.entries.length;
        }
      }
      this.treeReady = true;
      this.sweepClock ??= this.c.clock.monotonic();
    } finally {
      // A failed rebuild leaves the tree not ready: exchanges refuse until one succeeds.
      this.dirty.clear();
    }
    const ms = this.c.clock.monotonic() - started;
    this.c.log.info({ keys, ms: Math.round(ms) }, 'anti-entropy tree built');
    return { keys, ms };
  }

  private readonly onWrite: WriteListener = (partition, key, before, after, replacedCorrupt) => {
    const tree = this.tree;
    if (!tree || partition >= tree.partitions) return;
    this.writeSeq![partition] = (this.writeSeq![partition]! + 1) >>> 0;
    if (!this.treeReady) {
      this.dirty.add(partition);
      return;
    }
    // A corrupt copy was counted, and hashed with CORRUPT_DIGEST (see digestOf).
    const held = before !== undefined || replacedCorrupt;
    if (!held && after !== undefined) this.keyCounts![partition] = this.keyCounts![partition]! + 1;
    if (held && after === undefined) this.keyCounts![partition] = Math.max(0, this.keyCounts![partition]! - 1);
    tree.update(
      partition,
      key,
      before !== undefined ? versionDigest(before) : replacedCorrupt ? CORRUPT_DIGEST : undefined,
      after === undefined ? undefined : versionDigest(after),
    );
    // The leaf held CORRUPT_DIGEST for the damaged copy only if a scan has seen it since it
    // was damaged; if it rotted while running, the leaf still holds its old healthy digest.
    // Either way, take the leaf from the store again.
    if (replacedCorrupt) void this.resetLeaf(partition);
  };

  /** Set partition `p`'s leaf from a scan of the store, unless a write to it raced the scan. */
  private async resetLeaf(p: number): Promise<void> {
    const seq = this.writeSeq![p]!;
    try {
      const { leaf } = await this.scanPartition(p);
      if (this.treeReady && this.writeSeq![p] === seq) this.tree?.setLeaf(p, leaf);
    } catch (err) {
      // The store closed, say: a later exchange's self-check (checkLeaf) still fixes the leaf.
      this.c.log.debug({ partition: p, err: String(err) }, 'anti-entropy leaf reset failed');
    }
  }

  /**
   * Digest of a stored object. An undecodable (corrupt) one gets CORRUPT_DIGEST, so once a scan
   * has seen it, it differs from every healthy replica's copy and an exchange replaces it (see
   * LocalReplica.apply). Damage that happens while the node runs shows when a scan reads it.
   * The replica then forgets what it cached of the copy (see LocalReplica.forgetCached): the
   * next write of the key must see the damage, as this scan did, or the tree would drift.
   */
  private digestOf(partition: number, key: string, bytes: Uint8Array): number {
    try {
      return versionDigest(decodeObject(bytes));
    } catch (err) {
      this.c.log.error({ partition, key, err: String(err) }, 'unreadable object in the anti-entropy scan');
      this.c.replica.forgetCached(partition, key);
      return CORRUPT_DIGEST;
    }
  }

  /** One partition's (key, digest) list and the leaf it implies, from the store. */
  private async scanPartition(partition: number): Promise<{ entries: [string, number][]; leaf: number }> {
    const [scan] = await this.scanRun([partition], partition, partition);
    return scan!;
  }

  /**
   * Read the sorted `partitions` (all within first..last) with one range scan; entries of
   * partitions in the range that were not asked for are skipped undecoded.
   */
  private async scanRun(
    partitions: readonly number[],
    first: number,
    last: number,
  ): Promise<{ entries: [string, number][]; leaf: number }[]> {
    const out = partitions.map(() => ({ entries: [] as [string, number][], leaf: 0 }));
    const slot = new Map(partitions.map((p, i) => [p, i]));
    const range = { gte: partitionRange(first).gte, lt: partitionRange(last).lt };
    for await (const [k, v] of this.c.store.entries('obj', range)) {
      const i = slot.get(objectKeyPartition(k));
      if (i === undefined) continue;
      const { partition, key } = parseObjectKey(k);
      const d = this.digestOf(partition, key, v);
      const o = out[i]!;
      o.entries.push([key, d]);
      o.leaf = (o.leaf ^ keyVersionHash(key, d)) >>> 0;
    }
    return out;
  }

  /**
   * Scan partitions for their key lists (nearby partitions share one range scan, see
   * scanRuns), and use the scan to check the tree: a leaf that disagrees with its partition's
   * contents (e.g. a write that raced with the rebuild) is reset, but only when two scans in
   * a row saw the same disagreement with no write to the partition in between, so a write
   * whose listener has not run yet is never double-counted.
   */
  private async scanPartitions(partitions: readonly number[]): Promise<[string, number][][]> {
    const out: [string, number][][] = [];
    const counts = this.keyCounts!;
    let i = 0;
    for (const run of scanRuns(partitions, (p) => counts[p] ?? 0)) {
      const members: number[] = [];
      while (i < partitions.length && partitions[i]! <= run.last) members.push(partitions[i++]!);
      const seqs = members.map((p) => this.writeSeq![p]!);
      const scans = await this.scanRun(members, run.first, run.last);
      members.forEach((p, j) => {
        const scan = scans[j]!;
        this.checkLeaf(p, scan.leaf, seqs[j]!);
        if (this.writeSeq![p] === seqs[j]) counts[p] = scan.entries.length;
        out.push(scan.entries);
      });
    }
    return out;
  }

  private checkLeaf(p: number, scanned: number, seqBefore: number): void {
    const tree = this.tree!;
    if (!this.treeReady || this.writeSeq![p] !== seqBefore) {
      this.suspects.delete(p);
      return;
    }
    const leaf = tree.leaf(p);
    if (leaf === scanned) {
      this.suspects.delete(p);
      return;
    }
    const prev = this.suspects.get(p);
    if (prev && prev.leaf === leaf && prev.scanned === scanned && prev.seq === seqBefore) {
      this.c.log.warn({ partition: p }, 'anti-entropy leaf disagreed with the store; reset from a scan');
      this.c.metrics.aaeLeafResets.inc();
      this.leafResets++;
      tree.setLeaf(p, scanned);
      this.suspects.delete(p);
    } else {
      this.suspects.set(p, { leaf, scanned, seq: seqBefore });
    }
  }

  /**
   * Read the next slice of this node's partitions back from the store and check each leaf
   * against what it holds (see checkLeaf). The write listener keeps the tree current with every
   * write, but not with what the disk does on its own: a copy that rots under a running node
   * keeps its healthy digest in the tree, so no exchange would look at it until a restart's
   * rebuild. Once a sweep has read the damage, the leaf holds CORRUPT_DIGEST for that key and
   * the next exchange with a co-replica replaces the copy.
   *
   * Paced by time, not by rounds: each call reads the period's share of the partitions for the
   * time since the last one (so every partition once per verifyPeriodMs, whether rounds come
   * every interval or faster while an exchange catches up), and is charged to the key-rate
   * budget too, at most two rounds' share at a time. It resumes after the last partition it
   * read, by number, so a ring change moves nothing under it; a slice that fails is tried once
   * more, then passed over until the next period. A leaf is reset only when two scans in a row
   * with no write between agree, so a partition found off is scanned again at once (at most
   * twice more).
   */
  async verifySweep(): Promise<SweepResult> {
    return this.exclusive(async () => {
      const none: SweepResult = { partitions: 0, first: -1, last: -1, keys: 0, reset: 0 };
      if (!this.treeReady || this.init.verifyPeriodMs <= 0) return none;
      const ring = this.c.membership.ring();
      if (ring.partitions !== this.tree?.partitions) return none;
      const held = ring.partitionsOf(this.c.membership.self);
      const period = this.init.verifyPeriodMs;
      const now = this.c.clock.monotonic();
      const elapsed = now - (this.sweepClock ?? now);
      this.sweepClock = now;
      // In partition-milliseconds, so that a period's shares add up to every partition exactly.
      this.sweepCredit = Math.min(held.length * period, this.sweepCredit + held.length * elapsed);
      // At most two rounds' share per call: time that piled up (rounds spent catching up, a
      // stop) is made up over the next rounds, never in one long call that holds off exchanges.
      const most = Math.ceil((2 * held.length * this.init.intervalMs) / period);
      let per = Math.min(most, Math.floor(this.sweepCredit / period));
      // After a failure, the same slice again (not what time added since).
      if (this.sweepFailed > 0) per = Math.min(per, this.sweepFailed);
      if (per === 0) return none;
      let from = firstAfter(held, this.sweptThrough);
      if (from === held.length) from = 0;
      const slice = held.slice(from, from + per);
      const first = slice[0]!;
      const last = slice[slice.length - 1]!;
      const counts = this.keyCounts!;
      let keys = 0;
      for (const p of slice) keys += counts[p] ?? 0;
      const before = this.leafResets;
      try {
        await this.throttle(keys);
        let off: readonly number[] = slice;
        for (let scan = 0; scan < 3 && off.length > 0; scan++) {
          await this.scanPartitions(off);
          off = off.filter((p) => this.suspects.has(p));
        }
      } catch (err) {
        // A slice that cannot be read (a damaged table, say) is tried once more, then passed
        // over until the next period: it must not stop the sweep for good.
        if (this.abort.signal.aborted) throw err;
        if (this.sweepFailed === 0) {
          this.sweepFailed = slice.length;
          throw err;
        }
        this.sweepFailed = 0;
        this.c.log.error({ first, last, err: String(err) }, 'anti-entropy verify sweep could not read these partitions twice; passing over them');
        this.sweepCredit -= slice.length * period;
        this.sweptThrough = last;
        return none;
      }
      this.sweepFailed = 0;
      this.sweepCredit -= slice.length * period;
      this.sweptThrough = last;
      this.c.metrics.aaeSweptPartitions.inc(slice.length);
      return { partitions: slice.length, first, last, keys, reset: this.leafResets - before };
    });
  }

  // ---------------------------------------------------------------- ring-derived sets

  private ringInfo(ring: Ring): { peers: string[]; shared: Map<string, number[]> } {
    if (this.ringCache?.checksum !== ring.checksum) {
      this.ringCache = {
        checksum: ring.checksum,
        peers: coReplicas(ring, this.c.membership.self),
        shared: new Map(),
      };
    }
    return this.ringCache;
  }

  private shared(ring: Ring, peer: string): number[] {
    const info = this.ringInfo(ring);
    let s = info.shared.get(peer);
    if (!s) {
      s = sharedPartitions(ring, this.c.membership.self, peer);
      info.shared.set(peer, s);
    }
    return s;
  }

  private markVerified(partitions: Iterable<number>): void {
    const at = this.c.clock.monotonic();
    for (const p of partitions) this.verifiedAt![p] = at;
  }

  /**
   * Seconds since the least recently verified partition this node replicates was last
   * compared with a co-replica (never compared: since the tree was built). Partitions with no
   * co-replica (n=1, or a one-node cluster) have nothing to be compared with and do not
   * count: their age would only grow, an alarm that no repair could clear.
   */
  verificationAge(): number {
    if (!this.verifiedAt) return 0;
    const ring = this.c.membership.ring();
    let oldest = Number.POSITIVE_INFINITY;
    for (const p of ring.partitionsOf(this.c.membership.self)) {
      if (ring.preferenceList(p).length < 2) continue;
      oldest = Math.min(oldest, this.verifiedAt[p] ?? 0);
    }
    if (oldest === Number.POSITIVE_INFINITY) return 0;
    return Math.max(0, (this.c.clock.monotonic() - oldest) / 1000);
  }

  // ---------------------------------------------------------------- rounds

  /**
   * One scheduled round: an exchange with the next co-replica (round-robin over those up),
   * then a tombstone-reaping pass when one is due. Skipped while another exchange runs.
   */
  async runOnce(): Promise<ExchangeResult | undefined> {
    if (this.busy || !this.treeReady) return undefined;
    const ring = this.c.membership.ring();
    const isUp = (id: string): boolean => this.c.membership.isUp(id);
    const { peers } = this.ringInfo(ring);
    const peer =
      this.unfinishedPeer !== undefined && peers.includes(this.unfinishedPeer) && isUp(this.unfinishedPeer)
        ? this.unfinishedPeer
        : nextPeer(peers, this.lastPeer, isUp);
    // First the sweep: damage it reads is then repaired by this round's exchange, when the
    // peer shares the partition. Not while a cut-short exchange catches up with its peer: that
    // goes first, and the sweep's time-based share waits for the next full round.
    if (peer === undefined || peer !== this.unfinishedPeer) {
      await this.sweep();
      if (this.abort.signal.aborted) return undefined;
    }
    let result: ExchangeResult | undefined;
    if (peer !== undefined) {
      result = await this.exchangeWith(peer);
      this.lastPeer = peer;
      // Only an exchange that did its share goes on first: one that failed (a peer that
      // refuses every repair, say) would otherwise be retried forever, and this node would
      // exchange with no other co-replica and never sweep again.
      this.unfinishedPeer = result.truncated && result.outcome === 'partial' ? peer : undefined;
    }
    if (this.reaper && this.running && this.c.clock.monotonic() - this.lastReap >= this.reaper.init.intervalMs) {
      this.lastReap = this.c.clock.monotonic();
      await this.reap();
    }
    return result;
  }

  /**
   * verifySweep for a scheduled round (each leaf it resets is logged by checkLeaf): a failure
   * is logged, and the round goes on to its exchange.
   */
  private async sweep(): Promise<void> {
    try {
      await this.verifySweep();
    } catch (err) {
      if (this.running) this.c.log.warn({ err: String(err) }, 'anti-entropy verify sweep failed');
    }
  }

  /** Run a tombstone-reaping pass now (serialised with exchanges). */
  async reap(): Promise<ReapPassResult | undefined> {
    const reaper = this.reaper;
    if (!reaper) return undefined;
    return this.exclusive(async () => {
      try {
        return await reaper.runPass(this.abort.signal);
      } catch (err) {
        this.c.log.warn({ err: String(err) }, 'tombstone reaping pass failed');
        return undefined;
      }
    });
  }

  /** Compare with `peer` now and repair what differs (waits for a running exchange first). */
  async exchangeWith(peer: string): Promise<ExchangeResult> {
    return this.exclusive(async () => {
      const result = await this.exchange(peer);
      this.c.metrics.aaeExchanges.inc({ outcome: result.outcome });
      if (result.keysRepaired > 0) this.c.metrics.aaeKeysRepaired.inc(result.keysRepaired);
      const level = result.outcome === 'failed' || result.outcome === 'ring_mismatch' ? 'info' : 'debug';
      this.c.log[level]({ ...result }, 'anti-entropy exchange');
      return result;
    });
  }

  /** At most one exchange or reaping pass at a time. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      this.busy = true;
      try {
        return await fn();
      } finally {
        this.busy = false;
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private send(address: string, route: string, body: Uint8Array): Promise<Uint8Array> {
    return this.c.transport.send(address, route, body, {
      timeoutMs: this.init.timeoutMs,
      idempotent: true,
      signal: this.abort.signal,
    });
  }

  private async exchange(peer: string): Promise<ExchangeResult> {
    const stats = {
      peer,
      partitions: 0,
      bucketsDiffering: 0,
      partitionsDiffering: 0,
      keysDiffering: 0,
      keysRepaired: 0,
      truncated: false,
    };
    const done = (outcome: ExchangeOutcome, error?: unknown): ExchangeResult =>
      error === undefined ? { ...stats, outcome } : { ...stats, outcome, error: String(error) };
    const tree = this.tree;
    const address = this.c.membership.member(peer)?.address;
    if (!tree || !this.treeReady) return done('failed', 'tree not built');
    if (!address) return done('failed', `unknown member ${peer}`);
    const ring = this.c.membership.ring();
    const shared = this.shared(ring, peer);
    stats.partitions = shared.length;
    if (shared.length === 0) return done('identical');
    try {
      // 1. roots
      const buckets = bucketHashes(tree, shared);
      const reply = decodeRootReply(
        await this.send(
          address,
          AAE_ROUTES.root,
          encodeRootRequest({ checksum: ring.checksum, from: this.c.membership.self, root: root(buckets) }),
        ),
      );
      if (reply.status === 'ring-mismatch') return done('ring_mismatch');
      if (reply.status === 'same') {
        this.markVerified(shared);
        return done('identical');
      }
      if (reply.buckets.length !== buckets.length) throw new RingkvError('INTERNAL', 'bucket count mismatch');

      // 2. buckets -> leaves
      const differingBuckets = diffBuckets(buckets, reply.buckets);
      stats.bucketsDiffering = differingBuckets.length;
      const candidates = partitionsInBuckets(tree, shared, differingBuckets);
      const differing: number[] = [];
      for (let i = 0; i < candidates.length; i += this.init.leavesPerRequest) {
        const chunk = candidates.slice(i, i + this.init.leavesPerRequest);
        const theirs = decodeLeavesReply(await this.send(address, AAE_ROUTES.leaves, encodePartitionsRequest(chunk)));
        if (theirs.length !== chunk.length) throw new RingkvError('INTERNAL', 'leaf reply length mismatch');
        differing.push(...diffLeaves(chunk, leafHashes(tree, chunk), theirs));
      }
      stats.partitionsDiffering = differing.length;

      // 3. leaves -> keys, until the per-exchange budget is used up
      const todo: KeyRef[] = [];
      const finished = new Set<number>();
      let next = 0;
      while (next < differing.length && todo.length < this.init.maxKeysPerExchange) {
        // The first chunk's leaves were compared just now; a later one's may have converged
        // since. Replica writes in flight make leaves differ for a moment, so an exchange that
        // compared during a write burst would otherwise go on scanning, at both ends, partitions
        // that converged long ago (and every LevelDB table a scan reads stays resident while
        // open). So compare again first, and scan only what still differs.
        const recheck = next > 0;
        let chunk = differing.slice(next, next + this.init.partitionsPerRequest);
        next += chunk.length;
        if (recheck) {
          const now = decodeLeavesReply(await this.send(address, AAE_ROUTES.leaves, encodePartitionsRequest(chunk)));
          if (now.length !== chunk.length) throw new RingkvError('INTERNAL', 'leaf reply length mismatch');
          const still = new Set(diffLeaves(chunk, leafHashes(tree, chunk), now));
          for (const p of chunk) if (!still.has(p)) finished.add(p);
          chunk = chunk.filter((p) => still.has(p));
          if (chunk.length === 0) continue;
        }
        const theirs = decodeKeysReply(await this.send(address, AAE_ROUTES.keys, encodePartitionsRequest(chunk)));
        if (theirs.length !== chunk.length) throw new RingkvError('INTERNAL', 'key list reply length mismatch');
        const mine = await this.scanPartitions(chunk);
        for (let i = 0; i < chunk.length; i++) {
          const p = chunk[i]!;
          const keys = diffKeys(new Map(mine[i]!), theirs[i]!);
          stats.keysDiffering += keys.length;
          const room = this.init.maxKeysPerExchange - todo.length;
          if (keys.length <= room) {
            for (const key of keys) todo.push({ partition: p, key });
            finished.add(p);
          } else {
            for (const key of keys.slice(0, room)) todo.push({ partition: p, key });
            stats.truncated = true;
          }
        }
      }
      if (next < differing.length) stats.truncated = true;

      // 4. keys -> objects -> merge, written only where stale
      for (let i = 0; i < todo.length; i += this.init.batchSize) {
        const batch = todo.slice(i, i + this.init.batchSize);
        await this.throttle(batch.length);
        stats.keysRepaired += await this.repairBatch(address, ring.checksum, batch);
      }

      // Every shared partition is now verified except those left for the next round.
      const unfinished = new Set(differing.filter((p) => !finished.has(p)));
      this.markVerified(shared.filter((p) => !unfinished.has(p)));
      return done(stats.truncated ? 'partial' : 'repaired');
    } catch (err) {
      return done('failed', err);
    }
  }

  /** Wait until the key-rate budget allows `n` more keys. */
  private async throttle(n: number): Promise<void> {
    const wait = this.bucket.take(n, this.c.clock.monotonic());
    if (wait > 0) await this.pause(wait);
  }

  /** Sleep on the injected timers; stop() cuts it short. (Detaches from the signal either way.) */
  private pause(ms: number): Promise<void> {
    const signal = this.abort.signal;
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        handle.cancel();
        reject(signal.reason);
      };
      const handle = this.c.timers.setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Fetch the peer's copies of `refs`, merge, and write where stale. Returns copies changed.
   *
   * Bounded in bytes throughout, since copies may be as large as the largest value: the peer's
   * replies stop at its byte bound (the rest is asked for again), the local copies of each
   * reply's keys are read a few at a time, and the copies the peer lacks go out as soon as
   * they make a full aae-repair message. So at most about one fetch reply, one repair message
   * and one store read of copies are held at a time, however large the batch.
   */
  private async repairBatch(address: string, checksum: string, refs: readonly KeyRef[]): Promise<number> {
    let repaired = 0;
    let push: ObjectItem[] = [];
    let pushBytes = 0;
    // A peer that refuses a repair (its disk is full, say) fails the batch, but only once this
    // side has taken what it needs from the peer: the rest of its pushes are dropped meanwhile.
    let pushFailed: { err: unknown } | undefined;
    const flush = async (): Promise<void> => {
      const message = push;
      push = [];
      pushBytes = 0;
      if (message.length === 0 || pushFailed) return;
      try {
        const flags = decodeFlags(await this.send(address, AAE_ROUTES.repair, encodeObjectItems(message)));
        if (flags.length !== message.length) throw new RingkvError('INTERNAL', 'repair reply length mismatch');
        for (const f of flags) if (f) repaired++;
      } catch (err) {
        if (this.abort.signal.aborted) throw err;
        pushFailed = { err };
      }
    };
    const send = (body: Uint8Array): Promise<Uint8Array> => this.send(address, AAE_ROUTES.fetch, body);
    await fetchCopies(send, checksum, refs, async (from, theirs) => {
      const got = refs.slice(from, from + theirs.length);
      // Read now, not when the key lists were made: a write in flight may have settled it.
      const keys = got.map((r) => objectKey(r.partition, r.key));
      await readCopies(this.c.store, keys, this.init.maxRepairBytes, async (i, localBytes) => {
        const { partition, key } = got[i]!;
        // A corrupt copy, ours or theirs, counts as none: the healthy one replaces it (a replica
        // writes over a copy it cannot decode), and the other keys of the batch still go ahead.
        const remote = this.decodeCopy(key, theirs[i], address);
        const local = this.decodeCopy(key, localBytes, 'self');
        const merged = mergeMaybe(local, remote);
        if (merged === undefined) return true;
        // apply() merges again under the key's lock and writes only if that changes something.
        if (remote !== undefined && isStale(local, merged)) {
          if ((await this.c.replica.apply(partition, key, remote, [], true)).changed) repaired++;
        }
        // The peer merges our copy into its own, so sending ours is enough to bring it level.
        // In messages of at most maxRepairBytes of copies (one copy at least).
        if (local !== undefined && localBytes !== undefined && isStale(remote, merged) && !pushFailed) {
          if (push.length > 0 && pushBytes + localBytes.length > this.init.maxRepairBytes) await flush();
          push.push({ partition, key, object: localBytes });
          pushBytes += localBytes.length;
        }
        return true;
      });
    });
    await flush();
    if (pushFailed) throw pushFailed.err;
    return repaired;
  }

  /** `bytes` decoded, or undefined when absent or corrupt (logged; see repairBatch). */
  private decodeCopy(key: string, bytes: Uint8Array | undefined, holder: string): VersionedObject | undefined {
    if (bytes === undefined) return undefined;
    const object = decodeUnlessCorrupt(bytes);
    if (object === undefined) this.c.log.error({ key, holder }, 'corrupt copy found by anti-entropy; a healthy copy will replace it');
    return object;
  }

  // ---------------------------------------------------------------- serving peers

  /** The internal routes this node serves to co-replicas (all named `aae-*`). */
  handlers(): Map<string, InternalHandler> {
    return new Map<string, InternalHandler>([
      [AAE_ROUTES.root, (b) => this.onRoot(b)],
      [AAE_ROUTES.leaves, (b) => this.onLeaves(b)],
      [AAE_ROUTES.keys, (b) => this.onKeys(b)],
      [AAE_ROUTES.fetch, (b) => this.onFetch(b)],
      [AAE_ROUTES.repair, (b) => this.onRepair(b)],
      [AAE_ROUTES.reap, (b) => this.onReap(b)],
    ]);
  }

  private ready(): HashTree {
    if (!this.tree || !this.treeReady) throw new RingkvError('UNAVAILABLE', 'anti-entropy tree is not built yet');
    return this.tree;
  }

  private checkPartitions(tree: HashTree, partitions: readonly number[]): void {
    for (const p of partitions) {
      if (!Number.isInteger(p) || p < 0 || p >= tree.partitions) throw new RingkvError('BAD_REQUEST', `bad partition ${p}`);
    }
  }

  private async onRoot(body: Uint8Array): Promise<Uint8Array> {
    const tree = this.ready();
    const m = decodeRootRequest(body);
    const ring = this.c.membership.ring();
    if (m.checksum !== ring.checksum) return encodeRootReply({ status: 'ring-mismatch', checksum: ring.checksum });
    const shared = this.shared(ring, m.from);
    const buckets = bucketHashes(tree, shared);
    if (root(buckets) === m.root) {
      this.markVerified(shared);
      return encodeRootReply({ status: 'same' });
    }
    return encodeRootReply({ status: 'differ', buckets });
  }

  private async onLeaves(body: Uint8Array): Promise<Uint8Array> {
    const tree = this.ready();
    const partitions = decodePartitionsRequest(body);
    this.checkPartitions(tree, partitions);
    return encodeLeavesReply(leafHashes(tree, partitions));
  }

  private async onKeys(body: Uint8Array): Promise<Uint8Array> {
    const tree = this.ready();
    const partitions = decodePartitionsRequest(body);
    this.checkPartitions(tree, partitions);
    return encodeKeysReply(await this.scanPartitions(partitions));
  }

  private async onFetch(body: Uint8Array): Promise<Uint8Array> {
    const tree = this.ready();
    const { checksum, refs } = decodeFetchRequest(body);
    if (checksum !== this.c.membership.ring().checksum) {
      throw new RingkvError('UNAVAILABLE', 'ring checksum mismatch; retry when membership has converged');
    }
    this.checkPartitions(tree, refs.map((r) => r.partition));
    // Copies up to maxFetchBytes (one at least, whatever its size, so every reply makes
    // progress); the rest are deferred and the requester asks for them again.
    const max = this.init.maxFetchBytes;
    const objects: (Uint8Array | undefined)[] = [];
    let bytes = 0;
    const keys = refs.map((r) => objectKey(r.partition, r.key));
    await readCopies(this.c.store, keys, max, (_, copy) => {
      if (copy !== undefined) {
        if (bytes > 0 && bytes + copy.length > max) return false;
        bytes += copy.length;
      }
      objects.push(copy);
      return true;
    });
    return encodeFetchReply(objects, refs.length - objects.length);
  }

  private async onRepair(body: Uint8Array): Promise<Uint8Array> {
    const items = this.decodeItems(body);
    const flags: boolean[] = [];
    for (const it of items) flags.push((await this.c.replica.apply(it.partition, it.key, it.object, [], true)).changed);
    return encodeFlags(flags);
  }

  private async onReap(body: Uint8Array): Promise<Uint8Array> {
    const items = this.decodeItems(body);
    const flags: boolean[] = [];
    for (const it of items) flags.push(await this.c.replica.reap(it.partition, it.key, it.object));
    return encodeFlags(flags);
  }

  /** Items of a repair/reap message, checked: each key must belong to the partition it names. */
  private decodeItems(body: Uint8Array): { partition: number; key: string; object: VersionedObject }[] {
    const ring = this.c.membership.ring();
    return decodeObjectItems(body).map((it) => {
      if (ring.partitionOf(it.key) !== it.partition) {
        throw new RingkvError('BAD_REQUEST', `key does not belong to partition ${it.partition}`);
      }
      return { partition: it.partition, key: it.key, object: decodeObject(it.object) };
    });
  }
}
