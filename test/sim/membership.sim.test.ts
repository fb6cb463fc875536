/**
 * Deterministic simulations of membership: joins through seeds, random partitions and heals,
 * crashes and restarts, admin removal. Every run is replayable from its seed (see harness.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { forEachSeed, MembershipCluster, Sim } from './harness.js';

const FILE = 'test/sim/membership.sim.test.ts';
const SEEDS = 100;
const INTERVAL = 1000;
/** Bound on convergence after a heal, in gossip rounds. */
const HEAL_BOUND_ROUNDS = 30;
/** Bound on detecting a crash, in simulated ms. */
const DETECT_BOUND_MS = 10_000;

const worst = { joinRounds: 0, healRounds: 0, detectMs: 0, recoverMs: 0, removeRounds: 0, runs: 0 };

afterAll(() => {
  console.log(
    `membership sim: ${worst.runs} seeded runs; worst join ${worst.joinRounds.toFixed(1)} rounds, ` +
      `worst convergence after heal ${worst.healRounds.toFixed(1)} rounds, worst crash detection ${worst.detectMs} ms, ` +
      `worst recovery after restart ${worst.recoverMs} ms, worst removal spread ${worst.removeRounds.toFixed(1)} rounds`,
  );
});

const IDS = ['n1', 'n2', 'n3', 'n4', 'n5'];
const ZONES = ['a', 'b', 'c'];

/** Five nodes joining through one or two seeds, started at staggered times; waits for convergence. */
async function startCluster(sim: Sim): Promise<MembershipCluster> {
  const cluster = new MembershipCluster(sim, { gossipIntervalMs: INTERVAL, n: 3 });
  const seedIds = sim.random.next() < 0.5 ? ['n1'] : ['n1', 'n2'];
  const seeds = seedIds.map((id) => cluster.addressOf(id));
  for (const [i, id] of IDS.entries()) {
    await cluster.add({ id, zone: ZONES[i % ZONES.length], seeds });
    await sim.advance(sim.between(0, 2000));
  }
  const took = await sim.runUntil(
    () => cluster.converged() && cluster.live().every((n) => cluster.tableSignature(n.id).split(',').length === IDS.length) &&
      cluster.live().every((n) => n.membership.statuses().every((s) => s.status === 'up')),
    30 * INTERVAL,
    { what: 'initial join' },
  );
  worst.joinRounds = Math.max(worst.joinRounds, took / INTERVAL);
  return cluster;
}

type Fault = 'halves' | 'isolate' | 'one-way';

function applyFault(sim: Sim, cluster: MembershipCluster): Fault {
  const addrs = cluster.live().map((n) => n.address);
  const kind = sim.pick<Fault>(['halves', 'isolate', 'one-way']);
  if (kind === 'halves') {
    const shuffled = sim.shuffle(addrs);
    const cut = sim.between(1, shuffled.length - 1);
    sim.net.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
  } else if (kind === 'isolate') {
    sim.net.isolate(sim.pick(addrs));
  } else {
    // One or more one-way cuts: requests (and replies) from a to b are dropped.
    const cuts = sim.between(1, 3);
    for (let i = 0; i < cuts; i++) {
      const [a, b] = sim.shuffle(addrs);
      if (a !== undefined && b !== undefined) sim.net.cut(a, b, true);
    }
  }
  return kind;
}

