/**
 * Hinted handoff, the delivery side (a driver). Hints are (owner, key) records parked in the
 * `hint` namespace next to the object they point at; this loop finds owners that are up again
 * and sends them the current version of each hinted key in batches, one batch in flight per
 * owner (back-pressure: the next batch waits for the owner's acknowledgement). A hint is
 * deleted only after the owner acknowledged and only if no newer write re-parked it. A
 * leaving node hands the hints it cannot deliver to another member instead (see relocate),
 * which must acknowledge that it parked them (hint-adopt.ts).
 */
import type { MembershipView } from '../membership/types.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { LocalReplica } from '../replica/local-replica.js';
import type { TimerHandle, Timers } from '../runtime/timers.js';
import { hintOwnerRange, objectKey, parseHintKey, type Store } from '../storage/index.js';
import { type InternalHandler, MAX_MESSAGE_COPY_BYTES, type Transport } from '../transport/transport.js';
import { decodeUnlessCorrupt, type VersionedObject } from '../version/index.js';
import { encodeReplicaWrite, encodeWriteBatch, ROUTES } from '../coordinator/messages.js';
import { settleAll } from '../settle.js';
import { isUnknownRouteError } from '../transport/batching.js';
import { adoptHintHandler, HINT_ROUTES } from './hint-adopt.js';

export interface HintDeliveryInit {
  /** Pause between delivery passes. */
  readonly intervalMs: number;
  /** Keys per batch message. */
  readonly batchSize: number;
  /** Bytes of stored copies per batch message (see MAX_MESSAGE_COPY_BYTES). */
  readonly maxBatchBytes: number;
  /** Owners served at once. */
  readonly concurrency: number;
  readonly timeoutMs: number;
}

export const HINT_DELIVERY_DEFAULTS: HintDeliveryInit = {
  intervalMs: 1000,
  batchSize: 256,
  maxBatchBytes: MAX_MESSAGE_COPY_BYTES,
  concurrency: 2,
  timeoutMs: 10_000,
};

/**
 * Stored copies read at once while a batch is filled (see batchOf): a few at first, then as
 * many as the room left in the batch holds at the average size read so far, at most this.
 */
const READ_CHUNK = 32;
const FIRST_READ = 4;

/** A hint as read from the store: what it is for, its change counter and its own key. */
interface ParkedHint {
  readonly partition: number;
  readonly key: string;
  readonly seq: Uint8Array;
  readonly hintKey: Uint8Array;
}

export class HintDelivery {
  private timer: TimerHandle | undefined;
  private running = false;
  private stopped = true;
  private pass: Promise<void> | undefined;
  private readonly init: HintDeliveryInit;

