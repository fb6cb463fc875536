/**
 * Tombstone reaping (a driver). A delete is a versioned write: the tombstone must stay until
 * no replica can still hold a version it supersedes, or that version would come back when the
 * replicas sync (Cassandra's zombie data; research/dynamo-cassandra-jepsen.md §2). So a
 * tombstone is reaped only when
 *
 *   - every sibling of it is a tombstone and the newest is older than `graceMs`, and
 *   - every replica in the key's preference list answers, right now, with exactly the same
 *     tombstone version (any unreachable, different or missing replica: do nothing), and every
 *     other member answers with nothing or a tombstone (see below),
 *
 * and then each replica deletes it only if it still stores that exact version
 * (`LocalReplica.reap`), so a write that lands in between wins.
 *
 * Only a partition's primary (first in its preference list) initiates, so the N replicas do
 * not all ask each other about the same keys. Passes scan the store slowly, `scanKeys` keys
 * at a time, resuming where the last pass stopped.
 *
 * Copies outside the preference list count too: a fallback that stood in for a down owner
 * keeps its copy and a hint, and hands them back whenever it can, however long it was down.
 * So every other member must also be up and hold nothing of the key, or only a tombstone.
 */
import type { MembershipView } from '../membership/types.js';
import type { Logger } from '../observability/logger.js';
import type { LocalReplica } from '../replica/local-replica.js';
import type { Clock } from '../runtime/clock.js';
import { parseObjectKey, type Store } from '../storage/index.js';
import type { Transport } from '../transport/transport.js';
import { decodeObject, encodeObject, isDeleted, sameVersion, type VersionedObject } from '../version/index.js';
import { fetchCopies } from './copies.js';
import { AAE_ROUTES, decodeFlags, encodeObjectItems, type KeyRef } from './messages.js';

export interface ReaperInit {
  /** A tombstone is reaped only this long after its newest sibling was written. */
  readonly graceMs: number;
  /** Pause between reaping passes (driven by AntiEntropy's rounds). */
  readonly intervalMs: number;
  /** Stored keys examined per pass. */
  readonly scanKeys: number;
  /** Keys per check/reap message. */
  readonly batchSize: number;
  readonly timeoutMs: number;
}

export const REAPER_DEFAULTS: ReaperInit = {
  graceMs: 24 * 60 * 60 * 1000,
  intervalMs: 10 * 60 * 1000,
  scanKeys: 10_000,
  batchSize: 256,
  timeoutMs: 10_000,
};

export interface ReaperComponents {
  readonly store: Store;
  readonly replica: LocalReplica;
  readonly membership: MembershipView;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly log: Logger;
}

export interface ReapPassResult {
  /** Stored keys examined. */
  readonly scanned: number;
  /** Tombstones past their grace period whose partition this node leads. */
  readonly candidates: number;
  /** Replica copies deleted (on any replica, this one included). */
  readonly reaped: number;
  /** Keys deleted from every replica of their preference list. */
  readonly keys: number;
}

/** True when `obj` is a tombstone (at least one sibling, all deleted) older than `graceMs` at `now`. */
export function isReapable(obj: VersionedObject, now: number, graceMs: number): boolean {
  if (obj.siblings.length === 0 || !isDeleted(obj)) return false;
  let newest = Number.NEGATIVE_INFINITY;
  for (const s of obj.siblings) newest = Math.max(newest, s.lastModified);
  return now - newest >= graceMs;
}

/**
 * True when every replica's answer is exactly the tombstone `expected` (an `undefined` answer,
 * a missing replica, or any other version means no).
 */
export function allHoldTombstone(expected: VersionedObject, answers: readonly (VersionedObject | undefined)[]): boolean {
  return answers.every((a) => a !== undefined && a.siblings.length > 0 && isDeleted(a) && sameVersion(a, expected));
}

interface Candidate extends KeyRef {
  readonly object: VersionedObject;
}

