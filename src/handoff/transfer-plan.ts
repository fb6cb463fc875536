/**
 * Ownership transfer planning, pure: which partitions this node must receive, and from whom,
 * while the cluster moves from the current ring to the pending one (members joining or
 * leaving). Every node derives the same plan from the same member table.
 */
import type { Ring } from '../ring/types.js';

/** Identifies one transition: a plan is only valid between these two rings. */
export function planId(current: Ring, pending: Ring): string {
  return `${current.checksum}>${pending.checksum}`;
}

/**
 * Partitions `self` replicates in `pending` but not in `current`, grouped by the node to pull
 * each from: the first member of the partition's current preference list (other than self)
 * that `isUp`. A partition that members leaving the ring replicate is pulled from each of
 * them, and only from them (it is `unsourced` while any of them is down): a leaving member's
 * copy is the one that goes away with it, and a key only it and some other replica hold (one
 * that missed a write, not yet repaired) would otherwise reach no new owner. That holds for
 * every leaving member: two that leave together and share a partition may each hold keys the
 * other missed. A leaving member goes only once its receivers are done, so waiting for it
 * costs the leave nothing; one that never comes back is removed by an admin, which takes it
 * out of both rings. (An owner a joining member displaces stays, and hands its copies to
 * every owner before it drops them: see StrayCleaner.) Partitions with no reachable source
 * (or, of a leaving partition, one of its leaving owners unreachable) are returned under
 * `unsourced`. With `only`, just those partitions are planned (a re-plan of some of them),
 * and `covered(source, partition)` pairs are left out (pulls that are kept); `total` still
 * counts every partition `self` receives. A partition may appear under several sources.
 */
export function receivePlan(
  current: Ring,
  pending: Ring,
  self: string,
  isUp: (id: string) => boolean,
  only?: ReadonlySet<number>,
  covered?: (source: string, partition: number) => boolean,
): { bySource: Map<string, number[]>; unsourced: number[]; total: number } {
  const bySource = new Map<string, number[]>();
  const unsourced: number[] = [];
  let total = 0;
  if (current === pending) return { bySource, unsourced, total };
  const mine = pending.partitionsOf(self);
  const staying = new Set(pending.members.map((m) => m.id));
  const add = (source: string, p: number): void => {
    if (covered?.(source, p)) return;
    let list = bySource.get(source);
    if (!list) {
      list = [];
      bySource.set(source, list);
    }
    list.push(p);
  };
  for (const p of mine) {
    const owners = current.preferenceList(p);
    if (owners.includes(self)) continue;
    total++;
    // An empty current ring (a brand-new cluster) has no data to hand over.
    if (owners.length === 0 || (only !== undefined && !only.has(p))) continue;
    const leaving = owners.filter((id) => id !== self && !staying.has(id));
    if (leaving.length > 0) {
      let missing = false;
      for (const id of leaving) {
        if (isUp(id)) add(id, p);
        else missing = true;
      }
      if (missing) unsourced.push(p);
      continue;
    }
    const source = owners.find((id) => id !== self && isUp(id));
    if (source === undefined) unsourced.push(p);
    else add(source, p);
  }
  return { bySource, unsourced, total };
}

/**
 * The members that will receive partitions in this transition (for a leaving node: whom to
 * wait for before it may go). Deterministic, sorted.
 */
export function receivers(current: Ring, pending: Ring): string[] {
  const out = new Set<string>();
  if (current === pending) return [];
  for (let p = 0; p < pending.partitions; p++) {
    const before = current.preferenceList(p);
    for (const id of pending.preferenceList(p)) if (!before.includes(id)) out.add(id);
  }
  return [...out].sort();
}

/** A set of partitions as a bitmap (one bit each), for compact pull requests. */
export function toBitmap(partitions: readonly number[], count: number): Uint8Array {
  const bits = new Uint8Array(Math.ceil(count / 8));
  for (const p of partitions) bits[p >> 3]! |= 1 << (p & 7);
  return bits;
}

export function hasBit(bits: Uint8Array, p: number): boolean {
  return ((bits[p >> 3] ?? 0) & (1 << (p & 7))) !== 0;
}

/** Consecutive partitions `first..last` (both included). */
export interface PartitionRun {
  readonly first: number;
  readonly last: number;
}

/**
 * The maximal runs of partitions whose preference list in `ring` leaves `self` out: the only
 * places a copy this node should not hold (a stray) can be. Empty when it replicates all.
 */
export function foreignRuns(ring: Ring, self: string): PartitionRun[] {
  const runs: { first: number; last: number }[] = [];
  let run: { first: number; last: number } | undefined;
  for (let p = 0; p < ring.partitions; p++) {
    if (ring.preferenceList(p).includes(self)) run = undefined;
    else if (run) run.last = p;
    else {
      run = { first: p, last: p };
      runs.push(run);
    }
  }
  return runs;
}
