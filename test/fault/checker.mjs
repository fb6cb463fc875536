/**
 * Checkers for fault-injection histories (pure: a list of events in, a verdict out), after
 * Jepsen's `checker/set` and `checker/set-full` (research/dynamo-cassandra-jepsen.md §4).
 *
 * Workloads and the operations they record (see history.mjs for the event format):
 *
 *   set   one key holds a set of integers; `add` is read-union-write through the SDK's
 *         update (value = the element; completions carry `read`, the set the update read, and
 *         `wrote`, a hash of the bytes it wrote); `read` and `final-read` carry `siblings`,
 *         one `{ ranges, hash, dups }` per concurrent version.
 *   keys  one key per element; `put` (key, value); `final-read` (key, node, found, values).
 *   del   keys created before the faults (`put`), some deleted during partitions (`delete`);
 *         `final-read` and `reap-read` (key, node, found, tombstone, values).
 *
 * `final-read` operations carry `round` and `r`: per round, one read of every key through
 * every node at r=1, and the last round ends with reads at r=all (`node: 'all'`), which are the
 * final state the set checks compare against.
 *
 * A history is valid only if, in every workload, nothing acknowledged is lost and nothing
 * never attempted appears. Stale reads are reported, never invalid (allowed during faults).
 */
import { fromRanges, pairOps, rangesHas, rangesSize } from './history.mjs';

// ------------------------------------------------------------------------------ helpers

const okOps = (ops, w, f) => ops.filter((o) => o.w === w && o.f === f && o.type === 'ok');

/** The r=all reads of the last final round, else the last round's reads (per key). */
function finalReads(ops, w) {
  const reads = okOps(ops, w, 'final-read');
  if (reads.length === 0) return { last: [], confirm: new Map(), perNode: [] };
  const lastRound = Math.max(...reads.map((o) => o.complete.round ?? 0));
  const last = reads.filter((o) => (o.complete.round ?? 0) === lastRound);
  const confirm = new Map();
  for (const o of last) if (o.complete.r === 'all') confirm.set(o.complete.key, o.complete);
  // Without confirming reads, the last read of each key stands in (hand-made histories).
  if (confirm.size === 0) for (const o of last) confirm.set(o.complete.key, o.complete);
  return { last, confirm, perNode: last.filter((o) => o.complete.r !== 'all').map((o) => o.complete) };
}

/** A canonical view of one read for comparing nodes: '∅' or the sorted sibling identities. */
function viewOf(read, w) {
  if (!read.found) return '∅';
  const ids = w === 'set' ? read.siblings.map((s) => s.hash) : read.values.map(String);
  return ids.sort().join(',');
}

/** Keys whose last-round per-node reads disagree: `[{ key, views: { n1: '...', ... } }]`. */
function disagreements(perNode, w) {
  const byKey = new Map();
  for (const r of perNode) {
    if (!byKey.has(r.key)) byKey.set(r.key, {});
    byKey.get(r.key)[r.node] = viewOf(r, w);
  }
  const out = [];
  for (const [key, views] of byKey) if (new Set(Object.values(views)).size > 1) out.push({ key, views });
  return out;
}

/** Union of the siblings of one set read, as a Set of integers. */
function unionOf(read) {
  const out = new Set();
  if (!read?.found) return out;
  for (const s of read.siblings) for (const v of fromRanges(s.ranges)) out.add(v);
  return out;
}

function readHas(read, v) {
  return read.found && read.siblings.some((s) => rangesHas(s.ranges, v));
}

const sorted = (xs) => [...xs].sort((a, b) => (typeof a === 'number' ? a - b : String(a) < String(b) ? -1 : 1));

// ------------------------------------------------------------------------------ set (a)

