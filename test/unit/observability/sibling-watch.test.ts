import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { SIBLING_WARN_AT, SIBLING_WARN_INTERVAL_MS, SiblingWatch } from '../../../src/observability/sibling-watch.js';
import { ManualTime } from '../../../src/runtime/index.js';

function setup(): { watch: SiblingWatch; time: ManualTime; metrics: Metrics; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ nodeId: 'w1', destination: { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) } });
  const time = new ManualTime();
  const metrics = new Metrics('w1');
  return { watch: new SiblingWatch({ metrics, log, clock: time }), time, metrics, lines };
}

async function histogram(metrics: Metrics): Promise<{ count: number; sum: number }> {
  const values = (await metrics.readSiblings.get()).values;
  const pick = (name: string): number => values.find((v) => v.metricName === name)?.value ?? 0;
  return { count: pick('ringkv_read_siblings_count'), sum: pick('ringkv_read_siblings_sum') };
}

describe('SiblingWatch', () => {
  it('counts every answer it is told of, and logs nothing below the threshold', async () => {
    const { watch, metrics, lines } = setup();
    watch.observe('a', 2);
    watch.observe('b', SIBLING_WARN_AT - 1);
    expect(await histogram(metrics)).toEqual({ count: 2, sum: 2 + SIBLING_WARN_AT - 1 });
    expect(lines).toEqual([]);
  });

  it('warns with the key at the threshold, at most once per interval, and says how many it left out', async () => {
    const { watch, time, lines } = setup();
    watch.observe('cart:1', SIBLING_WARN_AT);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, key: 'cart:1', siblings: SIBLING_WARN_AT, unloggedSince: 0 });

    await time.advance(SIBLING_WARN_INTERVAL_MS - 1);
    watch.observe('cart:2', 80);
    watch.observe('cart:3', 90);
    expect(lines).toHaveLength(1);

    await time.advance(1);
    watch.observe('cart:4', 30);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ key: 'cart:4', siblings: 30, unloggedSince: 2 });
  });
});
