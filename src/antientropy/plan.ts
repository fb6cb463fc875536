/**
 * Pure decisions of the anti-entropy driver: which partitions two nodes share, which peer
 * is next, how long to pause, and the key-rate budget. No I/O here.
 */
import type { Ring } from '../ring/types.js';

/**
 * The partitions for which both `a` and `b` are in the preference list, ascending: the set
 * whose trees the two compare. Both sides derive it from the ring alone, which is why an
 * exchange first checks that their ring checksums agree.
 */
export function sharedPartitions(ring: Ring, a: string, b: string): number[] {
  const out: number[] = [];
  for (const p of ring.partitionsOf(a)) if (ring.preferenceList(p).includes(b)) out.push(p);
  return out;
}

/** Every other member that shares at least one partition with `self`, sorted by id. */
export function coReplicas(ring: Ring, self: string): string[] {
  const peers = new Set<string>();
  for (const p of ring.partitionsOf(self)) for (const id of ring.preferenceList(p)) if (id !== self) peers.add(id);
  return [...peers].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
}

/**
 * Round-robin: the first peer after `last` (in the sorted list, wrapping) that `isUp`; or
 * undefined if none is up.
 */
export function nextPeer(peers: readonly string[], last: string | undefined, isUp: (id: string) => boolean): string | undefined {
  if (peers.length === 0) return undefined;
  let start = 0;
  if (last !== undefined) {
    // The first peer sorting after `last`, so a peer that left the list does not reset the order.
    const i = peers.findIndex((p) => p > last);
    start = i === -1 ? 0 : i;
  }
  for (let k = 0; k < peers.length; k++) {
    const peer = peers[(start + k) % peers.length]!;
    if (isUp(peer)) return peer;
  }
  return undefined;
}

/**
 * A pause of `intervalMs` spread uniformly by ±`jitter` (a fraction), so nodes that started
 * together do not exchange in lockstep. `r` is a uniform draw in [0, 1).
 */
export function jittered(intervalMs: number, jitter: number, r: number): number {
  return Math.max(0, Math.round(intervalMs * (1 - jitter + 2 * jitter * r)));
}

/**
 * A token bucket on keys per second. `take(n, now)` always grants (it may run into debt) and
 * returns how many ms the caller should wait before doing the work, so a batch larger than
 * the burst still goes through, just later. Time is passed in (monotonic ms).
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    if (!(ratePerSecond > 0)) throw new RangeError(`token bucket: rate must be > 0, got ${ratePerSecond}`);
    this.tokens = burst;
    this.last = now;
  }

  /** Spend `n` tokens; returns the wait in ms until the balance is no longer negative. */
  take(n: number, now: number): number {
    const elapsed = Math.max(0, now - this.last);
    this.last = Math.max(this.last, now);
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerSecond) / 1000);
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.ratePerSecond);
  }
}

/**
 * Group sorted partitions into runs that one range scan each can read. Opening a store
 * iterator costs about as much as reading a few dozen entries, so two requested partitions
 * share a scan when fewer than `maxSkipped` keys lie in the unrequested partitions between
 * them (`keysIn(p)` estimates a partition's key count); otherwise a new run starts.
 */
export function scanRuns(
  partitions: readonly number[],
  keysIn: (partition: number) => number,
  maxSkipped = 32,
): { first: number; last: number }[] {
  const runs: { first: number; last: number }[] = [];
  let run: { first: number; last: number } | undefined;
  for (const p of partitions) {
    if (run !== undefined) {
      let skipped = 0;
      for (let q = run.last + 1; q < p && skipped < maxSkipped; q++) skipped += keysIn(q);
      if (skipped < maxSkipped) {
        run.last = p;
        continue;
      }
    }
    run = { first: p, last: p };
    runs.push(run);
  }
  return runs;
}
