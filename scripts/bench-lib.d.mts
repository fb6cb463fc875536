/** Types of the parts of bench-lib.mjs that tests use (plain JavaScript so the bench scripts run without a build). */
import type { Pool } from 'undici';

export const OK: 'ok';
export const MISS: 'miss';
export const SIBLINGS: 'siblings';

export interface KeyState {
  keys: number;
  valueSize: number;
  names: string[];
  value: Buffer;
  contexts: (string | undefined)[];
  written: Uint8Array;
  extra: unknown;
}

export function makeKeyState(opts: { prefix: string; keys: number; valueSize: number }): KeyState;

/** One backend's PUT and GET of key `i`: OK, MISS, SIBLINGS, or a failure label (a status or an error name). */
export interface Protocol {
  name: string;
  put(pool: Pool, state: KeyState, i: number): Promise<string | number>;
  get(pool: Pool, state: KeyState, i: number): Promise<string | number>;
}

/** CPU clock ticks of the whole machine from /proc/stat's text: all states, steal, and busy (user through softirq). */
export function parseProcStat(text: string): { total: number; steal: number; busy: number } | undefined;

/** Cores the rest of the machine used between two readings `seconds` apart, beyond `ownCores`. */
export function foreignCores(
  before: { busy: number } | undefined,
  after: { busy: number } | undefined,
  seconds: number,
  ownCores: number,
): number | undefined;

/** Foreign CPU (cores) above which a measured window counts as shared with other work. */
export const FOREIGN_LIMIT: number;
/** Steal (fraction of the machine's CPU) at which a window never counts toward the goal. */
export const STEAL_LIMIT: number;

/** Steal between two readings as a fraction of all CPU time in between. */
export function stealFraction(
  before: { total: number; steal: number } | undefined,
  after: { total: number; steal: number } | undefined,
): number | undefined;

export const protocols: Record<'ringkv' | 'baseline' | 'replicated' | 'etcd', Protocol>;

/** One measured run as runLoad returns it (the fields the formatters read). */
export interface RunResult {
  workload: string;
  valueSize: number;
  opsPerSec: number;
  latencyUs: { p50: number; p99: number; p999: number; max: number };
  counts: { ok: number; miss: number; siblings: number; failed: number };
  failures: Record<string, number>;
  clientCpu: number | undefined;
  serverCpu: number;
  loadAvg1: number;
  steal: number | undefined;
  /** Cores other processes used during the window (see foreignCores); absent in old reports. */
  otherCpu?: number | undefined;
}

/** The ratio table of `base` over `other`, one row per (workload, size) both ran; undefined if none. */
export function formatRatios(results: { target: string; result: RunResult }[], base: string, other: string): string | undefined;

/** One cell of summarizeRepeats: each run's ratio and the medians over the runs. */
export interface RepeatCell {
  workload: string;
  valueSize: number;
  runs: {
    run: number;
    ratio: number;
    p99: number;
    errors: number;
    steal: (number | undefined)[];
    other: (number | undefined)[];
    shared: boolean;
    /** Either side lost STEAL_LIMIT or more to the host (never counted as met). */
    stolen: boolean;
    met: boolean;
  }[];
  medianRatio: number;
  medianP99: number;
  met: number;
}

/** `base` against `other` over repeated runs (one results array per run); undefined if no cell has both. */
export function summarizeRepeats(
  runs: { target: string; result: RunResult }[][],
  base: string,
  other: string,
  goal?: number,
): RepeatCell[] | undefined;

/** summarizeRepeats as a table. */
export function formatRepeats(summary: RepeatCell[], goal?: number): string;

/** One value size of jointTarget: the runs with both a PUT and a GET cell, and those that met it. */
export interface JointTarget {
  valueSize: number;
  goal: number;
  runs: { run: number; met: boolean; shared: boolean; stolen: boolean; put: number; get: number }[];
  met: number[];
  /** Runs where other work shared the machine during a PUT or GET window (never counted as met). */
  shared: number[];
  /** Runs where the host stole STEAL_LIMIT or more from either side in a PUT or GET window (never counted as met). */
  stolen: number[];
}

/** PUT and GET both at `goal`x in the same run (p99 no worse, no errors), per value size. */
export function jointTarget(summary: RepeatCell[], goal?: number): JointTarget[];

/** jointTarget as one line per value size. */
export function formatJointTarget(joint: JointTarget[]): string;
