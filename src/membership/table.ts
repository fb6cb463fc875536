/**
 * The member table and its merge (pure).
 *
 * Every member's record is owned by the member itself: it alone bumps its heartbeat and
 * incarnation. Nodes exchange whole tables and merge them per id with `mergeRecord`, which
 * keeps the greater of two records under a total order. Taking the maximum of a total order
 * is commutative, associative and idempotent, so tables converge whatever the order,
 * duplication or loss of gossip messages (a state-based CRDT: a join-semilattice per id).
 *
 * The order is (incarnation, state priority, heartbeat), then a tie-break on the remaining
 * fields. The tie-break never matters for honest records (the owner never writes two
 * different records with the same incarnation and heartbeat), but without it two conflicting
 * records would make the merge depend on argument order.
 */
import type { RingMember } from '../ring/index.js';
import type { MemberRecord, MemberState } from './types.js';

/**
 * Precedence among states at the same incarnation: removed > leaving > active > joining.
 * `removed` on top is what lets an admin on any node remove a member by rewriting its record
 * at the *same* incarnation; only the member itself can outrank that, by restarting with a
 * newer incarnation.
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

/**
 * Total order on records of one member: (incarnation, state priority, heartbeat), then
 * address, zone, weight as a deterministic tie-break. Negative if `a` < `b`.
 */
export function compareRecords(a: MemberRecord, b: MemberRecord): number {
  return (
    cmp(a.incarnation, b.incarnation) ||
    cmp(STATE_PRIORITY[a.state], STATE_PRIORITY[b.state]) ||
    cmp(a.heartbeat, b.heartbeat) ||
    cmp(a.address, b.address) ||
    cmp(a.zone, b.zone) ||
    cmp(a.weight, b.weight) ||
    cmp(a.id, b.id)
  );
}

/** The greater of two records of the same member (the whole record wins; fields never mix). */
export function mergeRecord(a: MemberRecord, b: MemberRecord): MemberRecord {
  return compareRecords(a, b) >= 0 ? a : b;
}

/** Merges two tables into a new one; neither input is modified. */
export function mergeTables(a: MemberTable, b: MemberTable): Map<string, MemberRecord> {
  const out = new Map(a);
  applyRecords(out, b.values());
  return out;
}

/**
 * Merges records into `table` in place and returns the records that won (in input order).
 * A record equal to the one held is not a change.
 */
export function applyRecords(table: Map<string, MemberRecord>, records: Iterable<MemberRecord>): RecordChange[] {
  const changes: RecordChange[] = [];
  for (const r of records) {
    const before = table.get(r.id);
    if (before === undefined || compareRecords(r, before) > 0) {
      table.set(r.id, r);
      changes.push({ before, after: r });
    }
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
    b.weight !== a.weight
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
 * returns a clean copy with only the known fields, or undefined if it is malformed.
 */
export function parseRecord(v: unknown): MemberRecord | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const { id, address, zone, weight, state, incarnation, heartbeat } = o;
  if (typeof id !== 'string' || id.length === 0) return undefined;
  if (typeof address !== 'string' || typeof zone !== 'string') return undefined;
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) return undefined;
  if (typeof state !== 'string' || !STATES.has(state)) return undefined;
  if (!isCount(incarnation) || !isCount(heartbeat)) return undefined;
  return { id, address, zone, weight, state: state as MemberState, incarnation, heartbeat };
}
