/** Types of run.mjs (the implementation is plain JavaScript so scripts/faults.mjs can run it). */
import type { HistoryCheck } from './checker.mjs';

export type FaultKind = 'isolate' | 'halves' | 'bridge' | 'kill' | 'pause' | 'isolate-kill' | 'quiet';

export interface Fault {
  kind: FaultKind;
  gapMs: number;
  durationMs: number;
  node?: string;
  /** isolate-kill: the node killed while `node` is isolated. */
  victim?: string;
  bridge?: string;
  sides?: string[][];
}

export interface AppliedFault extends Fault {
  description: string;
  startMs: number;
  endMs: number;
  cut?: string[];
  dropRules?: number;
  deletes?: string[] | string;
  seenDownBy?: string[];
  killedPid?: number;
  restartMs?: number;
  error?: string;
}

export interface WorkloadConfig {
  set?: { key?: string; writers?: number; readers?: number; paceMs?: number; readPaceMs?: number; resolver?: 'jsonSetUnion' | 'lastWriterWins' };
  keys?: { writers?: number; paceMs?: number };
  del?: { keys?: number };
  client?: { timeoutMs?: number; attemptTimeoutMs?: number; connectTimeoutMs?: number };
}

export interface RunOptions {
  seed: number;
  nodes?: number;
  schedule?: Fault[];
  seconds?: number;
  gossipIntervalMs?: number;
  antiEntropyIntervalMs?: number;
  hintedHandoff?: boolean;
  /** Grace period passed to the node's tombstone grace flag, if the build has one. */
  tombstoneGraceMs?: number;
  /** Check deleted keys after reaping (default true; false skips step 6). */
  reapCheck?: boolean;
  workload?: WorkloadConfig;
  finalDeadlineMs?: number;
  reconvergeDeadlineMs?: number;
  strictQuorum?: boolean;
  /** Keep the run directory (history, node logs, data) even when the run is valid. */
  keepDir?: boolean;
  /** Remove the run directory even when the run is invalid (expected failures). */
  discardDir?: boolean;
  log?: (message: string) => void;
}

export interface RunReport {
  seed: number;
  nodes: number;
  dir: string;
  valid: boolean;
  faults: AppliedFault[];
  phases: Record<string, number | undefined>;
  /** Failures that are not in the history (reconvergence, hints, final agreement). */
  findings: string[];
  /** Worth knowing, not failures (e.g. tombstones not reaped in time). */
  warnings: string[];
  /** Whether every deleted key read as reaped through every node (undefined: no reaping in this build). */
  reaped?: boolean;
  final: { converged: boolean; rounds: number; disagreeing: number; keys: number };
  reaping: string;
  reapReads: { keys: number; present: number; tombstone: number; reaped: number; failed: number };
  history: Record<string, { ok: number; fail: number; unknown: number }>;
  errors: [string, number][];
  events: number;
  check: HistoryCheck;
  durationMs: number;
}

export const FAULT_KINDS: FaultKind[];
export function netnsUnavailableReason(): string | undefined;
export function tombstoneGraceFlag(distDir?: string): Promise<string | undefined>;
export function snapshotDist(dir: string): string;
export function fixedSchedule(opts: {
  seed: number;
  nodes: string[];
  kinds?: FaultKind[];
  gapMs?: number;
  durationMs?: number;
  pauseMs?: number;
  downMs?: number;
}): Fault[];
export function randomSchedule(opts: {
  seed: number;
  nodes: string[];
  seconds: number;
  kinds?: FaultKind[];
  gapMs?: [number, number];
  durationMs?: [number, number];
  minPauseMs?: number;
}): Fault[];
export function runFaultTest(opts: RunOptions): Promise<RunReport>;
export function formatReport(report: RunReport): string;
