/**
 * The fault suite's checker must be able to fail: hand-made histories with lost, unexpected,
 * recovered and stale elements, dominated and unexplained siblings, resurrected deletes and
 * disagreeing nodes, each of which it must report.
 */
import { describe, expect, it } from 'vitest';
import {
  ConnectionError,
  QuorumError,
  RequestError,
  ServerError,
  TimeoutError,
  UnavailableError,
} from '../../../src/client/errors.js';
import { checkDeletes, checkHistory, checkKeys, checkSet, describeCheck } from '../../fault/checker.mjs';
import {
  fromRanges,
  type HistoryEvent,
  HistoryWriter,
  type OpHandle,
  pairOps,
  rangesHas,
  summarizeHistory,
  toRanges,
} from '../../fault/history.mjs';
import { writeOutcome } from '../../fault/workload.mjs';

type Sib = { ranges: [number, number][]; hash: string; dups: number };
const sib = (hash: string, values: number[]): Sib => ({ ranges: toRanges(values), hash, dups: 0 });

/** A history builder over an in-memory HistoryWriter with a ticking clock. */
class H {
  private t = 0;
  readonly w = new HistoryWriter(undefined, { now: () => this.t++ });

  get events(): HistoryEvent[] {
    return this.w.events ?? [];
  }

  /** Invoke add(e) by process p; complete it later with `done`. */
  startAdd(p: number, e: number): OpHandle {
    return this.w.invoke(p, 'add', 'set', { value: e });
  }

  done(h: OpHandle, type: 'ok' | 'fail' | 'unknown', read: number[] = [], wrote = `h${h.op}`): void {
    this.w.complete(h, type, type === 'fail' ? { error: 'QUORUM_FAILED', phase: 'read' } : { read: toRanges(read), wrote });
  }

  /** A whole add: read `read`, wrote hash `wrote`. */
  add(p: number, e: number, type: 'ok' | 'fail' | 'unknown', read: number[] = [], wrote?: string): OpHandle {
    const h = this.startAdd(p, e);
    this.done(h, type, read, wrote);
    return h;
  }

  read(p: number, siblings: Sib[], f = 'read', extra: Record<string, unknown> = {}): void {
    const h = this.w.invoke(p, f, 'set', { key: 'set', ...extra });
    this.w.complete(h, 'ok', { key: 'set', ...extra, found: siblings.length > 0, siblings });
  }

  final(siblings: Sib[], node = 'all', r: number | 'all' = 'all', round = 1): void {
    this.read(99, siblings, 'final-read', { node, r, round });
  }

  put(p: number, key: string, type: 'ok' | 'fail' | 'unknown', w = 'keys', value: string = key): void {
    const h = this.w.invoke(p, 'put', w, { key, value });
    this.w.complete(h, type);
  }

  keyRead(f: string, w: string, key: string, node: string, r: number | 'all', values: string[] | undefined, extra: Record<string, unknown> = {}): void {
    const fields = { key, node, r, round: 1 };
    const h = this.w.invoke(98, f, w, fields);
    this.w.complete(h, 'ok', { ...fields, ...(values ? { found: true, values } : { found: false, tombstone: true }), ...extra });
  }
}

describe('ranges', () => {
  it('round-trips sets of integers and answers membership', () => {
    const xs = [5, 1, 2, 3, 9, 10, 3, 42];
    const r = toRanges(xs);
    expect(r).toEqual([
      [1, 3],
      [5, 5],
      [9, 10],
      [42, 42],
    ]);
    expect(fromRanges(r)).toEqual([1, 2, 3, 5, 9, 10, 42]);
    for (const v of [1, 2, 3, 5, 9, 10, 42]) expect(rangesHas(r, v)).toBe(true);
    for (const v of [0, 4, 6, 8, 11, 41, 43]) expect(rangesHas(r, v)).toBe(false);
  });
});

