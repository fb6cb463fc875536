/** Types of history.mjs (the implementation is plain JavaScript so scripts/ can run it). */

/** Sorted inclusive integer ranges: [[0, 41], [43, 97]]. */
export type Ranges = [number, number][];

export type CompletionType = 'ok' | 'fail' | 'unknown';

export interface HistoryEvent {
  i: number;
  t: number;
  p?: number;
  op?: number;
  type: 'invoke' | CompletionType | 'info' | 'note';
  f?: string;
  w?: string;
  [field: string]: unknown;
}

export interface OpHandle {
  readonly op: number;
  readonly p: number;
  readonly f: string;
  readonly w: string;
}

export interface PairedOp {
  op: number;
  p: number;
  f: string;
  w: string;
  invoke: HistoryEvent;
  complete: HistoryEvent | undefined;
  type: CompletionType;
}

export function toRanges(values: Iterable<number>): Ranges;
export function fromRanges(ranges: Ranges): number[];
export function rangesHas(ranges: Ranges, v: number): boolean;
export function rangesSize(ranges: Ranges): number;

export class HistoryWriter {
  constructor(path: string | undefined, opts?: { now?: () => number });
  /** The events, when there is no file. */
  readonly events: HistoryEvent[] | undefined;
  readonly open: Map<number, OpHandle>;
  nextOp: number;
  invoke(p: number, f: string, w: string, fields?: Record<string, unknown>): OpHandle;
  complete(handle: OpHandle, type: CompletionType, fields?: Record<string, unknown>): HistoryEvent;
  note(kind: string, fields?: Record<string, unknown>): HistoryEvent;
  close(): void;
}

export function readHistory(path: string): HistoryEvent[];
export function pairOps(events: HistoryEvent[]): PairedOp[];
export function summarizeHistory(events: HistoryEvent[]): Record<string, { ok: number; fail: number; unknown: number }>;
export function errorCounts(events: HistoryEvent[]): [string, number][];
