/**
 * The member table and its merge (pure).
 *
 * Every member's record is owned by the member itself: it alone bumps its heartbeat and
 * incarnation. Nodes exchange whole tables and merge them per id with `mergeRecord`, so
 * tables converge whatever the order, duplication or loss of gossip messages (a state-based
 * CRDT: a join-semilattice per id).
 *
 * Which record wins is a total order, (incarnation, state priority, heartbeat), then a
 * tie-break on the remaining fields. The tie-break never matters for honest records (the
 * owner never writes two different records with the same incarnation and heartbeat), but
 * without it two conflicting records would make the merge depend on argument order.
 *
 * Removals are sticky. A record says when its member's membership began (`since`), and the
 * merge keeps the latest removal it has seen (`removedAt`) on the winner; a record whose
 * membership began at or before that removal is settled as removed, whatever its incarnation.
 * So a member that resumes its old place after a restart (a newer incarnation, same `since`)
 * cannot undo a removal issued while it was down, whichever record reaches a node first; only
 * a new join (a `since` past the removal) brings it back. The settled record keeps the
 * winner's incarnation with state 'removed', which outranks the member's later records of
 * that incarnation on nodes of every version.
 *
 * Compatibility: versions before `since`/`removedAt` drop both when they parse a record and
 * order records exactly as above. A record without `since` is read as a membership that
 * began at its own incarnation and one without `removedAt` as knowing of no removal but its
 * own, which is precisely their rule, so such records merge as they always did (mergeRecord
 * returns one of its two arguments unchanged). In a mixed cluster a record relayed by an old
 * node arrives stripped: it takes the `since` of a copy of the same incarnation it meets, and
 * otherwise the removal window is as wide as it was before. Merging such stripped copies
 * with their originals may depend on the order (a removal can be dropped by one node and
 * kept by another), but tables still converge: a merge never lowers a record under
 * compareRecords, so the greatest record any node holds spreads to all.
 */
import type { RingMember } from '../ring/index.js';
import type { MemberRecord, MemberState } from './types.js';

/**
 * Precedence among states at the same incarnation: removed > leaving > active > joining.
 * `removed` on top is what lets an admin on any node remove a member by rewriting its record
 * at the *same* incarnation; only the member itself can outrank that, with a newer
 * incarnation, and (see mergeRecord) only by a new join, not by resuming the membership the
 * removal ended.
 */
export const STATE_PRIORITY: Readonly<Record<MemberState, number>> = Object.freeze({
  joining: 0,
  active: 1,
  leaving: 2,
  removed: 3,
});

/** A table: member id -> that member's record. */
export type MemberTable = ReadonlyMap<string, MemberRecord>;

/** A change `applyRecords` made to a table. */
export interface RecordChange {
  readonly before: MemberRecord | undefined;
  readonly after: MemberRecord;
}

