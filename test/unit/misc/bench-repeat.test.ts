import { describe, expect, it } from 'vitest';
import { formatJointTarget, formatRepeats, jointTarget, type RunResult, summarizeRepeats } from '../../../scripts/bench-lib.mjs';

/** `npm run bench -- --repeat N` sums up ringkv against etcd over N full runs. */
function run(workload: string, opsPerSec: number, p99Us: number, failed = 0, steal = 0, valueSize = 256, otherCpu = 0.02): RunResult {
  return {
    workload,
    valueSize,
    opsPerSec,
    latencyUs: { p50: p99Us / 2, p99: p99Us, p999: p99Us * 2, max: p99Us * 3 },
    counts: { ok: opsPerSec * 10, miss: 0, siblings: 0, failed },
    failures: failed ? { 'put:503': failed } : {},
    clientCpu: 0.2,
    serverCpu: 1.5,
    loadAvg1: 2,
    steal,
    otherCpu,
  };
}

const pair = (r: RunResult, e: RunResult) => [
  { target: 'ringkv', result: r },
  { target: 'etcd', result: e },
];

describe('bench repeat summary', () => {
  const runs = [
    pair(run('put', 5000, 20_000), run('put', 2000, 40_000)), // 2.5x, p99 better: met
    pair(run('put', 3000, 20_000), run('put', 2000, 40_000)), // 1.5x: not met
    pair(run('put', 4400, 50_000), run('put', 2000, 40_000, 0, 0.17)), // 2.2x but p99 worse: not met
    pair(run('put', 4200, 20_000, 3), run('put', 2000, 40_000)), // 2.1x with errors: not met
  ];

  it('gives each run its ratio, the medians, and the runs that met the goal on every count', () => {
    const [cell] = summarizeRepeats(runs, 'ringkv', 'etcd') ?? [];
    expect(cell?.runs.map((x) => Number(x.ratio.toFixed(2)))).toEqual([2.5, 1.5, 2.2, 2.1]);
    expect(cell?.medianRatio).toBeCloseTo((2.1 + 2.2) / 2, 12);
    expect(cell?.medianP99).toBeCloseTo(0.5, 12);
    expect(cell?.met).toBe(1);
    expect(cell?.runs.map((x) => x.met)).toEqual([true, false, false, false]);
  });

  it('names the steal of a run where either side lost 2 % or more to the host', () => {
    const text = formatRepeats(summarizeRepeats(runs, 'ringkv', 'etcd') ?? []);
    const [header, row] = text.split('\n');
    expect(header).toMatch(/run 1 +run 2 +run 3 +run 4 +median +p99 median +runs at 2x/);
    expect(row).toContain('2.20 (steal 0.0%/17.0%)');
    expect(row).toMatch(/1 of 4$/);
    expect(row).not.toContain('2.50 (steal');
  });

  it('leaves a run out of a cell it lacks, and says so when nothing compares', () => {
    // Run 5 has both targets' GET but only ringkv's PUT (etcd's half was cut short).
    const partial = [
      ...runs,
      [
        { target: 'ringkv', result: run('put', 9000, 1000) },
        { target: 'ringkv', result: run('get', 6000, 1000) },
        { target: 'etcd', result: run('get', 3000, 2000) },
      ],
    ];
    const [put, get] = summarizeRepeats(partial, 'ringkv', 'etcd') ?? [];
    expect(put?.runs).toHaveLength(4);
    expect(get?.runs.map((x) => x.run)).toEqual([5]);
    const [, putRow, getRow] = formatRepeats(summarizeRepeats(partial, 'ringkv', 'etcd') ?? []).split('\n');
    expect(putRow).toMatch(/\s-\s+2\.15\s/);
    expect(getRow).toMatch(/^get\s+256 B\s+-\s+-\s+-\s+-\s+2\.00\s+2\.00\s+0\.50\s+1 of 1$/);
    expect(summarizeRepeats([[{ target: 'ringkv', result: run('get', 1, 1) }]], 'ringkv', 'etcd')).toBeUndefined();
  });

  it('never counts a run whose window other work shared, on either side, and names it', () => {
    const runs = [
      pair(run('put', 5000, 20_000), run('put', 2000, 40_000)), // met
      pair(run('put', 5000, 20_000), run('put', 2000, 40_000, 0, 0, 256, 0.4)), // etcd's window shared
      pair(run('put', 5000, 20_000, 0, 0, 256, 0.1), run('put', 2000, 40_000)), // ringkv's, at the limit
    ];
    const [cell] = summarizeRepeats(runs, 'ringkv', 'etcd') ?? [];
    expect(cell?.runs.map((x) => [x.met, x.shared])).toEqual([
      [true, false],
      [false, true],
      [false, true],
    ]);
    const row = formatRepeats(summarizeRepeats(runs, 'ringkv', 'etcd') ?? []).split('\n')[1];
    expect(row).toContain('2.50 (other 2%/40%)');
    expect(row).toMatch(/1 of 3$/);
    const withGet = runs.map((r) => [...r, { target: 'ringkv', result: run('get', 9000, 1000) }, { target: 'etcd', result: run('get', 3000, 2000) }]);
    expect(formatJointTarget(jointTarget(summarizeRepeats(withGet, 'ringkv', 'etcd') ?? []))).toBe(
      '  256 B: 1 of 3 runs (run 1); not counted: runs 2, 3, where other work used 10% of a core or more',
    );
  });

  it('never counts a run where the host stole 5 % or more from either side, and names it', () => {
    const runs = [
      pair(run('put', 5000, 20_000, 0, 0.049), run('put', 2000, 40_000, 0, 0.01)), // met: under the limit
      pair(run('put', 5000, 20_000), run('put', 2000, 40_000, 0, 0.084)), // etcd slowed by the host: flatters ringkv
      pair(run('put', 5000, 20_000, 0, 0.05), run('put', 2000, 40_000)), // ringkv's, at the limit
    ];
    const [cell] = summarizeRepeats(runs, 'ringkv', 'etcd') ?? [];
    expect(cell?.runs.map((x) => [x.met, x.stolen])).toEqual([
      [true, false],
      [false, true],
      [false, true],
    ]);
    expect(cell?.met).toBe(1);
    const withGet = runs.map((r) => [...r, { target: 'ringkv', result: run('get', 9000, 1000) }, { target: 'etcd', result: run('get', 3000, 2000) }]);
    expect(formatJointTarget(jointTarget(summarizeRepeats(withGet, 'ringkv', 'etcd') ?? []))).toBe(
      '  256 B: 1 of 3 runs (run 1); not counted: runs 2, 3, where the host stole 5% of the CPU or more from either side',
    );
  });

  it('counts a run toward the joint target only if its PUT and its GET both met the goal', () => {
    const both = (put: [number, number, number?], get: [number, number, number?], size = 256) => [
      { target: 'ringkv', result: run('put', put[0], put[1], put[2] ?? 0, 0, size) },
      { target: 'etcd', result: run('put', 2000, 40_000, 0, 0, size) },
      { target: 'ringkv', result: run('get', get[0], get[1], get[2] ?? 0, 0, size) },
      { target: 'etcd', result: run('get', 3000, 40_000, 0, 0, size) },
    ];
    const runs = [
      [...both([5000, 20_000], [7000, 20_000]), ...both([3000, 20_000], [7000, 20_000], 4096)], // 256 B met; 4 KiB PUT 1.5x
      [...both([5000, 20_000], [5000, 20_000]), ...both([4500, 20_000], [6500, 20_000], 4096)], // 256 B GET 1.67x; 4 KiB met
      [...both([5000, 20_000], [7000, 50_000]), ...both([4500, 20_000], [6500, 20_000, 1], 4096)], // GET p99 worse; GET errors
      [...both([4100, 20_000], [6100, 20_000])], // met, and no 4 KiB at all
    ];
    const joint = jointTarget(summarizeRepeats(runs, 'ringkv', 'etcd') ?? []);
    expect(joint.map((j) => [j.valueSize, j.met, j.runs.length])).toEqual([
      [256, [1, 4], 4],
      [4096, [2], 3],
    ]);
    expect(joint[0]?.runs[1]).toEqual({ run: 2, met: false, shared: false, stolen: false, put: 2.5, get: 5000 / 3000 });
    expect(formatJointTarget(joint).split('\n')).toEqual(['  256 B: 2 of 4 runs (runs 1, 4)', '  4096 B: 1 of 3 runs (run 2)']);
    // One run, as a single comparison prints it.
    expect(formatJointTarget(jointTarget(summarizeRepeats([runs[1] ?? []], 'ringkv', 'etcd') ?? []))).toBe(
      '  256 B: 0 of 1 run\n  4096 B: 1 of 1 run (run 1)',
    );
    // The goal is the verdict's own, not the one the summary counted with.
    expect(jointTarget(summarizeRepeats(runs, 'ringkv', 'etcd') ?? [], 2.3).map((j) => j.met)).toEqual([[1], []]);
    // A size with only one of the two workloads has no verdict.
    expect(jointTarget(summarizeRepeats([both([5000, 20_000], [7000, 20_000]).slice(0, 2)], 'ringkv', 'etcd') ?? [])).toEqual([]);
  });
});

