/**
 * The arithmetic of `npm run bench:ab` (scripts/bench-ab.mjs), kept apart so a test can check it.
 *
 * On this kind of machine one run's throughput moves ±25-40 % with the load of the moment, so a
 * single run of each variant says little. bench-ab runs the variants in alternating order, round
 * after round (A B, then B A, ...), and compares them only within a round: a pair of runs minutes
 * apart shares most of the machine's mood. What it reports per workload and value size:
 *   - each variant's median ops/s, server µs per request and p99 over the rounds;
 *   - B/A of those medians;
 *   - in how many rounds B did better than A (more ops/s; fewer µs per request). B winning every
 *     one of 4 rounds would happen by chance 1 time in 16 if the two were the same.
 */

/** Median of a non-empty list of numbers (mean of the middle two for an even count). */
export function median(values) {
  if (values.length === 0) throw new RangeError('median of nothing');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Server CPU per answered request in µs (all server processes), or undefined if not measured. */
export function serverUsPerOp(r) {
  return r.serverCpu > 0 && r.opsPerSec > 0 ? (r.serverCpu * 1e6) / r.opsPerSec : undefined;
}

/**
 * Runs: [{ round, variant: 'A' | 'B', result }], `result` as bench-lib's runLoad returns it.
 * Returns one row per (workload, value size) that both variants ran in at least one common round.
 */
export function summarizeAb(runs) {
  const groups = new Map();
  for (const run of runs) {
    const key = `${run.result.workload} ${run.result.valueSize}`;
    let g = groups.get(key);
    if (!g) {
      g = { workload: run.result.workload, valueSize: run.result.valueSize, byRound: new Map() };
      groups.set(key, g);
    }
    const pair = g.byRound.get(run.round) ?? {};
    if (pair[run.variant] !== undefined) throw new Error(`two ${run.variant} runs of ${key} in round ${run.round}`);
    pair[run.variant] = run.result;
    g.byRound.set(run.round, pair);
  }
  const rows = [];
  for (const g of groups.values()) {
    const pairs = [...g.byRound.values()].filter((p) => p.A && p.B);
    if (pairs.length === 0) continue;
    const side = (v) => {
      const us = pairs.map((p) => serverUsPerOp(p[v])).filter((x) => x !== undefined);
      return {
        ops: median(pairs.map((p) => p[v].opsPerSec)),
        us: us.length === pairs.length ? median(us) : undefined,
        p99Us: median(pairs.map((p) => p[v].latencyUs.p99)),
        failures: pairs.reduce((n, p) => n + Object.values(p[v].failures).reduce((a, b) => a + b, 0), 0),
      };
    };
    const a = side('A');
    const b = side('B');
    rows.push({
      workload: g.workload,
      valueSize: g.valueSize,
      rounds: pairs.length,
      a,
      b,
      opsRatio: b.ops / a.ops,
      // a.us (b.us) is defined only when every run of A (B) has a CPU figure.
      usRatio: a.us !== undefined && b.us !== undefined ? b.us / a.us : undefined,
      p99Ratio: b.p99Us / a.p99Us,
      bFasterRounds: pairs.filter((p) => p.B.opsPerSec > p.A.opsPerSec).length,
      bCheaperRounds: a.us !== undefined && b.us !== undefined ? pairs.filter((p) => serverUsPerOp(p.B) < serverUsPerOp(p.A)).length : undefined,
    });
  }
  return rows;
}