/**
 * Jepsen's set checker over workload `set`, plus set-full's per-element view, stale reads
 * and the sibling check.
 *
 *   attempts   elements of every add invocation
 *   acked      elements of ok adds
 *   final      union of the siblings of the final read
 *   lost       acked − final                       (invalid)
 *   unexpected final − attempts                     (invalid)
 *   recovered  final ∩ unknown adds                 (fine: an unknown outcome that did apply)
 *   failedButPresent  final ∩ failed adds           (invalid: `fail` promised no effect)
 *   staleReads reads that missed an element already known (acked, or seen by an earlier
 *              read) when they were invoked           (reported, allowed during faults)
 *
 * Siblings: every sibling must be the bytes some add wrote (`unexplained` otherwise, invalid)
 * and must be truly concurrent with every acknowledged write the read could see: a sibling
 * written by add(e) is `dominated` if an add that read a set containing e (and whose context
 * therefore covered that sibling) was acknowledged before the read was invoked. Each add makes
 * one write attempt (the workload uses `retries: 0` for updates), so this is exact with strict
 * quorums (r + w > n, every replica in every preference list); with `strictQuorum: false`
 * (sloppy quorums can hide the covering write) dominated siblings are reported, not invalid.
 */
export function checkSet(events, { strictQuorum = true } = {}) {
  const ops = pairOps(events).filter((o) => o.w === 'set');
  const adds = ops.filter((o) => o.f === 'add');
  const attempts = new Set(adds.map((o) => o.invoke.value));
  const acked = new Set(adds.filter((o) => o.type === 'ok').map((o) => o.invoke.value));
  const unknown = new Set(adds.filter((o) => o.type === 'unknown').map((o) => o.invoke.value));
  const failed = new Set(adds.filter((o) => o.type === 'fail').map((o) => o.invoke.value));

  const fin = finalReads(ops, 'set');
  const finalRead = [...fin.confirm.values()][0];
  const final = unionOf(finalRead);

  const lost = sorted([...acked].filter((v) => !final.has(v)));
  const unexpected = sorted([...final].filter((v) => !attempts.has(v)));
  const recovered = sorted([...final].filter((v) => unknown.has(v)));
  const failedButPresent = sorted([...final].filter((v) => failed.has(v)));
  const unknownAbsent = [...unknown].filter((v) => !final.has(v)).length;

  // Reads in invocation order: the workload's reads, then the final reads.
  const reads = [...okOps(ops, 'set', 'read'), ...fin.last].sort((a, b) => a.invoke.i - b.invoke.i);

  // known(e): event index at which e became certainly present (ok add, or a completed read).
  const known = new Map();
  for (const o of adds) if (o.type === 'ok') known.set(o.invoke.value, o.complete.i);
  for (const o of [...reads].sort((a, b) => a.complete.i - b.complete.i)) {
    if (!o.complete.found) continue;
    for (const s of o.complete.siblings)
      for (const v of fromRanges(s.ranges)) if (!known.has(v) || known.get(v) > o.complete.i) known.set(v, o.complete.i);
  }
  const byKnown = [...known.entries()].sort((a, b) => a[1] - b[1]);

  // Stale reads, and set-full's last-present / last-absent per element.
  let staleReads = 0;
  let staleElementReads = 0;
  const staleElements = new Set();
  const lastPresent = new Map();
  const lastAbsent = new Map();
  let duplicated = 0;
  for (const o of reads) {
    const r = o.complete;
    if (r.found && r.siblings.some((s) => (s.dups ?? 0) > 0)) duplicated++;
    let stale = 0;
    for (const [v, k] of byKnown) {
      if (k >= o.invoke.i) break;
      if (!readHas(r, v)) {
        stale++;
        staleElements.add(v);
      }
    }
    if (stale > 0) {
      staleReads++;
      staleElementReads += stale;
    }
    for (const v of attempts) {
      if (readHas(r, v)) lastPresent.set(v, o.invoke.i);
      else lastAbsent.set(v, o.invoke.i);
    }
  }
  // set-full: stable = last seen after last missed; lost = known but missed after it was
  // last seen and after it was known; the rest was never read.
  let stable = 0;
  let neverRead = 0;
  const fullLost = [];
  for (const v of attempts) {
    const lp = lastPresent.get(v) ?? -1;
    const la = lastAbsent.get(v) ?? -1;
    const k = known.get(v);
    if (lp >= 0 && lp > la) stable++;
    else if (k !== undefined && la > lp && la > k) fullLost.push(v);
    else neverRead++;
  }

  // Siblings: identify each sibling's writer, and whether an acked write had covered it.
  const writerByHash = new Map();
  for (const o of adds) if (o.type !== 'fail' && o.complete?.wrote) writerByHash.set(o.complete.wrote, o);
  // coveredAt: element -> completion index of the first ok add whose read held it. Adds are
  // taken in completion order and each element is assigned once; `skip` jumps over assigned
  // runs (union-find with path compression), so long histories stay linear.
  const coveredAt = new Map();
  const skip = new Map();
  const firstFree = (v) => {
    let r = v;
    while (skip.has(r)) r = skip.get(r);
    for (let x = v; skip.has(x); ) {
      const n = skip.get(x);
      skip.set(x, r);
      x = n;
    }
    return r;
  };
  for (const o of adds.filter((a) => a.type === 'ok' && a.complete.read).sort((a, b) => a.complete.i - b.complete.i)) {
    for (const [a, b] of o.complete.read) {
      for (let v = firstFree(a); v <= b; v = firstFree(v + 1)) {
        coveredAt.set(v, o.complete.i);
        skip.set(v, v + 1);
      }
    }
  }
  const unexplained = [];
  const dominated = [];
  let maxSiblings = 0;
  const siblingHistogram = {};
  for (const o of reads) {
    const r = o.complete;
    if (!r.found) continue;
    const n = r.siblings.length;
    maxSiblings = Math.max(maxSiblings, n);
    siblingHistogram[n] = (siblingHistogram[n] ?? 0) + 1;
    // Per-node r=1 reads may come from one lagging replica; only quorum reads are judged.
    if (o.f === 'final-read' && r.r !== 'all') continue;
    for (const s of r.siblings) {
      const writer = writerByHash.get(s.hash);
      if (!writer) {
        unexplained.push({ read: o.op, hash: s.hash, size: rangesSize(s.ranges) });
        continue;
      }
      const e = writer.invoke.value;
      const at = coveredAt.get(e);
      if (at !== undefined && at < o.invoke.i) dominated.push({ read: o.op, element: e, writer: writer.op, coveredAt: at });
    }
  }

  const writers = new Set(adds.map((o) => o.p)).size;
  const valid =
    finalRead !== undefined &&
    lost.length === 0 &&
    unexpected.length === 0 &&
    failedButPresent.length === 0 &&
    unexplained.length === 0 &&
    duplicated === 0 &&
    (!strictQuorum || dominated.length === 0);
  return {
    valid,
    finalRead: finalRead !== undefined,
    attempts: attempts.size,
    acked: acked.size,
    failed: failed.size,
    unknown: unknown.size,
    final: final.size,
    lost,
    unexpected,
    recovered,
    unknownAbsent,
    failedButPresent,
    reads: reads.length,
    staleReads,
    staleElementReads,
    staleElements: staleElements.size,
    setFull: { stable, lost: sorted(fullLost), neverRead, duplicated },
    siblings: { writers, maxSiblings, histogram: siblingHistogram, dominated, unexplained, strictQuorum },
    disagreements: disagreements(fin.perNode, 'set'),
  };
}