describe('membership simulation', () => {
  it(`converges after random partitions heal (${SEEDS} seeds)`, async () => {
    await forEachSeed(
      SEEDS,
      async (seed) => {
        const sim = new Sim(seed);
        const cluster = await startCluster(sim);
        let left = false;
        for (let episode = 0; episode < 3; episode++) {
          applyFault(sim, cluster);
          // Membership changes during the fault, so there is something to reconcile.
          const action = sim.random.int(4);
          const victim = sim.pick(IDS);
          if (action === 0) {
            await sim.advance(sim.between(0, 5000));
            await cluster.crash(victim);
            await sim.advance(sim.between(500, 5000));
            await cluster.restart(victim);
          } else if (action === 1 && !left) {
            left = true;
            cluster.node(victim).membership.leave();
          }
          await sim.advance(sim.between(3000, 30_000));
          sim.net.heal();
          const took = await sim.runUntil(() => cluster.converged(), HEAL_BOUND_ROUNDS * INTERVAL, {
            what: `convergence after heal (episode ${episode})`,
            explain: () => cluster.explain(),
          });
          worst.healRounds = Math.max(worst.healRounds, took / INTERVAL);
          await sim.advance(sim.between(0, 5000));
        }
        const states = new Set(cluster.live().map((n) => cluster.tableSignature(n.id)));
        expect(states.size).toBe(1);
        await cluster.stopAll();
        worst.runs++;
      },
      { file: FILE },
    );
  });

  it(`detects a crash within ${DETECT_BOUND_MS} ms, never falsely, and sees the restart (${SEEDS} seeds)`, async () => {
    await forEachSeed(
      SEEDS,
      async (seed) => {
        const sim = new Sim(seed);
        const cluster = await startCluster(sim);
        // A healthy cluster with jittered rounds: nobody is ever judged down.
        const noFalseDown = (): void => {
          if (!cluster.allSeeLiveUp()) throw new Error(`false down verdict at ${sim.elapsed()} ms`);
        };
        await sim.runFor(sim.between(20_000, 60_000), { check: noFalseDown });

        const victim = sim.pick(IDS);
        const oldIncarnation = cluster.node(victim).membership.member(victim)?.incarnation ?? -1;
        await cluster.crash(victim);
        const detect = await sim.runUntil(() => cluster.observersSeeingUp(victim).length === 0, DETECT_BOUND_MS, {
          what: `all nodes judging crashed ${victim} down`,
          check: noFalseDown,
        });
        worst.detectMs = Math.max(worst.detectMs, detect);
        for (const n of cluster.live()) {
          expect(n.membership.statuses().find((s) => s.id === victim)?.status).toBe('down');
        }

        await sim.runFor(sim.between(0, 20_000), { check: noFalseDown });
        const node = await cluster.restart(victim);
        const inc = node.membership.member(victim)?.incarnation ?? -1;
        expect(inc).toBeGreaterThan(oldIncarnation);
        const recover = await sim.runUntil(
          () =>
            cluster
              .live()
              .every(
                (n) =>
                  (n.membership.member(victim)?.incarnation ?? -1) >= inc &&
                  n.membership.statuses().find((s) => s.id === victim)?.status === 'up',
              ),
          10 * INTERVAL,
          { what: `restarted ${victim} seen up`, explain: () => cluster.explain() },
        );
        worst.recoverMs = Math.max(worst.recoverMs, recover);
        await sim.runUntil(() => cluster.converged(), 10 * INTERVAL, { what: 'convergence after restart' });
        await sim.runFor(30_000, { check: noFalseDown });
        await cluster.stopAll();
        worst.runs++;
      },
      { file: FILE, base: 1001 },
    );
  });

  it(`propagates remove(id) to every node (${SEEDS} seeds)`, async () => {
    await forEachSeed(
      SEEDS,
      async (seed) => {
        const sim = new Sim(seed);
        const cluster = await startCluster(sim);
        const victim = sim.pick(IDS);
        await cluster.crash(victim);
        await sim.advance(sim.between(0, 15_000));
        const admin = sim.pick(cluster.live());
        expect(admin.membership.remove(victim)).toBe(true);
        const took = await sim.runUntil(
          () =>
            cluster
              .live()
              .every(
                (n) =>
                  n.membership.member(victim)?.state === 'removed' &&
                  !n.membership.statuses().some((s) => s.id === victim) &&
                  !n.membership.ring().members.some((m) => m.id === victim),
              ) && cluster.converged(),
          HEAL_BOUND_ROUNDS * INTERVAL,
          { what: `removal of ${victim} reaching every node` },
        );
        worst.removeRounds = Math.max(worst.removeRounds, took / INTERVAL);
        expect(admin.membership.ring().members.map((m) => m.id)).toEqual(IDS.filter((id) => id !== victim));

        // Restarting the removed node (a newer incarnation) brings it back.
        await cluster.restart(victim);
        await sim.runUntil(
          () =>
            cluster.converged() &&
            cluster.live().every((n) => n.membership.ring().members.some((m) => m.id === victim)),
          HEAL_BOUND_ROUNDS * INTERVAL,
          { what: `restarted ${victim} rejoining after removal` },
        );
        await cluster.stopAll();
        worst.runs++;
      },
      { file: FILE, base: 2001 },
    );
  });

  it('replays a seed exactly', async () => {
    const trace = async (seed: number): Promise<string> => {
      const sim = new Sim(seed);
      const cluster = await startCluster(sim);
      applyFault(sim, cluster);
      await sim.advance(10_000);
      const out = cluster
        .live()
        .map((n) => `${sim.elapsed()}|${JSON.stringify(n.membership.records())}|${JSON.stringify(n.membership.statuses())}`)
        .join('\n');
      await cluster.stopAll();
      return out;
    };
    expect(await trace(7)).toBe(await trace(7));
    expect(await trace(7)).not.toBe(await trace(8));
  });
});