describe('history', () => {
  it('pairs invocations with completions and rejects double completions', () => {
    const h = new H();
    const a = h.startAdd(0, 1);
    const b = h.startAdd(1, 2);
    h.done(b, 'ok', [1]);
    h.done(a, 'unknown');
    const ops = pairOps(h.events);
    expect(ops.map((o) => [o.invoke.value, o.type])).toEqual([
      [1, 'unknown'],
      [2, 'ok'],
    ]);
    expect(summarizeHistory(h.events)).toEqual({ 'set add': { ok: 1, fail: 0, unknown: 1 } });
    expect(() => h.w.complete(a, 'ok')).toThrow(/completed twice/);
  });

  it('treats an operation still open at the end as unknown', () => {
    const h = new H();
    h.startAdd(0, 7);
    expect(pairOps(h.events)[0]?.type).toBe('unknown');
    h.w.close();
    expect(h.events.at(-1)).toMatchObject({ type: 'unknown', error: 'HISTORY_CLOSED' });
  });
});

describe('checkSet', () => {
  it('accepts a history where every acknowledged add is in the final read', () => {
    const h = new H();
    h.add(0, 0, 'ok', [], 'a');
    h.add(1, 1, 'ok', [0], 'b');
    h.add(0, 2, 'ok', [0, 1], 'c');
    h.read(2, [sib('c', [0, 1, 2])]);
    h.final([sib('c', [0, 1, 2])]);
    const r = checkSet(h.events);
    expect(r).toMatchObject({ valid: true, attempts: 3, acked: 3, final: 3, lost: [], unexpected: [], recovered: [] });
    expect(r.staleReads).toBe(0);
    expect(r.setFull).toMatchObject({ stable: 3, lost: [], neverRead: 0 });
  });

  it('reports an acknowledged add missing from the final read as lost', () => {
    const h = new H();
    h.add(0, 0, 'ok', [], 'a');
    h.add(1, 1, 'ok', [], 'b'); // concurrent with add(0): both siblings
    h.add(0, 2, 'ok', [0], 'c'); // read only add(0)'s version: add(1) survives only as a sibling
    h.final([sib('c', [0, 2])]); // ... but the final read lost it
    const r = checkSet(h.events);
    expect(r.valid).toBe(false);
    expect(r.lost).toEqual([1]);
    expect(r.setFull.lost).toEqual([1]);
  });

  it('reports an element that was never attempted as unexpected', () => {
    const h = new H();
    h.add(0, 0, 'ok', [], 'a');
    h.final([sib('a', [0]), sib('x', [0, 77])]);
    const r = checkSet(h.events);
    expect(r.valid).toBe(false);
    expect(r.unexpected).toEqual([77]);
    // ... and the sibling no add wrote is unexplained.
    expect(r.siblings.unexplained).toEqual([expect.objectContaining({ hash: 'x', size: 2 })]);
  });

  it('counts unknown adds that are present as recovered, and absent ones as fine', () => {
    const h = new H();
    h.add(0, 0, 'ok', [], 'a');
    h.add(1, 1, 'unknown', [0], 'b'); // applied after all
    h.add(2, 2, 'unknown', [0], 'c'); // never applied
    h.final([sib('b', [0, 1])]);
    const r = checkSet(h.events);
    expect(r.valid).toBe(true);
    expect(r.recovered).toEqual([1]);
    expect(r.unknownAbsent).toBe(1);
  });

  it('rejects an add recorded as failed (certainly not applied) that shows up', () => {
    const h = new H();
    h.add(0, 0, 'ok', [], 'a');
    h.add(1, 1, 'fail');
    h.final([sib('a', [0]), sib('z', [1])]);
    const r = checkSet(h.events);
    expect(r.valid).toBe(false);
    expect(r.failedButPresent).toEqual([1]);
  });

  it('reports stale reads: a read invoked after an add was acknowledged that misses it', () => {
    const h = new H();
    h.add(0, 0, 'ok', [], 'a');
    h.add(0, 1, 'ok', [0], 'b');
    h.read(2, [sib('a', [0])]); // stale: 1 was acknowledged before this read began
    h.read(2, [sib('b', [0, 1])]);
    h.final([sib('b', [0, 1])]);
    // Stale reads are allowed where quorums may not overlap (sloppy quorums, partitions)...
    const r = checkSet(h.events, { strictQuorum: false });
    expect(r.valid).toBe(true);
    expect(r.staleReads).toBe(1);
    expect(r.staleElements).toBe(1);
    expect(r.setFull.stable).toBe(2);
    // ... but with strict quorums the stale version it returned had been superseded by an
    // acknowledged write, which the sibling check catches.
    const strict = checkSet(h.events);
    expect(strict.valid).toBe(false);
    expect(strict.siblings.dominated).toEqual([expect.objectContaining({ element: 0 })]);
  });

  it('does not call a read stale for an add still in flight when it was invoked', () => {
    const h = new H();
    h.add(0, 0, 'ok', [], 'a');
    const inFlight = h.startAdd(1, 1);
    h.read(2, [sib('a', [0])]);
    h.done(inFlight, 'ok', [0], 'b');
    h.final([sib('b', [0, 1])]);
    expect(checkSet(h.events).staleReads).toBe(0);
  });

  it('treats an element seen by a read as known, so a later read missing it is stale and the final miss is lost', () => {
    const h = new H();
    h.add(0, 0, 'ok', [], 'a');
    h.add(1, 1, 'unknown', [0], 'b');
    h.read(2, [sib('b', [0, 1])]); // 1 is now known to be present
    h.final([sib('a', [0])]);
    const r = checkSet(h.events);
    expect(r.lost).toEqual([]); // Jepsen's set checker: only acked adds can be lost
    expect(r.setFull.lost).toEqual([1]); // set-full: known (seen), then absent for good
    expect(r.staleReads).toBe(1); // the final read missed a known element
  });

  it('flags a sibling that an acknowledged write had already superseded (not truly concurrent)', () => {
    const h = new H();
    h.add(0, 0, 'ok', [], 'a');
    h.add(1, 1, 'ok', [0], 'b'); // read add(0)'s version: its context covers it
    h.read(2, [sib('a', [0]), sib('b', [0, 1])]);
    h.final([sib('b', [0, 1])]);
    const r = checkSet(h.events);
    expect(r.valid).toBe(false);
    expect(r.lost).toEqual([]);
    expect(r.siblings.dominated).toEqual([expect.objectContaining({ element: 0 })]);
    // With sloppy quorums it is only reported.
    expect(checkSet(h.events, { strictQuorum: false }).valid).toBe(true);
  });

  it('accepts siblings of truly concurrent writers, up to one per writer', () => {
    const h = new H();
    const a = h.startAdd(0, 0);
    const b = h.startAdd(1, 1);
    const c = h.startAdd(2, 2);
    h.done(a, 'ok', [], 'a');
    h.done(b, 'ok', [], 'b');
    h.done(c, 'ok', [], 'c');
    h.read(3, [sib('a', [0]), sib('b', [1]), sib('c', [2])]);
    h.add(0, 3, 'ok', [0, 1, 2], 'd');
    h.final([sib('d', [0, 1, 2, 3])]);
    const r = checkSet(h.events);
    expect(r.valid).toBe(true);
    expect(r.siblings).toMatchObject({ writers: 3, maxSiblings: 3, dominated: [], unexplained: [] });
  });

  it('is not valid without a final read', () => {
    const h = new H();
    h.add(0, 0, 'ok', [], 'a');
    const r = checkSet(h.events);
    expect(r.finalRead).toBe(false);
    expect(r.valid).toBe(false);
  });

  it('reports duplicated elements within one read', () => {
    const h = new H();
    h.add(0, 0, 'ok', [], 'a');
    h.final([{ ...sib('a', [0]), dups: 1 }]);
    const r = checkSet(h.events);
    expect(r.setFull.duplicated).toBe(1);
    expect(r.valid).toBe(false);
  });
});