// ------------------------------------------------------------------------------ keys (b)

/**
 * One key per element: `lost` = acked puts whose key's final read lacks the value; `unexpected`
 * = values in final reads that were never attempted for that key (also keys never written at
 * all, which the runner probes); `recovered` = unknown puts that are present; `unread` =
 * acked keys with no final read.
 */
export function checkKeys(events) {
  const ops = pairOps(events).filter((o) => o.w === 'keys');
  const puts = ops.filter((o) => o.f === 'put');
  const attempted = new Map(); // key -> Set(values)
  for (const o of puts) {
    if (!attempted.has(o.invoke.key)) attempted.set(o.invoke.key, new Set());
    attempted.get(o.invoke.key).add(String(o.invoke.value));
  }
  const fin = finalReads(ops, 'keys');
  const lost = [];
  const unread = [];
  const recovered = [];
  const failedButPresent = [];
  const unexpected = [];
  let duplicateVersions = 0;
  for (const o of puts) {
    const r = fin.confirm.get(o.invoke.key);
    const present = r?.found && r.values.map(String).includes(String(o.invoke.value));
    if (o.type === 'ok' && !r) unread.push(o.invoke.key);
    else if (o.type === 'ok' && !present) lost.push(o.invoke.key);
    else if (o.type === 'unknown' && present) recovered.push(o.invoke.key);
    else if (o.type === 'fail' && present) failedButPresent.push(o.invoke.key);
  }
  for (const [key, r] of fin.confirm) {
    if (!r.found) continue;
    if (r.values.length > 1) duplicateVersions++;
    const allowed = attempted.get(key) ?? new Set();
    for (const v of r.values) if (!allowed.has(String(v))) unexpected.push({ key, value: v });
  }
  const acked = puts.filter((o) => o.type === 'ok').length;
  return {
    valid: lost.length === 0 && unexpected.length === 0 && unread.length === 0 && failedButPresent.length === 0,
    attempts: puts.length,
    acked,
    failed: puts.filter((o) => o.type === 'fail').length,
    unknown: puts.filter((o) => o.type === 'unknown').length,
    finalKeys: fin.confirm.size,
    lost,
    unexpected,
    recovered,
    unread,
    failedButPresent,
    duplicateVersions,
    disagreements: disagreements(fin.perNode, 'keys'),
  };
}

