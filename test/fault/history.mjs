/**
 * Jepsen-style operation histories.
 *
 * Every operation is an invocation followed by exactly one completion, both appended to a
 * JSON-lines file as they happen (so a crash of the runner still leaves the history so far):
 *
 *   { i, t, p, op, type: 'invoke', f, w, ...fields }
 *   { i, t, p, op, type: 'ok' | 'fail' | 'unknown', f, w, ...fields }
 *
 * `i` is the event's position, `t` wall-clock ms, `p` the logical process (one operation in
 * flight per process), `op` pairs the two events, `f` the function (`add`, `read`, `put`,
 * `delete`, `final-read`, ...) and `w` the workload (`set`, `keys`, `del`). `fail` means the
 * operation certainly had no effect; `unknown` (Jepsen's `info`) that it may or may not have.
 *
 * Sets of integers are stored as sorted inclusive ranges, `[[0, 41], [43, 97]]`: a set that
 * grows to thousands of elements is mostly one range, which keeps long histories small.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';

/** Sorted inclusive ranges of a collection of integers (duplicates ignored). */
export function toRanges(values) {
  const sorted = [...new Set(values)].sort((a, b) => a - b);
  const out = [];
  for (const v of sorted) {
    const last = out[out.length - 1];
    if (last && v === last[1] + 1) last[1] = v;
    else out.push([v, v]);
  }
  return out;
}

/** The integers of `ranges`, ascending. */
export function fromRanges(ranges) {
  const out = [];
  for (const [a, b] of ranges) for (let v = a; v <= b; v++) out.push(v);
  return out;
}

/** Whether `v` is in `ranges` (binary search). */
export function rangesHas(ranges, v) {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [a, b] = ranges[mid];
    if (v < a) hi = mid - 1;
    else if (v > b) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Number of integers in `ranges`. */
export function rangesSize(ranges) {
  let n = 0;
  for (const [a, b] of ranges) n += b - a + 1;
  return n;
}

/** Appends events to a JSON-lines file (or only to memory when `path` is undefined). */
export class HistoryWriter {
  constructor(path, { now = () => Date.now() } = {}) {
    this.fd = path === undefined ? undefined : openSync(path, 'a');
    this.now = now;
    this.index = 0;
    this.nextOp = 0;
    /** Kept only when there is no file (unit tests). */
    this.events = path === undefined ? [] : undefined;
    /** Operations invoked but not completed, by op id. */
    this.open = new Map();
  }

  write(event) {
    const e = { i: this.index++, t: this.now(), ...event };
    if (this.fd !== undefined) writeSync(this.fd, `${JSON.stringify(e)}\n`);
    else this.events.push(e);
    return e;
  }

  /** Records an invocation; returns the handle to complete it with. */
  invoke(p, f, w, fields = {}) {
    const op = this.nextOp++;
    this.write({ p, op, type: 'invoke', f, w, ...fields });
    const handle = { op, p, f, w };
    this.open.set(op, handle);
    return handle;
  }

  /** Records the completion of `handle`: 'ok', 'fail' or 'unknown'. */
  complete(handle, type, fields = {}) {
    if (type !== 'ok' && type !== 'fail' && type !== 'unknown') throw new Error(`bad completion type ${type}`);
    if (!this.open.delete(handle.op)) throw new Error(`operation ${handle.op} completed twice or never invoked`);
    return this.write({ p: handle.p, op: handle.op, type, f: handle.f, w: handle.w, ...fields });
  }

  /** A free-form event that is not an operation (phase markers, faults seen by the client). */
  note(kind, fields = {}) {
    return this.write({ type: 'note', kind, ...fields });
  }

  close() {
    // Anything still open when the history ends has an unknown outcome.
    for (const h of [...this.open.values()]) this.complete(h, 'unknown', { error: 'HISTORY_CLOSED' });
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Reads a JSON-lines history; a torn last line (the writer was killed mid-write) is dropped. */
export function readHistory(path) {
  const lines = readFileSync(path, 'utf8').split('\n');
  const out = [];
  for (let k = 0; k < lines.length; k++) {
    const line = lines[k];
    if (!line) continue;
    try {
      out.push(JSON.parse(line));
    } catch (err) {
      if (k < lines.length - 2) throw new Error(`history ${path} line ${k + 1}: ${err.message}`);
    }
  }
  return out;
}

/**
 * Pairs invocations with completions: one record per operation,
 * `{ op, p, f, w, invoke, complete, type }` where `invoke`/`complete` are the events and
 * `type` the completion's type ('unknown' if the history ends before it completes; Jepsen's
 * 'info' is read as 'unknown').
 */
export function pairOps(events) {
  const byOp = new Map();
  const ops = [];
  for (const e of events) {
    if (e.type === 'note') continue;
    if (e.type === 'invoke') {
      const rec = { op: e.op, p: e.p, f: e.f, w: e.w, invoke: e, complete: undefined, type: 'unknown' };
      byOp.set(e.op, rec);
      ops.push(rec);
      continue;
    }
    const rec = byOp.get(e.op);
    if (!rec) throw new Error(`completion without invocation: ${JSON.stringify(e)}`);
    if (rec.complete) throw new Error(`operation ${e.op} completed twice`);
    rec.complete = e;
    rec.type = e.type === 'info' ? 'unknown' : e.type;
  }
  return ops;
}

/** Counts per workload, function and outcome: `{ 'set add': { ok, fail, unknown }, ... }`. */
export function summarizeHistory(events) {
  const out = {};
  for (const rec of pairOps(events)) {
    const k = `${rec.w} ${rec.f}`;
    out[k] ??= { ok: 0, fail: 0, unknown: 0 };
    out[k][rec.type]++;
  }
  return out;
}

/** Error codes of failed and unknown operations, most frequent first: `[['QUORUM_FAILED', 12], ...]`. */
export function errorCounts(events) {
  const counts = new Map();
  for (const rec of pairOps(events)) {
    if (rec.type === 'ok') continue;
    const k = `${rec.type} ${rec.complete?.error ?? 'HISTORY_ENDED'}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1]);
}
