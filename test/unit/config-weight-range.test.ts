/**
 * `--weight` against the ring's arithmetic: a member's score is -ln(u) / weight, so a weight
 * small enough to make that Infinity (5e-324, reachable as a long decimal) or absurdly large
 * is a one-line ConfigError naming --weight (the CLI exits 2), not a node that joins and
 * skews every ranking it is in.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseNodeConfig, WEIGHT_RANGE } from '../../src/config.js';
import { buildRing } from '../../src/ring/ring.js';

/** The ConfigError `argv` (and `env`) raise; the test fails if they raise none. */
function configError(argv: string[], env: Record<string, string> = {}): ConfigError {
  try {
    parseNodeConfig(argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  return expect.unreachable(`${JSON.stringify(argv)} ${JSON.stringify(env)} was accepted`);
}

/** 5e-324 (the smallest denormal) written out as a decimal, which the flag's syntax allows. */
const DENORMAL = `0.${'0'.repeat(323)}5`;

describe('--weight', () => {
  it('accepts the documented range, ends included, default 1', () => {
    expect(parseNodeConfig(['--id', 'n1']).weight).toBe(1);
    expect(parseNodeConfig(['--id', 'n1', '--weight', '0.01']).weight).toBe(0.01);
    expect(parseNodeConfig(['--id', 'n1', '--weight', '2.5']).weight).toBe(2.5);
    expect(parseNodeConfig(['--id', 'n1', '--weight', '1000']).weight).toBe(1000);
    expect(parseNodeConfig(['--id', 'n1'], { RINGKV_WEIGHT: '0.5' }).weight).toBe(0.5);
    expect(WEIGHT_RANGE).toEqual({ min: 0.01, max: 1000 });
  });

  it.each([
    ['a denormal written as a decimal', DENORMAL],
    ['a decimal that underflows to 0', `0.${'0'.repeat(400)}1`],
    ['just below the minimum', '0.0099'],
    ['zero', '0'],
    ['zero with decimals', '0.000'],
    ['negative', '-1'],
    ['just above the maximum', '1000.001'],
    ['huge', `1${'0'.repeat(308)}`],
    ['an overflow to Infinity', `1${'0'.repeat(400)}`],
    ['exponent notation (denormal)', '5e-324'],
    ['exponent notation (huge)', '1e308'],
    ['Infinity', 'Infinity'],
    ['NaN', 'NaN'],
    ['hex', '0x10'],
    ['empty after =', ''],
  ])('rejects %s naming --weight, on one line', (_what, raw) => {
    const err = configError(['--id', 'n1', `--weight=${raw}`]);
    expect(err.flag).toBe('weight');
    expect(err.message).toContain('from 0.01 to 1000');
    expect(err.message).not.toContain('\n');
  });

  it('rejects an out-of-range RINGKV_WEIGHT the same way', () => {
    expect(configError(['--id', 'n1'], { RINGKV_WEIGHT: DENORMAL }).flag).toBe('weight');
    expect(configError(['--id', 'n1'], { RINGKV_WEIGHT: '5000' }).flag).toBe('weight');
  });

  it('at either end of the range, two equal-weight members in one zone share that zone\'s replicas evenly', () => {
    // What the range is for: -ln(u) / weight stays an ordinary double for every accepted
    // weight. At 5e-324 (what the old check let through as a long decimal) it is Infinity in
    // every partition, the tie goes to the lower id, and of two such nodes one holds nothing.
    for (const w of [WEIGHT_RANGE.min, WEIGHT_RANGE.max]) {
      const zones = ['a', 'a', 'b', 'b', 'b'];
      const weights = [w, w, 1, 1, 1];
      const ring = buildRing(
        weights.map((weight, i) => ({ id: `n${i + 1}`, zone: zones[i] as string, weight })),
        { n: 3, partitionBits: 12 },
      );
      const held = new Map<string, number>();
      for (let p = 0; p < ring.partitions; p++) for (const id of ring.preferenceList(p)) held.set(id, (held.get(id) ?? 0) + 1);
      const a = held.get('n1') ?? 0;
      const b = held.get('n2') ?? 0;
      expect(a + b).toBeGreaterThan(0);
      expect(Math.abs(a - b) / (a + b)).toBeLessThan(0.1);
    }
  });
});