  constructor(
    private readonly c: {
      store: Store;
      replica: LocalReplica;
      membership: MembershipView;
      transport: Transport;
      timers: Timers;
      log: Logger;
      metrics: Metrics;
    },
    init: Partial<HintDeliveryInit> = {},
  ) {
    this.init = { ...HINT_DELIVERY_DEFAULTS, ...init };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(this.init.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    await this.pass;
  }

  /** The route on which a leaving node hands its hints over (see relocate, adoptHintHandler). */
  handlers(): Map<string, InternalHandler> {
    return new Map<string, InternalHandler>([[HINT_ROUTES.adopt, adoptHintHandler(this.c)]]);
  }

  /** Run a pass now (tests, and after a member comes back). */
  kick(): void {
    if (this.stopped || this.running) return;
    this.timer?.cancel();
    this.schedule(0);
  }

  private schedule(ms: number): void {
    this.timer = this.c.timers.setTimeout(() => {
      this.pass = this.runPass().then(() => undefined).finally(() => {
        this.pass = undefined;
        if (!this.stopped) this.schedule(this.init.intervalMs);
      });
    }, ms);
  }

  /** One delivery pass over every owner that has hints. */
  async runPass(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    let delivered = 0;
    try {
      const owners = await this.ownersWithHints();
      const ready = owners.filter((o) => {
        const m = this.c.membership.member(o);
        return m !== undefined && m.state !== 'removed' && this.c.membership.isUp(o);
      });
      // Hints for members removed for good will never be delivered; anti-entropy rebuilds their replicas.
      for (const o of owners) {
        const m = this.c.membership.member(o);
        if (m === undefined || m.state === 'removed') await this.dropOwner(o);
      }
      let i = 0;
      // Owners that are up but whose delivery failed in this pass.
      const failing = new Set<string>();
      const worker = async (): Promise<void> => {
        while (i < ready.length && !this.stopped) {
          const owner = ready[i++] as string;
          // Caught per owner, not thrown: the other workers' batches may still be out, and the
          // pass must not end before they are back (the next pass would send those owners a
          // second batch meanwhile, and stop() would return under them). The other owners
          // still get their hints.
          try {
            const { cleared, interrupted } = await this.deliverTo(owner);
            delivered += cleared;
            if (interrupted) failing.add(owner);
          } catch (err) {
            failing.add(owner);
            this.c.log.warn({ owner, err: String(err) }, 'hint delivery to an owner failed; will retry');
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.init.concurrency, ready.length) }, worker));
      // A leaving node cannot wait for owners it cannot deliver to: once it has gone, its hints
      // and the copies they point at go with it (and with them a copy of each write they
      // counted for). It hands them to other members instead, which park them in turn. That
      // holds for an owner that is up but refused this pass's delivery too (a node whose disk
      // failed still gossips): waiting for it could keep the leave waiting for good.
      if (this.c.membership.member(this.c.membership.self)?.state === 'leaving') {
        // A member that refused a delivery would hardly adopt a hint: passed over in this pass.
        const refused = new Set<string>(failing);
        for (const o of owners) {
          const m = this.c.membership.member(o);
          if (m === undefined || m.state === 'removed' || this.stopped) continue;
          const up = this.c.membership.isUp(o);
          if (up && !failing.has(o)) continue;
          try {
            await this.relocate(o, !up, refused);
          } catch (err) {
            this.c.log.warn({ owner: o, err: String(err) }, 'handing hints over before leaving failed; will retry');
          }
        }
      }
    } catch (err) {
      this.c.log.warn({ err: String(err) }, 'hint delivery pass failed');
    } finally {
      this.running = false;
      this.c.metrics.hintsPending.set(this.c.replica.pendingHints);
    }
    return delivered;
  }

  private async ownersWithHints(): Promise<string[]> {
    const owners: string[] = [];
    let from: Uint8Array | undefined;
    for (;;) {
      let found: Uint8Array | undefined;
      for await (const k of this.c.store.keys('hint', from ? { gte: from, limit: 1 } : { limit: 1 })) found = k;
      if (!found) return owners;
      const owner = parseHintKey(found).ownerId;
      owners.push(owner);
      from = hintOwnerRange(owner).lt;
    }
  }

  private async dropOwner(owner: string): Promise<void> {
    for (;;) {
      const batch: { partition: number; key: string; seq: Uint8Array }[] = [];
      for await (const [k, v] of this.c.store.entries('hint', { ...hintOwnerRange(owner), limit: 1024 })) {
        const h = parseHintKey(k);
        batch.push({ partition: h.partition, key: h.key, seq: v });
      }
      if (batch.length === 0) return;
      for (const h of batch) await this.c.replica.clearHint(owner, h.partition, h.key, h.seq);
    }
  }

  /**
   * The members that may take over a leaving node's hint for `owner` on `key`, best first:
   * those that are up, active, and neither this node nor the owner; first the ones that do
   * not replicate the key on the ring the cluster is moving to, then its other owners, each
   * in the key's ring order. A non-owner first, as a coordinator picks a stand-in: the hint
   * stands for a copy of an acknowledged write, and an owner up usually holds that write
   * already, so handing it the hint would leave the write with one copy fewer until the
   * owner is back. Not a leaving member: it would have to hand the hint on in turn. Not a
   * joining one either: a joining member owns nothing, so a leave makes it go at once, with
   * whatever hints it holds (and its join may never finish). Empty when there is none: the
   * hint stays here, and the leave waits.
   */
  private standIns(owner: string, key: string): string[] {
    const m = this.c.membership;
    const ring = m.pendingRing();
    const p = ring.partitionOf(key);
    const owners = ring.preferenceList(p);
    const spares: string[] = [];
    const others: string[] = [];
    for (const id of ring.fullOrder(p)) {
      if (id === m.self || id === owner || !m.isUp(id) || m.member(id)?.state !== 'active') continue;
      (owners.includes(id) ? others : spares).push(id);
    }
    return spares.concat(others);
  }

