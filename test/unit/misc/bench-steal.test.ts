import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FOREIGN_LIMIT, foreignCores, formatRatios, parseProcStat, type RunResult, stealFraction } from '../../../scripts/bench-lib.mjs';

/**
 * The benchmark reports how much CPU the hypervisor took during each measured window (steal),
 * from two readings of /proc/stat's `cpu` line.
 */
describe('bench steal time', () => {
  const stat = (user: number, idle: number, steal: number, guest = 0): string =>
    `cpu  ${user} 0 100 ${idle} 5 0 20 ${steal} ${guest} 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1 2 3\n`;

  it('sums user through steal, leaving out guest time (already inside user); busy is user through softirq', () => {
    expect(parseProcStat(stat(1000, 4000, 50, 300))).toEqual({ total: 1000 + 100 + 4000 + 5 + 20 + 50, steal: 50, busy: 1000 + 100 + 20 });
  });

  it('gives the steal share of the time between two readings', () => {
    const before = parseProcStat(stat(1000, 4000, 50));
    const after = parseProcStat(stat(1150, 4030, 70));
    // 150 user + 30 idle + 20 steal ticks passed.
    expect(stealFraction(before, after)).toBeCloseTo(20 / 200, 12);
  });

  it('gives the CPU other processes used beside the measured ones, in cores', () => {
    // 10 s apart: 1500 user+system ticks = 1.5 cores busy; the load generator and the servers
    // account for 1.2 of them, so 0.3 of a core went to something else.
    const before = parseProcStat(stat(1000, 4000, 50));
    const after = parseProcStat(stat(2500, 4500, 50));
    expect(foreignCores(before, after, 10, 1.2)).toBeCloseTo(0.3, 12);
    expect(foreignCores(before, after, 10, 1.5)).toBeCloseTo(0, 12);
    expect(foreignCores(undefined, after, 10, 1)).toBeUndefined();
    expect(foreignCores(before, after, 0, 1)).toBeUndefined();
    expect(FOREIGN_LIMIT).toBe(0.1);
  });

  it('gives no figure for text that is not a cpu line, or when no time passed', () => {
    expect(parseProcStat('')).toBeUndefined();
    expect(parseProcStat('cpu0 1 2 3 4 5 6 7 8\n')).toBeUndefined();
    expect(parseProcStat('cpu 1 2 3\n')).toBeUndefined();
    expect(parseProcStat('cpu 1 2 x 4 5 6 7 8\n')).toBeUndefined();
    const one = parseProcStat(stat(1, 2, 3));
    expect(stealFraction(one, one)).toBeUndefined();
    expect(stealFraction(undefined, one)).toBeUndefined();
    expect(stealFraction(one, undefined)).toBeUndefined();
  });

  it.runIf(existsSync('/proc/stat'))('reads this machine (Linux)', () => {
    const reading = parseProcStat(readFileSync('/proc/stat', 'utf8'));
    expect(reading?.total).toBeGreaterThan(0);
    expect(reading?.steal).toBeGreaterThanOrEqual(0);
  });
});

describe('bench ratio table', () => {
  const run = (opsPerSec: number, steal: number | undefined, otherCpu?: number): RunResult => ({
    workload: 'put',
    valueSize: 256,
    opsPerSec,
    latencyUs: { p50: 1000, p99: 2000, p999: 3000, max: 4000 },
    counts: { ok: opsPerSec * 10, miss: 0, siblings: 0, failed: 0 },
    failures: {},
    clientCpu: 0.2,
    serverCpu: 1.5,
    loadAvg1: 2,
    steal,
    otherCpu,
  });

  it("shows each target's steal and other work's CPU beside the ratios, so a starved half is visible", () => {
    const text = formatRatios(
      [
        { target: 'ringkv', result: run(4000, 0.002, 0.03) },
        { target: 'etcd', result: run(2000, 0.173, 0.45) },
      ],
      'ringkv',
      'etcd',
    );
    const [header, row] = (text ?? '').split('\n');
    expect(header).toContain('steal ringkv/etcd');
    expect(header).toMatch(/other ringkv\/etcd$/);
    expect(row).toMatch(/^put\s+256 B\s+2\.00\s.*\s0\.2%\/17\.3%\s+3%\/45%$/);
  });

  it('shows a dash for a target whose steal is unknown', () => {
    const text = formatRatios(
      [
        { target: 'ringkv', result: run(4000, undefined) },
        { target: 'etcd', result: run(2000, 0) },
      ],
      'ringkv',
      'etcd',
    );
    expect(text?.split('\n')[1]).toMatch(/\s-\/0\.0%\s+-\/-$/);
  });
});