describe('checkKeys', () => {
  it('finds lost, unexpected, recovered and unread keys', () => {
    const h = new H();
    h.put(0, 'k:0', 'ok');
    h.put(0, 'k:1', 'ok'); // lost
    h.put(0, 'k:2', 'unknown'); // recovered
    h.put(0, 'k:3', 'unknown'); // not applied: fine
    h.put(0, 'k:4', 'ok'); // no final read
    h.keyRead('final-read', 'keys', 'k:0', 'all', 'all', ['k:0']);
    h.keyRead('final-read', 'keys', 'k:1', 'all', 'all', undefined);
    h.keyRead('final-read', 'keys', 'k:2', 'all', 'all', ['k:2']);
    h.keyRead('final-read', 'keys', 'k:3', 'all', 'all', undefined);
    h.keyRead('final-read', 'keys', 'k:9', 'all', 'all', ['k:9']); // a probe that exists
    const r = checkKeys(h.events);
    expect(r.valid).toBe(false);
    expect(r.lost).toEqual(['k:1']);
    expect(r.recovered).toEqual(['k:2']);
    expect(r.unread).toEqual(['k:4']);
    expect(r.unexpected).toEqual([{ key: 'k:9', value: 'k:9' }]);
  });

  it('reports a wrong value as unexpected and the written one as lost', () => {
    const h = new H();
    h.put(0, 'k:0', 'ok');
    h.keyRead('final-read', 'keys', 'k:0', 'all', 'all', ['garbage']);
    const r = checkKeys(h.events);
    expect(r.lost).toEqual(['k:0']);
    expect(r.unexpected).toEqual([{ key: 'k:0', value: 'garbage' }]);
  });

  it('accepts a clean history', () => {
    const h = new H();
    h.put(0, 'k:0', 'ok');
    h.put(0, 'k:1', 'fail');
    h.keyRead('final-read', 'keys', 'k:0', 'all', 'all', ['k:0']);
    h.keyRead('final-read', 'keys', 'k:1', 'all', 'all', undefined);
    expect(checkKeys(h.events).valid).toBe(true);
  });
});