// ------------------------------------------------------------------------------ deletes

/**
 * Deletes during partitions: a key whose delete was acknowledged must be absent from every
 * final read, through every node, and from every read after tombstones were reaped
 * (`resurrected`, invalid). Keys created and never deleted must still be there
 * (`controlsLost`, invalid). Reports whether the deleted keys still hold tombstones or were
 * reaped (404 with or without a context).
 */
export function checkDeletes(events) {
  const ops = pairOps(events).filter((o) => o.w === 'del');
  const created = new Set(ops.filter((o) => o.f === 'put' && o.type === 'ok').map((o) => o.invoke.key));
  const deletes = ops.filter((o) => o.f === 'delete');
  const deleted = new Set(deletes.filter((o) => o.type === 'ok').map((o) => o.invoke.key));
  const deleteTried = new Set(deletes.map((o) => o.invoke.key));
  const fin = finalReads(ops, 'del');
  const reapReads = okOps(ops, 'del', 'reap-read').map((o) => o.complete);
  // Every read taken after healing: the last final round (each node and r=all) and reap reads.
  const after = [...fin.last.map((o) => o.complete), ...reapReads];

  const resurrected = new Set();
  for (const r of after) if (deleted.has(r.key) && r.found) resurrected.add(r.key);
  const controlsLost = [];
  const unread = [];
  for (const key of created) {
    if (deleteTried.has(key)) continue;
    const r = fin.confirm.get(key);
    if (!r) unread.push(key);
    else if (!r.found) controlsLost.push(key);
  }
  let tombstones = 0;
  let reaped = 0;
  const lastReap = new Map();
  for (const r of reapReads.length > 0 ? reapReads : fin.perNode) lastReap.set(`${r.key}@${r.node}`, r);
  for (const r of lastReap.values()) {
    if (!deleted.has(r.key) || r.found) continue;
    if (r.tombstone) tombstones++;
    else reaped++;
  }
  return {
    valid: resurrected.size === 0 && controlsLost.length === 0 && unread.length === 0,
    created: created.size,
    deleted: deleted.size,
    deleteUnknown: deletes.filter((o) => o.type === 'unknown').length,
    deleteFailed: deletes.filter((o) => o.type === 'fail').length,
    resurrected: sorted(resurrected),
    controlsLost,
    unread,
    /** Per (key, node) in the last reads: absent with a tombstone context, or without one. */
    tombstones,
    reaped,
    reapReads: reapReads.length,
    disagreements: disagreements(fin.perNode, 'del'),
  };
}