  /**
   * Hands a hint for `owner` on `key`, with its stored copy, to the first stand-in (see
   * standIns) that adopts it (see adoptHintHandler); one that fails is added to `refused` and
   * passed over for the rest of the pass. Returns whether one adopted it.
   */
  private async handOver(owner: string, key: string, copy: Uint8Array, object: VersionedObject, refused: Set<string>): Promise<boolean> {
    const body = encodeReplicaWrite({ key, hintsFor: [owner], object }, copy);
    const opts = { timeoutMs: this.init.timeoutMs, idempotent: true };
    for (const to of this.standIns(owner, key)) {
      if (this.stopped) return false;
      if (refused.has(to)) continue;
      const address = this.c.membership.member(to)?.address;
      if (address === undefined) continue;
      try {
        try {
          await this.c.transport.send(address, HINT_ROUTES.adopt, body, opts);
        } catch (err) {
          // A member from before the adopt route (a rolling upgrade): a replica write asking it
          // to park the hint, which it does unless its hinted handoff is off.
          if (!isUnknownRouteError(err)) throw err;
          await this.c.transport.send(address, ROUTES.replicaWrite, body, opts);
        }
        return true;
      } catch (err) {
        refused.add(to);
        this.c.log.info({ owner, to, err: String(err) }, 'handing a hint over failed; trying another member');
      }
    }
    return false;
  }

  /**
   * Hands every hint parked here for `owner` to a stand-in, each with the copy it points at,
   * and clears each hint a stand-in adopted (unless a newer write re-parked it meanwhile).
   * With `whileDown`, stops once the owner is up again (delivery takes over). Returns how
   * many were handed over.
   */
  private async relocate(owner: string, whileDown: boolean, refused: Set<string>): Promise<number> {
    let from: Uint8Array | undefined;
    let total = 0;
    while (!this.stopped && !(whileDown && this.c.membership.isUp(owner))) {
      const next = await this.nextBatch(owner, from);
      if (next === undefined) break;
      const { items, batch } = next;
      from = batch[batch.length - 1]?.hintKey;
      const copies = new Map(items.map((it) => [it.key, it.object]));
      const outcomes = await settleAll(
        batch.map(async (h) => {
          const copy = copies.get(h.key);
          // Gone or damaged: nothing to hand over (batchOf logged a damaged one).
          if (copy !== undefined) {
            const object = decodeUnlessCorrupt(copy);
            if (object === undefined || !(await this.handOver(owner, h.key, copy, object, refused))) return false;
          }
          return this.c.replica.clearHint(owner, h.partition, h.key, h.seq);
        }),
      );
      let moved = 0;
      for (const ok of outcomes) if (ok === true) moved++;
      total += moved;
      this.c.metrics.hintsPending.set(this.c.replica.pendingHints);
      // Nothing of this batch could go (no stand-in, or none answering): try again next pass.
      if (moved === 0) break;
    }
    if (total > 0) this.c.log.info({ owner, handedOver: total }, 'hints handed to stand-ins before leaving');
    return total;
  }

  /**
   * The next hints parked for `owner` after hint key `from` (from the first without it), at
   * most batchSize, cut to what one message carries (see batchOf): the hints of the batch
   * and the copies to send for them. Undefined when there are none left.
   */
  private async nextBatch(
    owner: string,
    from: Uint8Array | undefined,
  ): Promise<{ items: { key: string; object: Uint8Array }[]; batch: ParkedHint[] } | undefined> {
    const range = hintOwnerRange(owner);
    const hints: ParkedHint[] = [];
    for await (const [k, v] of this.c.store.entries('hint', {
      ...(from ? { gt: from } : { gte: range.gte }),
      lt: range.lt,
      limit: this.init.batchSize,
    })) {
      const h = parseHintKey(k);
      hints.push({ partition: h.partition, key: h.key, seq: v, hintKey: k });
    }
    if (hints.length === 0) return undefined;
    const { items, taken } = await this.batchOf(hints);
    return { items, batch: hints.slice(0, taken) };
  }