describe('checkDeletes', () => {
  function created(h: H, keys: string[]): void {
    for (const k of keys) h.put(0, k, 'ok', 'del');
  }
  function del(h: H, key: string, type: 'ok' | 'fail' | 'unknown'): void {
    const op = h.w.invoke(1, 'delete', 'del', { key });
    h.w.complete(op, type);
  }

  it('reports a deleted key that is back after tombstones were reaped', () => {
    const h = new H();
    created(h, ['d:0', 'd:1', 'd:2']);
    del(h, 'd:0', 'ok');
    for (const k of ['d:0', 'd:1', 'd:2']) h.keyRead('final-read', 'del', k, 'all', 'all', k === 'd:0' ? undefined : [k]);
    // Reaped (404 without tombstone) on n1, but n3 brings the old value back.
    h.keyRead('reap-read', 'del', 'd:0', 'n1', 1, undefined, { tombstone: false });
    h.keyRead('reap-read', 'del', 'd:0', 'n3', 1, ['d:0']);
    const r = checkDeletes(h.events);
    expect(r.valid).toBe(false);
    expect(r.resurrected).toEqual(['d:0']);
  });

  it('reports a key present through one node in the final round as resurrected', () => {
    const h = new H();
    created(h, ['d:0']);
    del(h, 'd:0', 'ok');
    h.keyRead('final-read', 'del', 'd:0', 'n1', 1, undefined);
    h.keyRead('final-read', 'del', 'd:0', 'n2', 1, ['d:0']);
    h.keyRead('final-read', 'del', 'd:0', 'all', 'all', undefined);
    const r = checkDeletes(h.events);
    expect(r.resurrected).toEqual(['d:0']);
    expect(r.disagreements).toHaveLength(1);
  });

  it('reports a created key that was never deleted but is gone, and counts tombstones vs reaped', () => {
    const h = new H();
    created(h, ['d:0', 'd:1', 'd:2']);
    del(h, 'd:0', 'ok');
    del(h, 'd:1', 'unknown');
    h.keyRead('final-read', 'del', 'd:0', 'n1', 1, undefined);
    h.keyRead('final-read', 'del', 'd:0', 'all', 'all', undefined);
    h.keyRead('final-read', 'del', 'd:1', 'all', 'all', ['d:1']); // unknown delete: either is fine
    h.keyRead('final-read', 'del', 'd:2', 'all', 'all', undefined); // never deleted, gone
    const r = checkDeletes(h.events);
    expect(r.valid).toBe(false);
    expect(r.controlsLost).toEqual(['d:2']);
    expect(r.resurrected).toEqual([]);
    expect(r.tombstones).toBe(1);
    expect(r.reaped).toBe(0);
  });
});