/**
 * What a member holds of a candidate, compared with its tombstone: nothing, exactly that
 * tombstone, another tombstone, or something live. Kept instead of the copy itself, so that a
 * batch's answers take a few bytes per member however large the copies they hold.
 */
type Held = 'nothing' | 'same' | 'tombstone' | 'live';

function heldOf(expected: VersionedObject, copy: VersionedObject | undefined): Held {
  if (copy === undefined) return 'nothing';
  if (allHoldTombstone(expected, [copy])) return 'same';
  return isDeleted(copy) ? 'tombstone' : 'live';
}

export class TombstoneReaper {
  readonly init: ReaperInit;
  /** Last object key a pass examined; the next pass continues after it. */
  private cursor: Uint8Array | undefined;

  constructor(
    private readonly c: ReaperComponents,
    init: Partial<ReaperInit> = {},
  ) {
    this.init = { ...REAPER_DEFAULTS, ...init };
  }

  /** One pass over the next `scanKeys` stored keys. */
  async runPass(signal?: AbortSignal): Promise<ReapPassResult> {
    const ring = this.c.membership.ring();
    const self = this.c.membership.self;
    const now = this.c.clock.now();
    let scanned = 0;
    const groups = new Map<string, { pref: readonly string[]; items: Candidate[] }>();
    let candidates = 0;
    let last: Uint8Array | undefined;
    const range = this.cursor ? { gt: this.cursor, limit: this.init.scanKeys } : { limit: this.init.scanKeys };
    for await (const [k, v] of this.c.store.entries('obj', range)) {
      scanned++;
      last = k;
      const { partition, key } = parseObjectKey(k);
      if (partition >= ring.partitions) continue;
      const pref = ring.preferenceList(partition);
      if (pref[0] !== self) continue;
      let object: VersionedObject;
      try {
        object = decodeObject(v);
      } catch (err) {
        this.c.log.error({ key, err: String(err) }, 'unreadable object skipped by the tombstone reaper');
        continue;
      }
      if (!isReapable(object, now, this.init.graceMs)) continue;
      candidates++;
      const id = pref.join('\u0000');
      let g = groups.get(id);
      if (!g) {
        g = { pref, items: [] };
        groups.set(id, g);
      }
      g.items.push({ partition, key, object });
    }
    // Fewer keys than asked for: the scan reached the end; start over next time.
    this.cursor = scanned < this.init.scanKeys ? undefined : last;

    let reaped = 0;
    let keys = 0;
    for (const g of groups.values()) {
      for (let i = 0; i < g.items.length; i += this.init.batchSize) {
        if (signal?.aborted) break;
        const r = await this.reapBatch(ring.checksum, g.pref, g.items.slice(i, i + this.init.batchSize), signal);
        reaped += r.copies;
        keys += r.keys;
      }
    }
    if (keys > 0) this.c.log.info({ keys, copies: reaped }, 'tombstones reaped');
    return { scanned, candidates, reaped, keys };
  }

