import { describe, expect, it } from 'vitest';
import { formatRepeats, type RunResult, summarizeRepeats } from '../../../scripts/bench-lib.mjs';

/** `npm run bench -- --repeat N` sums up ringkv against etcd over N full runs. */
function run(workload: string, opsPerSec: number, p99Us: number, failed = 0, steal = 0): RunResult {
  return {
    workload,
    valueSize: 256,
    opsPerSec,
    latencyUs: { p50: p99Us / 2, p99: p99Us, p999: p99Us * 2, max: p99Us * 3 },
    counts: { ok: opsPerSec * 10, miss: 0, siblings: 0, failed },
    failures: failed ? { 'put:503': failed } : {},
    clientCpu: 0.2,
    serverCpu: 1.5,
    loadAvg1: 2,
    steal,
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
});