function cmp(a: number | string, b: number | string): number {
  // Code-unit order for strings (never localeCompare: it must not depend on the locale).
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Absent sorts first. */
function cmpOpt(a: number | undefined, b: number | undefined): number {
  return a === b ? 0 : a === undefined ? -1 : b === undefined ? 1 : cmp(a, b);
}

/**
 * Total order on records of one member: (incarnation, state priority, heartbeat), then
 * address, zone, weight, since, removedAt as a deterministic tie-break. Negative if `a` < `b`.
 * Among copies that differ only there, the one that knows more ranks higher (a `since` over
 * none, then the earlier `since`; then the later removal known, see removalOf), so the merge
 * of such copies is never below either of them.
 */
export function compareRecords(a: MemberRecord, b: MemberRecord): number {
  return (
    cmp(a.incarnation, b.incarnation) ||
    cmp(STATE_PRIORITY[a.state], STATE_PRIORITY[b.state]) ||
    cmp(a.heartbeat, b.heartbeat) ||
    cmp(a.address, b.address) ||
    cmp(a.zone, b.zone) ||
    cmp(a.weight, b.weight) ||
    cmp(a.id, b.id) ||
    cmpOpt(a.since === undefined ? undefined : -a.since, b.since === undefined ? undefined : -b.since) ||
    cmpOpt(removalOf(a), removalOf(b))
  );
}

/** The incarnation at which the membership `r` belongs to began (its own, for older records). */
export function sinceOf(r: MemberRecord): number {
  return r.since ?? r.incarnation;
}

/** The latest removal of `r`'s member that `r` knows of (an incarnation), or undefined. */
export function removalOf(r: MemberRecord): number | undefined {
  return r.removedAt ?? (r.state === 'removed' ? r.incarnation : undefined);
}

function maxOpt(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.max(a, b);
}

/**
 * `w` with the given `since` and known removal, settled: a membership that began at or
 * before the removal is over (state 'removed', at `w`'s incarnation, which outranks every
 * other record of that incarnation). Returns `w` itself when nothing changes.
 *
 * A settled record's heartbeat is 0: which live record of the incarnation a node happened to
 * settle must not matter (else two nodes settling different heartbeats would each hold a
 * different record until the greater one spread, and the merge would not be associative).
 */
function settle(w: MemberRecord, since: number | undefined, removal: number | undefined): MemberRecord {
  const over = w.state !== 'removed' && removal !== undefined && (since ?? w.incarnation) <= removal;
  const state: MemberState = over ? 'removed' : w.state;
  // Carried only where it says more than the record alone: on a removed record, a removal
  // below its own incarnation; on a live one, with a `since` to compare it with (an
  // older-format live record that won is past every removal it met: nothing to carry,
  // unless it already carried one).
  let removedAt: number | undefined;
  if (removal !== undefined) {
    if (state === 'removed') removedAt = removal < w.incarnation ? removal : undefined;
    else if (since !== undefined || w.removedAt !== undefined) removedAt = removal;
  }
  if (state === w.state && since === w.since && removedAt === w.removedAt) return w;
  const out: { -readonly [K in keyof MemberRecord]: MemberRecord[K] } = {
    id: w.id,
    address: w.address,
    zone: w.zone,
    weight: w.weight,
    state,
    incarnation: w.incarnation,
    heartbeat: over ? 0 : w.heartbeat,
  };
  if (since !== undefined) out.since = since;
  if (removedAt !== undefined) out.removedAt = removedAt;
  return out;
}

/** `r` settled on its own (a live record carrying a removal of its own membership is removed). */
export function settleRecord(r: MemberRecord): MemberRecord {
  return settle(r, r.since, removalOf(r));
}

/**
 * Merges two records of the same member: the greater one under compareRecords, which also
 * keeps the later of the removals either knows of, takes a `since` the other copy of the same
 * incarnation has when it lacks one (a copy relayed by an older version), and is removed if
 * its membership began at or before that removal. Commutative, associative and idempotent
 * over the records this version writes (a member's `since` is fixed within an incarnation);
 * see the module comment for copies stripped by older versions. Without `since`/`removedAt`
 * on either side this is exactly the greater record (one of the two arguments).
 */
export function mergeRecord(a: MemberRecord, b: MemberRecord): MemberRecord {
  const [w, l] = compareRecords(a, b) >= 0 ? [a, b] : [b, a];
  let since = w.since;
  if (l.since !== undefined && l.incarnation === w.incarnation && (since === undefined || l.since < since)) since = l.since;
  return settle(w, since, maxOpt(removalOf(w), removalOf(l)));
}

/** Merges two tables into a new one; neither input is modified. */
export function mergeTables(a: MemberTable, b: MemberTable): Map<string, MemberRecord> {
  const out = new Map(a);
  applyRecords(out, b.values());
  return out;
}

/**
 * Merges records into `table` in place and returns the changes, in input order. A merge that
 * leaves the record held as it was is not a change.
 */
export function applyRecords(table: Map<string, MemberRecord>, records: Iterable<MemberRecord>): RecordChange[] {
  const changes: RecordChange[] = [];
  for (const r of records) {
    const before = table.get(r.id);
    const after = before === undefined ? settleRecord(r) : mergeRecord(before, r);
    if (after === before || (before !== undefined && compareRecords(after, before) === 0)) continue;
    table.set(r.id, after);
    changes.push({ before, after });
  }
  return changes;
}

/**
 * True when a change matters to anyone but the failure detector: a new member, or any field
 * other than the heartbeat changed. Heartbeat-only changes happen every round for every
 * member and must not wake listeners or trigger persistence.
 */
export function isSignificant(change: RecordChange): boolean {
  const { before: b, after: a } = change;
  return (
    b === undefined ||
    b.state !== a.state ||
    b.incarnation !== a.incarnation ||
    b.address !== a.address ||
    b.zone !== a.zone ||
    b.weight !== a.weight ||
    b.since !== a.since ||
    b.removedAt !== a.removedAt
  );
}

/** True when `after` carries news of the member being alive: a greater (incarnation, heartbeat). */
export function isNewerBeat(before: MemberRecord | undefined, after: MemberRecord): boolean {
  if (before === undefined) return true;
  return after.incarnation > before.incarnation || (after.incarnation === before.incarnation && after.heartbeat > before.heartbeat);
}

/** Members that own partitions: state active or leaving (a leaving member serves until handed off). */
export function ringMembersOf(table: MemberTable): RingMember[] {
  const out: RingMember[] = [];
  for (const r of table.values()) {
    if (r.state === 'active' || r.state === 'leaving') out.push({ id: r.id, zone: r.zone, weight: r.weight });
  }
  out.sort((x, y) => cmp(x.id, y.id));
  return out;
}

/**
 * Members of the ring the cluster is moving to: active and joining members (leaving ones
 * drop out). Equal to ringMembersOf when nobody is joining or leaving.
 */
export function pendingRingMembersOf(table: MemberTable): RingMember[] {
  const out: RingMember[] = [];
  for (const r of table.values()) {
    if (r.state === 'active' || r.state === 'joining') out.push({ id: r.id, zone: r.zone, weight: r.weight });
  }
  out.sort((x, y) => cmp(x.id, y.id));
  return out;
}

/** A string that changes iff the ring member set (ids, zones, weights) changes. */
export function ringKey(members: readonly RingMember[]): string {
  return JSON.stringify(members.map((m) => [m.id, m.zone, m.weight]));
}

/** Records sorted by id (for gossip, persistence and stable comparisons). */
export function sortedRecords(table: MemberTable): MemberRecord[] {
  return [...table.values()].sort((x, y) => cmp(x.id, y.id));
}

const STATES = new Set<string>(Object.keys(STATE_PRIORITY));

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Validates an untrusted value (decoded JSON from a peer or from disk) as a MemberRecord and
 * returns a clean, settled copy with only the known fields, or undefined if it is malformed.
 * `since` and `removedAt` are optional (older versions write neither) and never above the
 * incarnation: a membership cannot begin after its own record, nor a removal that a record
 * carries happen after it (a removal past a live record would have won the merge).
 */
export function parseRecord(v: unknown): MemberRecord | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const { id, address, zone, weight, state, incarnation, heartbeat, since, removedAt } = o;
  if (typeof id !== 'string' || id.length === 0) return undefined;
  if (typeof address !== 'string' || typeof zone !== 'string') return undefined;
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) return undefined;
  if (typeof state !== 'string' || !STATES.has(state)) return undefined;
  if (!isCount(incarnation) || !isCount(heartbeat)) return undefined;
  if (since !== undefined && !(isCount(since) && since <= incarnation)) return undefined;
  if (removedAt !== undefined && !(isCount(removedAt) && removedAt <= incarnation)) return undefined;
  const r: { -readonly [K in keyof MemberRecord]: MemberRecord[K] } = {
    id,
    address,
    zone,
    weight,
    state: state as MemberState,
    incarnation,
    heartbeat,
  };
  if (since !== undefined) r.since = since;
  if (removedAt !== undefined) r.removedAt = removedAt;
  return settleRecord(r);
}