// ------------------------------------------------------------------------------ all

/**
 * Every check over one history. `converged` = the last final round's per-node reads agree for
 * every key of every workload (SPEC §4: replicas converge after faults heal).
 */
export function checkHistory(events, opts = {}) {
  const set = checkSet(events, opts);
  const keys = checkKeys(events);
  const deletes = checkDeletes(events);
  const converged = set.disagreements.length === 0 && keys.disagreements.length === 0 && deletes.disagreements.length === 0;
  return { valid: set.valid && keys.valid && deletes.valid && converged, converged, set, keys, deletes };
}

/** Human-readable lines for a checker result (lists cut to `limit` items). */
export function describeCheck(result, limit = 20) {
  const list = (xs) => (xs.length === 0 ? '0' : `${xs.length} ${JSON.stringify(xs.slice(0, limit))}${xs.length > limit ? '…' : ''}`);
  const s = result.set;
  const k = result.keys;
  const d = result.deletes;
  return [
    `valid: ${result.valid} (converged: ${result.converged})`,
    `set (a): attempts ${s.attempts}, acked ${s.acked}, failed ${s.failed}, unknown ${s.unknown}, final ${s.final}${s.finalRead ? '' : ' (NO FINAL READ)'}`,
    `  lost ${list(s.lost)}, unexpected ${list(s.unexpected)}, recovered ${s.recovered.length}, unknown-absent ${s.unknownAbsent}, failed-but-present ${list(s.failedButPresent)}`,
    `  reads ${s.reads}, stale reads ${s.staleReads} (${s.staleElementReads} element misses, ${s.staleElements} elements); set-full: stable ${s.setFull.stable}, lost ${list(s.setFull.lost)}, never read ${s.setFull.neverRead}, duplicated ${s.setFull.duplicated}`,
    `  siblings: writers ${s.siblings.writers}, max ${s.siblings.maxSiblings}, histogram ${JSON.stringify(s.siblings.histogram)}, dominated ${list(s.siblings.dominated)}${s.siblings.strictQuorum ? '' : ' (report only: sloppy quorum)'}, unexplained ${list(s.siblings.unexplained)}`,
    `keys (b): attempts ${k.attempts}, acked ${k.acked}, failed ${k.failed}, unknown ${k.unknown}, final keys ${k.finalKeys}`,
    `  lost ${list(k.lost)}, unexpected ${list(k.unexpected)}, recovered ${k.recovered.length}, unread ${list(k.unread)}, failed-but-present ${list(k.failedButPresent)}, keys with >1 version ${k.duplicateVersions}`,
    `deletes: created ${d.created}, deleted ${d.deleted} (unknown ${d.deleteUnknown}, failed ${d.deleteFailed}), resurrected ${list(d.resurrected)}, controls lost ${list(d.controlsLost)}, unread ${list(d.unread)}; deleted keys absent with tombstone ${d.tombstones}, reaped ${d.reaped} (reap reads ${d.reapReads})`,
    `disagreeing keys after the last final round: set ${s.disagreements.length}, keys ${k.disagreements.length}, del ${d.disagreements.length}${
      [...s.disagreements, ...k.disagreements, ...d.disagreements].length > 0
        ? ` ${JSON.stringify([...s.disagreements, ...k.disagreements, ...d.disagreements].slice(0, 5))}`
        : ''
    }`,
  ];
}