  /** Check one batch of same-preference-list tombstones on every replica, then reap the safe ones. */
  private async reapBatch(
    checksum: string,
    pref: readonly string[],
    items: readonly Candidate[],
    signal: AbortSignal | undefined,
  ): Promise<{ copies: number; keys: number }> {
    const self = this.c.membership.self;
    const peers: { id: string; address: string }[] = [];
    for (const id of pref) {
      if (id === self) continue;
      const address = this.c.membership.member(id)?.address;
      // Any replica not known to be up: it may hold an older version; leave the tombstones.
      if (!address || !this.c.membership.isUp(id)) return { copies: 0, keys: 0 };
      peers.push({ id, address });
    }
    // Every other member too: a fallback that stood in for an owner keeps its copy (and a
    // hint) outside the preference list, and a gaining owner may hold a copy it pulled before
    // the delete; either hands it to the owners later, however long it was down. So each must
    // be up and hold nothing of the key or only a tombstone (handing that back is harmless).
    const others: { id: string; address: string }[] = [];
    for (const s of this.c.membership.statuses()) {
      if (s.id === self || pref.includes(s.id)) continue;
      if (!this.c.membership.isUp(s.id)) return { copies: 0, keys: 0 };
      others.push({ id: s.id, address: s.address });
    }
    /** What each of `from` holds of each of `of` (answers[item][member]). */
    const fetchAll = async (from: readonly { address: string }[], of: readonly Candidate[]): Promise<Held[][]> => {
      const refs = of.map(({ partition, key }) => ({ partition, key }));
      const answers: Held[][] = of.map(() => []);
      for (const peer of from) {
        const send = (body: Uint8Array): Promise<Uint8Array> =>
          this.c.transport.send(peer.address, AAE_ROUTES.fetch, body, this.sendOpts(signal));
        // A reply may stop at the peer's byte bound (a live copy can be large); fetchCopies asks again.
        await fetchCopies(send, checksum, refs, (first, objects) => {
          objects.forEach((b, i) => {
            const it = of[first + i]!;
            answers[first + i]!.push(heldOf(it.object, b ? decodeObject(b) : undefined));
          });
        });
      }
      return answers;
    };
    // The owners first (this replica's current copy too: a write may have landed since the
    // scan); the other members are asked only about what the owners would let go.
    const agreed: Candidate[] = [];
    let strays: Held[][];
    try {
      const answers = await fetchAll(peers, items);
      for (let i = 0; i < items.length; i++) {
        const it = items[i]!;
        const local = await this.c.replica.read(it.partition, it.key);
        if (allHoldTombstone(it.object, [local]) && answers[i]!.every((a) => a === 'same')) agreed.push(it);
      }
      if (agreed.length === 0) return { copies: 0, keys: 0 };
      strays = await fetchAll(others, agreed);
    } catch (err) {
      this.c.log.debug({ err: String(err) }, 'tombstone check incomplete; nothing reaped');
      return { copies: 0, keys: 0 };
    }
    const safe: Candidate[] = [];
    const safeStrays: Held[][] = [];
    for (let i = 0; i < agreed.length; i++) {
      if (strays[i]!.some((a) => a === 'live')) continue;
      safe.push(agreed[i]!);
      safeStrays.push(strays[i]!);
    }
    if (safe.length === 0) return { copies: 0, keys: 0 };

    const body = encodeObjectItems(
      safe.map((it) => ({ partition: it.partition, key: it.key, object: encodeObject(it.object) })),
    );
    const done = new Uint8Array(safe.length);
    let copies = 0;
    // The owners, then the other members that hold a copy (deleted there if the same version).
    const holders = others.filter((_, j) => safeStrays.some((a) => a[j] !== 'nothing'));
    for (const peer of [...peers, ...holders]) {
      const owner = !holders.includes(peer);
      try {
        const flags = decodeFlags(await this.c.transport.send(peer.address, AAE_ROUTES.reap, body, this.sendOpts(signal)));
        flags.forEach((f, i) => {
          if (f) {
            copies++;
            if (owner) done[i] = done[i]! + 1;
          }
        });
      } catch (err) {
        // Harmless: the replicas that did reap get the tombstone back from this one by
        // anti-entropy, and a later pass reaps it again.
        this.c.log.debug({ peer: peer.id, err: String(err) }, 'tombstone reap request failed');
      }
    }
    for (let i = 0; i < safe.length; i++) {
      const it = safe[i]!;
      if (await this.c.replica.reap(it.partition, it.key, it.object)) {
        copies++;
        done[i] = done[i]! + 1;
      }
    }
    let keys = 0;
    for (const d of done) if (d === peers.length + 1) keys++;
    return { copies, keys };
  }

  private sendOpts(signal: AbortSignal | undefined): { timeoutMs: number; idempotent: true; signal?: AbortSignal } {
    return signal ? { timeoutMs: this.init.timeoutMs, idempotent: true, signal } : { timeoutMs: this.init.timeoutMs, idempotent: true };
  }
}
