/**
 * Sloppy-quorum placement, pure: which node serves each replica slot of a key right now.
 */

export interface ReplicaSlot {
  /** The preference-list node this slot belongs to. */
  readonly owner: string;
  /**
   * The node that will hold this slot's copy: the owner when it is up, else a fallback
   * (the next up node in ring order not already used), else the suspected owner itself.
   */
  readonly target: string;
  /** True when target is the owner although the failure detector thinks it is down. */
  readonly suspect: boolean;
  /** True when target is a stand-in that must hold a hint for the owner. */
  readonly hintFor: boolean;
}

/**
 * One slot per preference-list node. Down owners are replaced by the next healthy nodes
 * beyond the preference list (fallbacks), each used at most once, when `useFallbacks`.
 * A down owner for which no stand-in exists is still asked: the failure detector may be
 * wrong (a long GC pause, an overloaded host), and a truly dead peer fails fast on a refused
 * connection or an open circuit breaker. The coordinating node itself is always up.
 *
 * With `zoneOf`, a stand-in comes from a zone that no other target of the key is in, when an
 * up spare in such a zone exists (the first in ring order); else the next up spare in ring
 * order. Without it, writes acknowledged during an outage could all sit in one zone.
 *
 * `fullOrder` (every member in the partition's order) is asked for only when an owner is
 * down: the ring ranks every member to answer it, and the usual request, every owner up,
 * needs none of that.
 */
export function planReplicas(args: {
  readonly preferenceList: readonly string[];
  readonly fullOrder: () => readonly string[];
  readonly self: string;
  readonly isUp: (id: string) => boolean;
  readonly useFallbacks: boolean;
  /** A member's zone, for zone-aware stand-ins (see above). */
  readonly zoneOf?: (id: string) => string | undefined;
  /**
   * Members leaving the cluster: stand-ins only when no other spare is up. A leaving member
   * must hand every hint it holds to another member before it may go (HintDelivery), so
   * choosing it only adds that detour, and under steady writes with an owner down it could
   * keep the leave waiting.
   */
  readonly leaving?: (id: string) => boolean;
}): ReplicaSlot[] {
  const { preferenceList, fullOrder, self, useFallbacks } = args;
  const up = (id: string): boolean => id === self || args.isUp(id);
  // The common case, on every request: every owner is up.
  if (preferenceList.every(up)) {
    return preferenceList.map((owner) => ({ owner, target: owner, hintFor: false, suspect: false }));
  }
  const used = new Set(preferenceList);
  const spare = fullOrder().filter((id) => !used.has(id) && up(id));
  const { zoneOf, leaving } = args;
  // Staying spares first, zone-aware among them; leaving ones only once none is left.
  const tiers = leaving === undefined ? [spare] : [spare.filter((id) => !leaving(id)), spare.filter(leaving)];
  // Zones the key's targets are in so far: the up owners', then each stand-in's.
  const covered = new Set<string | undefined>();
  if (zoneOf !== undefined) for (const owner of preferenceList) if (up(owner)) covered.add(zoneOf(owner));
  const taken = new Set<string>();
  const standIn = (): string | undefined => {
    for (const tier of tiers) {
      let first: string | undefined;
      for (const id of tier) {
        if (taken.has(id)) continue;
        if (zoneOf === undefined || !covered.has(zoneOf(id))) return id;
        first ??= id;
      }
      if (first !== undefined) return first;
    }
    return undefined;
  };
  const slots: ReplicaSlot[] = [];
  for (const owner of preferenceList) {
    if (up(owner)) {
      slots.push({ owner, target: owner, hintFor: false, suspect: false });
      continue;
    }
    const target = useFallbacks ? standIn() : undefined;
    if (target !== undefined) {
      taken.add(target);
      if (zoneOf !== undefined) covered.add(zoneOf(target));
    }
    slots.push(
      target === undefined
        ? { owner, target: owner, hintFor: false, suspect: true }
        : { owner, target, hintFor: true, suspect: false },
    );
  }
  return slots;
}
