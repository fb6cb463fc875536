import { describe, expect, it } from 'vitest';
import { BreakerGauge } from '../../../src/observability/breaker-gauge.js';
import { Metrics } from '../../../src/observability/metrics.js';

async function series(m: Metrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await m.breakerState.get()).values) out[String(v.labels.peer)] = v.value;
  return out;
}

describe('BreakerGauge', () => {
  it('keeps one series per peer with the breaker state as 0 / 1 / 2', async () => {
    const m = new Metrics('n1');
    const g = new BreakerGauge(m);
    g.set('10.0.0.2:8081', 'open');
    g.set('10.0.0.3:8081', 'half-open');
    g.set('10.0.0.4:8081', 'closed');
    expect(await series(m)).toEqual({ '10.0.0.2:8081': 2, '10.0.0.3:8081': 1, '10.0.0.4:8081': 0 });
  });

  it('drops the series of addresses that are no longer members, and only those', async () => {
    const m = new Metrics('n1');
    const g = new BreakerGauge(m);
    g.set('10.0.0.2:8081', 'open');
    g.set('10.0.0.3:8081', 'closed');
    g.retain(new Set(['10.0.0.1:8081', '10.0.0.3:8081']));
    expect(await series(m)).toEqual({ '10.0.0.3:8081': 0 });
    // A straggling call to the removed address starts its series again.
    g.set('10.0.0.2:8081', 'half-open');
    expect(await series(m)).toEqual({ '10.0.0.2:8081': 1, '10.0.0.3:8081': 0 });
    g.retain(new Set());
    expect(await series(m)).toEqual({});
  });
});
