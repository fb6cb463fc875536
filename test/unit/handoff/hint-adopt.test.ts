/**
 * The hint-adopt route (adoptHintHandler): what a member does with a hint a leaving node
 * hands it. It parks the hint whatever its own hinted-handoff setting (a replica write with
 * `hintsFor` would not, on a node with it off), refuses unless it is active, and refuses a
 * message its encoder would not write.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeReplicaWrite } from '../../../src/coordinator/messages.js';
import { adoptHintHandler } from '../../../src/handoff/hint-adopt.js';
import type { MemberRecord, MembershipView } from '../../../src/membership/types.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { LocalReplica } from '../../../src/replica/local-replica.js';
import { seededRandom } from '../../../src/runtime/index.js';
import { hintKey, MemoryStore } from '../../../src/storage/index.js';
import { mint } from '../../../src/version/index.js';

const PARTITION = 5;
const enc = new TextEncoder();
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function member(state: MemberRecord['state']) {
  const store = new MemoryStore();
  await store.open();
  cleanups.push(() => store.close());
  const replica = new LocalReplica({ store, random: seededRandom(3), log: silentLogger() }, { actor: 'n2.1' });
  await replica.start();
  const membership = {
    self: 'n2',
    member: (id: string): MemberRecord | undefined =>
      id === 'n2' ? { id, address: 'n2:1', zone: 'a', weight: 1, state, incarnation: 1, heartbeat: 1 } : undefined,
    ring: () => ({ partitionOf: () => PARTITION }),
  } as unknown as MembershipView;
  return { store, replica, handler: adoptHintHandler({ replica, membership }) };
}

const object = mint(undefined, {}, { value: enc.encode('v'), contentType: 'text/plain', deleted: false }, 'n1.1', 1).object;

describe('adopting a hint a leaving node hands over', () => {
  it('stores the copy and parks a hint for each owner but itself', async () => {
    const { store, replica, handler } = await member('active');
    await handler(encodeReplicaWrite({ key: 'k', hintsFor: ['n3', 'n2'], object }), undefined);
    expect((await replica.read(PARTITION, 'k'))?.siblings.length).toBe(1);
    expect(await store.get('hint', hintKey('n3', PARTITION, 'k'))).toBeDefined();
    expect(await store.get('hint', hintKey('n2', PARTITION, 'k'))).toBeUndefined();
    expect(replica.pendingHints).toBe(1);
  });

  it.each(['leaving', 'joining', 'removed'] as const)('refuses on a member that is %s, and parks nothing', async (state) => {
    const { replica, handler } = await member(state);
    await expect(handler(encodeReplicaWrite({ key: 'k', hintsFor: ['n3'], object }), undefined)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(replica.pendingHints).toBe(0);
    expect(await replica.read(PARTITION, 'k')).toBeUndefined();
  });

  it('refuses a truncated message or one with bytes after it', async () => {
    const { replica, handler } = await member('active');
    const body = encodeReplicaWrite({ key: 'k', hintsFor: ['n3'], object });
    await expect(handler(body.subarray(0, body.length - 3), undefined)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(handler(Uint8Array.from([...body, 0]), undefined)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect(replica.pendingHints).toBe(0);
  });
});
