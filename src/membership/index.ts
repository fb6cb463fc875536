/** Membership: the gossiped member table, failure detection and the ring built from them. */
export type { MemberRecord, MemberState, MemberStatus, MembershipView } from './types.js';
export {
  applyRecords,
  compareRecords,
  isNewerBeat,
  isSignificant,
  type MemberTable,
  mergeRecord,
  mergeTables,
  parseRecord,
  type RecordChange,
  ringKey,
  ringMembersOf,
  STATE_PRIORITY,
  sortedRecords,
} from './table.js';
export { ArrivalWindow, PHI_DEFAULTS, PhiAccrualDetector, type PhiOptions, phiOf } from './phi.js';
export {
  decodeGossip,
  encodeGossip,
  GOSSIP_ROUTE,
  MEMBERSHIP_DEFAULTS,
  Membership,
  type MembershipComponents,
  type MembershipInit,
  type MembershipLog,
  type MembershipStats,
} from './gossip.js';
