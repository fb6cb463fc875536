/** Types of checker.mjs (the implementation is plain JavaScript so scripts/ can run it). */
import type { HistoryEvent } from './history.mjs';

export interface Disagreement {
  key: string;
  views: Record<string, string>;
}

export interface SetCheck {
  valid: boolean;
  finalRead: boolean;
  attempts: number;
  acked: number;
  failed: number;
  unknown: number;
  final: number;
  lost: number[];
  unexpected: number[];
  recovered: number[];
  unknownAbsent: number;
  failedButPresent: number[];
  reads: number;
  staleReads: number;
  staleElementReads: number;
  staleElements: number;
  setFull: { stable: number; lost: number[]; neverRead: number; duplicated: number };
  siblings: {
    writers: number;
    maxSiblings: number;
    histogram: Record<string, number>;
    dominated: { read: number; element: number; writer: number; coveredAt: number }[];
    unexplained: { read: number; hash: string; size: number }[];
    strictQuorum: boolean;
  };
  disagreements: Disagreement[];
}

export interface KeysCheck {
  valid: boolean;
  attempts: number;
  acked: number;
  failed: number;
  unknown: number;
  finalKeys: number;
  lost: string[];
  unexpected: { key: string; value: string }[];
  recovered: string[];
  unread: string[];
  failedButPresent: string[];
  duplicateVersions: number;
  disagreements: Disagreement[];
}

export interface DeletesCheck {
  valid: boolean;
  created: number;
  deleted: number;
  deleteUnknown: number;
  deleteFailed: number;
  resurrected: string[];
  controlsLost: string[];
  unread: string[];
  tombstones: number;
  reaped: number;
  reapReads: number;
  disagreements: Disagreement[];
}

export interface HistoryCheck {
  valid: boolean;
  converged: boolean;
  set: SetCheck;
  keys: KeysCheck;
  deletes: DeletesCheck;
}

export interface CheckOptions {
  /** r + w > n and no fallback replicas: dominated siblings are invalid (default true). */
  strictQuorum?: boolean;
}

export function checkSet(events: HistoryEvent[], opts?: CheckOptions): SetCheck;
export function checkKeys(events: HistoryEvent[]): KeysCheck;
export function checkDeletes(events: HistoryEvent[]): DeletesCheck;
export function checkHistory(events: HistoryEvent[], opts?: CheckOptions): HistoryCheck;
export function describeCheck(result: HistoryCheck, limit?: number): string[];
