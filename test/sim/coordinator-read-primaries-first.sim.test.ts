/**
 * A read asks the key's owners that are up before any stand-in. A stand-in holds only what
 * was written while the owner it replaces was down, so counting its "not found" toward R in
 * place of an owner that is up and holds the key loses R + W > N: a write acknowledged by two
 * of three owners, one of which then crashes, reads as not found at R=2 through the third.
 */
import { describe, expect, it } from 'vitest';
import { RingkvError } from '../../src/errors.js';
import { planReplicas } from '../../src/coordinator/placement.js';
import type { SimCluster } from './cluster-sim.js';
import { withSimCluster } from './cluster-sim.js';

/** How node `self` orders its peers for reads (ids after its own first): see Coordinator.readOrder. */
function peerFirst(self: string, a: string, b: string): boolean {
  const afterA = a > self;
  const afterB = b > self;
  return afterA !== afterB ? afterA : a < b;
}

interface Scenario {
  key: string;
  /** The owner that crashes. */
  down: string;
  /** The owner that misses the write and coordinates the read. */
  reader: string;
  /** The owner that holds the write. */
  holder: string;
  /** Who stands in for `down`. */
  standIn: string;
}

/** A key and roles that `wanted` accepts (so a test provokes what it is about). */
function findScenario(c: SimCluster, wanted: (s: Scenario) => boolean): Scenario {
  const ring = c.node('n1').c.membership.ring();
  const zoneOf = (id: string): string | undefined => c.node('n1').c.membership.member(id)?.zone;
  for (let i = 0; i < 10_000; i++) {
    const key = `k${i}`;
    const p = ring.partitionOf(key);
    const pref = ring.preferenceList(p);
    for (const down of pref)
      for (const reader of pref) {
        if (reader === down) continue;
        const holder = pref.find((id) => id !== down && id !== reader) as string;
        const slots = planReplicas({
          preferenceList: pref,
          fullOrder: () => ring.fullOrder(p),
          self: reader,
          isUp: (id) => id !== down,
          useFallbacks: true,
          zoneOf,
        });
        const standIn = slots.find((s) => s.hintFor)?.target;
        if (standIn === undefined || standIn === reader) continue;
        const s = { key, down, reader, holder, standIn };
        if (wanted(s)) return s;
      }
  }
  throw new Error('no scenario found');
}

/**
 * `reader` misses the write, which `holder` and `down` acknowledge (W=2 of N=3); then `down`
 * crashes and `via` sees it down, so `standIn` takes its slot. The reader's replica writes
 * keep failing (a full disk, say), so the holder's hint for it cannot be delivered either.
 */
async function ownerCrashesAfterAck(c: SimCluster, s: Scenario, via: string): Promise<void> {
  const reader = c.node(s.reader);
  const refusing = new Map(reader.c.handlers);
  for (const route of ['replica-write', 'replica-write-batch'])
    refusing.set(route, async () => {
      throw new RingkvError('UNAVAILABLE', 'disk full');
    });
  c.sim.net.register(reader.address, refusing);

  await c.put(s.holder, s.key, 'v1', { w: 2 });
  expect(await c.local(s.holder, s.key)).toEqual(['v1']);
  expect(await c.local(s.down, s.key)).toEqual(['v1']);
  expect(await c.local(s.reader, s.key)).toEqual([]);

  await c.crash(s.down);
  await c.runUntil('the crashed owner seen down', () => !c.node(via).c.membership.isUp(s.down));
  expect(await c.local(s.standIn, s.key)).toEqual([]);
}

describe('reads ask up owners before stand-ins', () => {
  it('a w=2 write acknowledged before one owner crashes is read at r=2 through the owner that missed it', async () => {
    await withSimCluster({ seed: 71, nodes: 5, zones: ['a', 'b', 'c', 'd', 'e'] }, 5, async (c) => {
      // The reader, ordering its peers by id alone, would ask the stand-in before the holder.
      const s = findScenario(c, (x) => peerFirst(x.reader, x.standIn, x.holder));
      await ownerCrashesAfterAck(c, s, s.reader);
      // R=2 of the three up targets: the reader itself and the holder, not the stand-in.
      expect((await c.get(s.reader, s.key, { r: 2 })).values).toEqual(['v1']);
    });
  });

  it('the same write is read at r=2 through the stand-in itself, which asks both up owners before its own copy', async () => {
    await withSimCluster({ seed: 72, nodes: 5, zones: ['a', 'b', 'c', 'd', 'e'] }, 5, async (c) => {
      // The stand-in would ask its own (empty) copy first, then the reader before the holder.
      const s = findScenario(c, (x) => peerFirst(x.standIn, x.reader, x.holder));
      await ownerCrashesAfterAck(c, s, s.standIn);
      expect((await c.get(s.standIn, s.key, { r: 2 })).values).toEqual(['v1']);
    });
  });
});
