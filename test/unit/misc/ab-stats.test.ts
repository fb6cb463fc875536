import { describe, expect, it } from 'vitest';
import { type AbRun, median, type RunResult, summarizeAb } from '../../../scripts/ab-stats.mjs';

function result(workload: string, valueSize: number, opsPerSec: number, serverCpu: number, p99Ms = 10): RunResult {
  return { workload, valueSize, opsPerSec, serverCpu, latencyUs: { p99: p99Ms * 1000 }, failures: {} };
}

describe('bench:ab arithmetic (scripts/ab-stats.mjs)', () => {
  it('median of odd and even counts, and refuses an empty list', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow(RangeError);
  });

  it('compares the variants within each round: medians, ratios and rounds won', () => {
    const runs: AbRun[] = [
      // round 1: B faster and cheaper
      { round: 1, variant: 'A', result: result('get', 256, 8000, 1.6, 20) },
      { round: 1, variant: 'B', result: result('get', 256, 10000, 1.5, 16) },
      // round 2 (B ran first): the machine was slower for both; B still ahead
      { round: 2, variant: 'B', result: result('get', 256, 7000, 1.4, 24) },
      { round: 2, variant: 'A', result: result('get', 256, 6000, 1.5, 30) },
      // round 3: A ahead
      { round: 3, variant: 'A', result: result('get', 256, 9000, 1.5, 18) },
      { round: 3, variant: 'B', result: result('get', 256, 8500, 1.6, 19) },
    ];
    const [row, ...rest] = summarizeAb(runs);
    expect(rest).toHaveLength(0);
    expect(row).toMatchObject({ workload: 'get', valueSize: 256, rounds: 3, bFasterRounds: 2, bCheaperRounds: 2 });
    expect(row?.a.ops).toBe(8000);
    expect(row?.b.ops).toBe(8500);
    expect(row?.opsRatio).toBeCloseTo(8500 / 8000, 10);
    // µs per request: A 200, 250, 166.7 -> 200; B 150, 200, 188.2 -> 188.2
    expect(row?.a.us).toBeCloseTo(200, 6);
    expect(row?.b.us).toBeCloseTo((1.6e6 / 8500), 6);
    expect(row?.p99Ratio).toBeCloseTo(19 / 20, 10);
  });

  it('keeps workloads and sizes apart and skips rounds where one variant is missing', () => {
    const runs: AbRun[] = [
      { round: 1, variant: 'A', result: result('put', 256, 5000, 1.7) },
      { round: 1, variant: 'B', result: result('put', 256, 5500, 1.7) },
      { round: 1, variant: 'A', result: result('put', 4096, 2500, 1.8) },
      { round: 1, variant: 'B', result: result('put', 4096, 2000, 1.8) },
      // round 2 stopped after A's run (Ctrl-C): not a pair
      { round: 2, variant: 'A', result: result('put', 256, 1, 1.7) },
    ];
    const rows = summarizeAb(runs);
    expect(rows.map((r) => [r.workload, r.valueSize, r.rounds, r.bFasterRounds])).toEqual([
      ['put', 256, 1, 1],
      ['put', 4096, 1, 0],
    ]);
    expect(rows[0]?.a.ops).toBe(5000);
  });

  it('leaves CPU figures out when a run has none, and refuses a round with two runs of one variant', () => {
    const noCpu = summarizeAb([
      { round: 1, variant: 'A', result: result('mix', 256, 5000, 0) },
      { round: 1, variant: 'B', result: result('mix', 256, 5000, 1.2) },
    ]);
    expect(noCpu[0]?.usRatio).toBeUndefined();
    expect(noCpu[0]?.bCheaperRounds).toBeUndefined();
    expect(() =>
      summarizeAb([
        { round: 1, variant: 'A', result: result('mix', 256, 5000, 1) },
        { round: 1, variant: 'A', result: result('mix', 256, 5000, 1) },
      ]),
    ).toThrow(/two A runs/);
  });
});
