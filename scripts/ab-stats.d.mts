/** Types of ab-stats.mjs (plain JavaScript so the bench scripts run without a build). */

/** The parts of bench-lib's runLoad result that the summary reads. */
export interface RunResult {
  workload: string;
  valueSize: number;
  opsPerSec: number;
  /** Cores busy in all server processes over the run (1 = one core). */
  serverCpu: number;
  latencyUs: { p99: number };
  failures: Record<string, number>;
}

export interface AbRun {
  round: number;
  variant: 'A' | 'B';
  result: RunResult;
}

export interface AbSide {
  ops: number;
  us: number | undefined;
  p99Us: number;
  failures: number;
}

export interface AbRow {
  workload: string;
  valueSize: number;
  rounds: number;
  a: AbSide;
  b: AbSide;
  opsRatio: number;
  usRatio: number | undefined;
  p99Ratio: number;
  bFasterRounds: number;
  bCheaperRounds: number | undefined;
}

export function median(values: readonly number[]): number;
export function serverUsPerOp(r: RunResult): number | undefined;
export function summarizeAb(runs: readonly AbRun[]): AbRow[];
