/**
 * A write forwarded by a node that is not a replica of its key is bounded by the request's
 * `timeout` as a whole: not once per owner tried, not the timeout plus a forwarding margin,
 * not the owners' attempts plus a full local write after them. Five nodes, N=3, simulated
 * time, so the client-visible time is measured exactly.
 */
import { describe, expect, it, vi } from 'vitest';
import { RingkvError } from '../../src/errors.js';
import type { SendOptions } from '../../src/transport/transport.js';
import { TransportError } from '../../src/transport/transport.js';
import { type SimCluster, withForwardedKey } from './cluster-sim.js';


/** A PUT through `via` and the exact simulated time until it settled (value or error). */
async function timedPut(
  c: SimCluster,
  via: string,
  key: string,
  opts: { w: number; timeoutMs: number },
): Promise<{ ms: number; error: unknown }> {
  const t0 = c.time.monotonic();
  let ms = Number.NaN;
  const p = c.node(via).c.coordinator.put(key, { value: new TextEncoder().encode('v1'), contentType: 'text/plain', deleted: false }, '', opts);
  // Stamped in the settling callback itself: SimCluster.settle advances time in 10 ms steps.
  const stamped = p.then(
    () => {
      ms = c.time.monotonic() - t0;
      return undefined;
    },
    (e: unknown) => {
      ms = c.time.monotonic() - t0;
      return e;
    },
  );
  const error = await c.settle(stamped);
  return { ms, error };
}

/**
 * Sends from `from` to `to` behave like TCP connects to a host that drops SYNs: nothing for
 * `connectMs`, then a connect timeout, which proves the request was never sent ('unreachable').
 * The owner still gossips to `from`, so `from` keeps seeing it up.
 */
function connectTimesOut(c: SimCluster, from: string, to: readonly string[], connectMs: number): void {
  const net = c.sim.net;
  const deliver = net.deliver.bind(net);
  const silent = new Set(to.map((id) => c.node(id).address));
  const src = c.node(from).address;
  vi.spyOn(net, 'deliver').mockImplementation(async (f: string, t: string, route: string, body: Uint8Array, opts: SendOptions) => {
    if (f !== src || !silent.has(t)) return deliver(f, t, route, body, opts);
    await c.sim.time.sleep(connectMs, opts.signal);
    throw new TransportError('unreachable', t, `cannot connect to ${t}: connect timeout`);
  });
}

describe('a forwarded PUT answers within its timeout', () => {
  it('when the owner it forwards to never answers: 503 at the timeout, not the timeout plus a margin', async () => {
    await withForwardedKey(61, async (c, key, owners) => {
      const first = owners[0] as string;
      // Requests from n1 to `first` are dropped (a host that accepts and never answers).
      c.sim.net.cut(c.node('n1').address, c.node(first).address, true);
      const { ms, error } = await timedPut(c, 'n1', key, { w: 2, timeoutMs: 1000 });
      expect(c.node('n1').c.membership.isUp(first)).toBe(true);
      expect(error).toBeInstanceOf(RingkvError);
      expect((error as RingkvError).details).toEqual({ answered: 0, needed: 2 });
      expect(ms).toBeLessThanOrEqual(1000);
      expect(ms).toBeGreaterThanOrEqual(1000 * 0.9);
    });
  });

  it('when every owner times out on connect: one timeout in all, not one per owner tried, nor a local write after them', async () => {
    await withForwardedKey(62, async (c, key, owners) => {
      // Each connect fails after 600 ms: before the fix, 3 owners × 600 ms, then a full local
      // write whose replica sends fail after 600 ms more (about 2400 ms for a 1000 ms PUT).
      connectTimesOut(c, 'n1', owners, 600);
      const { ms, error } = await timedPut(c, 'n1', key, { w: 2, timeoutMs: 1000 });
      expect(owners.every((id) => c.node('n1').c.membership.isUp(id))).toBe(true);
      expect(error).toBeInstanceOf(RingkvError);
      expect((error as RingkvError).code).toBe('QUORUM_FAILED');
      expect(ms).toBeLessThanOrEqual(1000);
    });
  });

  it('when the first owners time out on connect, the next one is tried with what is left, and the write succeeds in time', async () => {
    await withForwardedKey(63, async (c, key, owners) => {
      const [a, b, last] = owners as [string, string, string];
      connectTimesOut(c, 'n1', [a, b], 300);
      const { ms, error } = await timedPut(c, 'n1', key, { w: 2, timeoutMs: 1000 });
      expect(error).toBeUndefined();
      expect(ms).toBeLessThanOrEqual(1000);
      expect(await c.local(last, key)).toEqual(['v1']);
    });
  });

  it('still passes on the forwarded coordinator’s own 503 (with its count), before the forwarding node’s deadline', async () => {
    await withForwardedKey(64, async (c, key, owners) => {
      const [first, ...rest] = owners as [string, ...string[]];
      // `first` takes the forwarded write but cannot reach the other owners: it stores its
      // own copy and answers 503 "1 of 3" when its (shorter) timeout runs out.
      for (const id of rest) c.sim.net.cut(c.node(first).address, c.node(id).address, true);
      const { ms, error } = await timedPut(c, 'n1', key, { w: 3, timeoutMs: 1000 });
      expect(error).toBeInstanceOf(RingkvError);
      expect((error as RingkvError).details).toEqual({ answered: 1, needed: 3 });
      expect(ms).toBeLessThanOrEqual(1000);
    });
  });
});
