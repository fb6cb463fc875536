/** Types of the parts of workload.mjs that tests use. */
export interface SeededRandom {
  next(): number;
  int(n: number): number;
  bytes(len: number): Uint8Array;
}
export function seeded(seed: number): SeededRandom;
export function valueHash(bytes: Uint8Array): string;
/** 'fail' only when the write certainly had no effect, else 'unknown'. */
export function writeOutcome(err: unknown): 'fail' | 'unknown';
export const WORKLOAD_DEFAULTS: Record<string, Record<string, unknown>>;
