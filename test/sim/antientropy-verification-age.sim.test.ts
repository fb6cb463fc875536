/**
 * ringkv_antientropy_oldest_verification_age_seconds when the wall clock is set: the age is
 * measured on the monotonic clock, so it keeps growing while nothing is verified however the
 * wall clock moves, and a wall clock set forward does not make a fresh verification look old.
 *
 * Two hand-wired replicas (LocalReplica + MemoryStore + AntiEntropy), one ManualTime for
 * timers and the monotonic clock, and a wall clock that is the ManualTime plus an offset the
 * test sets (what an NTP step or a resumed VM does).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AntiEntropy } from '../../src/antientropy/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { LocalReplica } from '../../src/replica/local-replica.js';
import { buildRing } from '../../src/ring/index.js';
import type { Clock } from '../../src/runtime/clock.js';
import { ManualTime, seededRandom } from '../../src/runtime/index.js';
import { MemoryStore } from '../../src/storage/index.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { staticMembership } from './static-membership.js';

const HOUR = 3600_000;

/** ManualTime's monotonic clock, and its wall clock moved by `wallOffset`. */
class SettableWallClock implements Clock {
  wallOffset = 0;

  constructor(private readonly time: ManualTime) {}

  now(): number {
    return this.time.now() + this.wallOffset;
  }

  monotonic(): number {
    return this.time.monotonic();
  }
}

interface Node {
  readonly ae: AntiEntropy;
  readonly metrics: Metrics;
  readonly store: MemoryStore;
}

class Pair {
  readonly time = new ManualTime();
  readonly clock = new SettableWallClock(this.time);
  readonly net = new MemoryNetwork(this.time);
  readonly ring: ReturnType<typeof buildRing>;

  /** `n` replicas per partition (1: no partition has a co-replica). */
  constructor(n = 2) {
    this.ring = buildRing(
      ['a', 'b'].map((id) => ({ id, zone: id, weight: 1 })),
      { n, partitionBits: 6 },
    );
  }

  readonly down = new Set<string>();
  readonly nodes = new Map<string, Node>();

  async start(): Promise<void> {
    for (const [i, id] of ['a', 'b'].entries()) {
      const store = new MemoryStore();
      await store.open();
      const random = seededRandom(i + 1);
      const log = silentLogger();
      const replica = new LocalReplica({ store, random, log }, { actor: `${id}.e1` });
      await replica.start();
      const membership = staticMembership(id, () => this.ring, (m) => m === id || !this.down.has(m));
      const metrics = new Metrics(id);
      const ae = new AntiEntropy(
        { store, replica, membership, transport: this.net.transport(`${id}:7000`), clock: this.clock, timers: this.time, random, log, metrics },
        { timeoutMs: 1000, intervalMs: 1000, jitter: 0, reaper: false },
      );
      this.net.register(`${id}:7000`, ae.handlers());
      await ae.rebuild();
      this.nodes.set(id, { ae, metrics, store });
    }
  }

  async stop(): Promise<void> {
    for (const n of this.nodes.values()) {
      await n.ae.stop();
      await n.store.close();
    }
  }

  node(id: string): Node {
    return this.nodes.get(id)!;
  }

  async run(ms: number): Promise<void> {
    for (let t = 0; t < ms; t += 100) {
      await this.time.advance(100);
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  async settle<T>(p: Promise<T>): Promise<T> {
    let done = false;
    const watched = p.finally(() => {
      done = true;
    });
    watched.catch(() => undefined);
    while (!done) await this.run(100);
    return watched;
  }

  async gauge(id: string): Promise<number | undefined> {
    return (await this.node(id).metrics.aaeVerificationAge.get()).values[0]?.value;
  }
}

let pair: Pair | undefined;
afterEach(async () => {
  await pair?.stop();
  pair = undefined;
});

describe('the oldest verification age and the wall clock', () => {
  it('keeps growing while no co-replica can be reached, after the wall clock was set back an hour', async () => {
    pair = new Pair();
    await pair.start();
    const a = pair.node('a');
    expect((await pair.settle(a.ae.exchangeWith('b'))).outcome).toBe('identical');
    expect(a.ae.verificationAge()).toBeLessThan(0.5);

    // The wall clock goes back an hour, and b becomes unreachable: nothing is verified any more.
    pair.clock.wallOffset = -HOUR;
    pair.down.add('b');
    await a.ae.start();
    await pair.run(10 * 60_000);

    // Before: 0 for the whole hour (now - verifiedAt < 0, clamped), while nothing was verified.
    expect(a.ae.verificationAge()).toBeGreaterThanOrEqual(599);
    expect(await pair.gauge('a')).toBeGreaterThanOrEqual(598);

    // b is back: the next rounds verify again, and the age falls.
    pair.down.delete('b');
    await pair.run(5000);
    expect(a.ae.verificationAge()).toBeLessThan(5);
    expect(await pair.gauge('a')).toBeLessThan(5);
  });

  it('does not jump when the wall clock is set forward an hour just after a verification', async () => {
    pair = new Pair();
    await pair.start();
    const a = pair.node('a');
    await pair.settle(a.ae.exchangeWith('b'));
    pair.clock.wallOffset = HOUR;
    await pair.run(1000);
    // Before: 3601 s, an hour-old verification that happened a second ago.
    expect(a.ae.verificationAge()).toBeLessThan(2);
  });

  it('the gauge is current at each scrape, not only when a round ends', async () => {
    pair = new Pair();
    await pair.start();
    const a = pair.node('a');
    await pair.settle(a.ae.exchangeWith('b'));
    // No round runs (a is not started): before, the gauge kept what the last round set, 0.
    await pair.run(60_000);
    expect(await pair.gauge('a')).toBeGreaterThanOrEqual(59);
  });

  it('is 0 when no partition has a co-replica (n=1), however long nothing is compared', async () => {
    pair = new Pair(1);
    await pair.start();
    await pair.run(10 * 60_000);
    expect(pair.node('a').ae.verificationAge()).toBe(0);
    expect(await pair.gauge('a')).toBe(0);
  });
});