describe('checkHistory', () => {
  it('is invalid when nodes disagree in the last final round, even if the quorum read is complete', () => {
    const h = new H();
    h.add(0, 0, 'ok', [], 'a');
    h.add(0, 1, 'ok', [0], 'b');
    h.final([sib('b', [0, 1])], 'n1', 1);
    h.final([sib('a', [0])], 'n2', 1);
    h.final([sib('b', [0, 1])], 'all', 'all');
    const r = checkHistory(h.events);
    expect(r.set.valid).toBe(true);
    expect(r.converged).toBe(false);
    expect(r.valid).toBe(false);
    expect(describeCheck(r).join('\n')).toMatch(/disagreeing keys.*set 1/);
  });

  it('judges only the last round of final reads', () => {
    const h = new H();
    h.add(0, 0, 'ok', [], 'a');
    h.final([], 'n1', 1, 1); // round 1: n1 had not caught up
    h.final([sib('a', [0])], 'n2', 1, 1);
    h.final([sib('a', [0])], 'n1', 1, 2);
    h.final([sib('a', [0])], 'n2', 1, 2);
    h.final([sib('a', [0])], 'all', 'all', 2);
    const r = checkHistory(h.events);
    expect(r.converged).toBe(true);
    expect(r.valid).toBe(true);
  });
});

describe('writeOutcome', () => {
  const node = 'http://10.77.1.11:8080';
  it('is fail only when the write certainly had no effect', () => {
    expect(writeOutcome(new ConnectionError(node, false, new Error('ECONNREFUSED')))).toBe('fail');
    expect(writeOutcome(new RequestError(400, 'BAD_CONTEXT', 'bad', node))).toBe('fail');
    expect(writeOutcome(new UnavailableError('x', [{ node, error: new ConnectionError(node, false, 'refused') }]))).toBe('fail');
    expect(writeOutcome(new TimeoutError('no attempt made', 100, []))).toBe('fail');
  });

  it('is unknown whenever a request may have reached a node', () => {
    expect(writeOutcome(new QuorumError('1 of 2', node, 1, 2))).toBe('unknown');
    expect(writeOutcome(new ConnectionError(node, true, new Error('reset')))).toBe('unknown');
    expect(writeOutcome(new ServerError(500, 'INTERNAL', 'boom', node))).toBe('unknown');
    expect(writeOutcome(new TimeoutError('slow', 100, [{ node, error: new TimeoutError('attempt', 50) }]))).toBe('unknown');
    expect(
      writeOutcome(
        new UnavailableError('x', [
          { node, error: new ConnectionError(node, false, 'refused') },
          { node, error: new ConnectionError(node, true, 'reset') },
        ]),
      ),
    ).toBe('unknown');
    expect(writeOutcome(new Error('anything else'))).toBe('unknown');
  });
});