  /** False (logged) for a stored copy that does not decode; see deliverTo. */
  private sound(key: string, bytes: Uint8Array): boolean {
    if (decodeUnlessCorrupt(bytes) !== undefined) return true;
    this.c.log.error({ key }, 'not handing off a corrupt copy');
    return false;
  }

  /**
   * The copies to send for the first `taken` of `hints` (in order): as many as fit
   * maxBatchBytes, at least one. Read a few at a time, sized by what was read so far, so that
   * a batch of large values reads about one copy more than it sends (the next batch reads it
   * again). Hints whose copy is gone or damaged count as taken, with no item.
   */
  private async batchOf(
    hints: readonly { partition: number; key: string }[],
  ): Promise<{ items: { key: string; object: Uint8Array }[]; taken: number }> {
    const items: { key: string; object: Uint8Array }[] = [];
    let bytes = 0;
    let taken = 0;
    let read = FIRST_READ;
    while (taken < hints.length) {
      const chunk = hints.slice(taken, taken + read);
      const objects = await this.c.store.getMany(
        'obj',
        chunk.map((h) => objectKey(h.partition, h.key)),
      );
      for (const [idx, h] of chunk.entries()) {
        const o = objects[idx];
        // A copy that rotted on disk would make the owner refuse the whole batch, on every
        // pass: leave it out (its hint is cleared with the rest). The owner gets the key from
        // its co-replicas by anti-entropy.
        if (o && this.sound(h.key, o)) {
          // Keys are at most 512 bytes; 3 bytes per UTF-16 unit bounds their encoding.
          const size = o.length + 3 * h.key.length;
          if (items.length > 0 && bytes + size > this.init.maxBatchBytes) return { items, taken };
          bytes += size;
          items.push({ key: h.key, object: o });
        }
        taken++;
      }
      const room = this.init.maxBatchBytes - bytes;
      read = items.length === 0 ? READ_CHUNK : Math.max(1, Math.min(READ_CHUNK, Math.ceil(room / (bytes / items.length))));
    }
    return { items, taken };
  }

  /** Delivers `owner`'s hints; `interrupted` when a batch failed (the rest wait for a later pass). */
  private async deliverTo(owner: string): Promise<{ cleared: number; interrupted: boolean }> {
    const address = this.c.membership.member(owner)?.address;
    if (!address) return { cleared: 0, interrupted: false };
    let total = 0;
    let interrupted = false;
    let from: Uint8Array | undefined;
    while (!this.stopped && this.c.membership.isUp(owner)) {
      const next = await this.nextBatch(owner, from);
      if (next === undefined) break;
      const { items, batch } = next;
      from = batch[batch.length - 1]?.hintKey;
      try {
        if (items.length > 0)
          await this.c.transport.send(address, ROUTES.replicaWriteBatch, encodeWriteBatch(items), {
            timeoutMs: this.init.timeoutMs,
            idempotent: true,
          });
      } catch (err) {
        this.c.log.info({ owner, err: String(err) }, 'hint delivery interrupted; will retry');
        interrupted = true;
        break;
      }
      // Concurrently: hints of different keys then share one database write.
      const outcomes = await settleAll(batch.map((h) => this.c.replica.clearHint(owner, h.partition, h.key, h.seq)));
      let cleared = 0;
      for (const ok of outcomes) if (ok) cleared++;
      total += cleared;
      this.c.metrics.hintsDelivered.inc(cleared);
      this.c.metrics.hintsPending.set(this.c.replica.pendingHints);
    }
    if (total > 0) this.c.log.info({ owner, delivered: total }, 'hints delivered');
    return { cleared: total, interrupted };
  }
}
