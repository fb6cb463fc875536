import type { Ring } from '../ring/types.js';

/** A member's lifecycle state as gossiped (agreed cluster-wide by merge). */
export type MemberState = 'joining' | 'active' | 'leaving' | 'removed';

/** The status SPEC §2 shows in /v1/cluster: lifecycle state combined with local liveness. */
export type MemberStatus = 'up' | 'down' | 'joining' | 'leaving';

/** One member's gossiped record. */
export interface MemberRecord {
  readonly id: string;
  /** `host:port` other nodes use to reach it. */
  readonly address: string;
  readonly zone: string;
  readonly weight: number;
  readonly state: MemberState;
  /** Bumped by the member itself on every restart and state change; orders records. */
  readonly incarnation: number;
  /** Bumped by the member itself every gossip round while it runs; drives failure detection. */
  readonly heartbeat: number;
  /**
   * The incarnation at which the member's current membership began: when it started joining
   * (or founded the cluster). A restart that resumes its place keeps it; only a new join
   * starts a new one. A removal at or above it ends this membership, whatever the record's
   * incarnation (see table.ts). Absent on records written by versions before it existed:
   * read as the record's own incarnation, which is what those versions assume.
   */
  readonly since?: number;
  /**
   * The latest admin removal of this member known to whoever wrote or merged this record
   * (the removal's incarnation), carried along so that it is not lost to a record of a life
   * that began before it. Absent: none known, or (on a removed record) its own incarnation.
   */
  readonly removedAt?: number;
}

/** What the coordinator, handoff and anti-entropy need from membership. */
export interface MembershipView {
  /** This node's id. */
  readonly self: string;
  /** The current ring (rebuilt whenever the set of ring members changes). */
  ring(): Ring;
  /**
   * The ring the cluster is moving to: active and joining members, without leaving ones.
   * The same object as ring() while no member is joining or leaving.
   */
  pendingRing(): Ring;
  /** A member's record (any state), or undefined. */
  member(id: string): MemberRecord | undefined;
  /** Local failure-detector verdict; this node is always up to itself. */
  isUp(id: string): boolean;
  /** Every non-removed member with its SPEC status, sorted by id. */
  statuses(): { id: string; address: string; zone: string; weight: number; status: MemberStatus }[];
  /** Called after every change of the member table, ring or liveness verdict. */
  onChange(listener: () => void): () => void;
}
