import { describe, expect, it } from 'vitest';
import { ROUTES } from '../../../src/coordinator/messages.js';
import { RingkvError } from '../../../src/errors.js';
import { ManualTime } from '../../../src/runtime/index.js';
import { BATCH_ROUTE, isUnknownRouteError, withBatching, withBatchRoute } from '../../../src/transport/batching.js';
import { DEFAULT_BATCHED_ROUTES } from '../../../src/transport/peer-transport.js';
import {
  type InternalHandler,
  type PeerAddress,
  type SendOptions,
  type Transport,
  TransportError,
} from '../../../src/transport/transport.js';
import { Reader, Writer } from '../../../src/wire.js';

const PEER = 'peer:1';
const enc = new TextEncoder();
const dec = new TextDecoder();

/** A peer served in-process through withBatchRoute; batches wait for `release()` if held. */
function fakePeer(handlers: Map<string, InternalHandler>) {
  const served = withBatchRoute(handlers);
  const calls: { route: string; bytes: number }[] = [];
  let hold: Promise<void> | undefined;
  let release = (): void => undefined;
  let fail: TransportError | undefined;
  const inner: Transport = {
    async send(_to: PeerAddress, route: string, body: Uint8Array, _opts: SendOptions) {
      calls.push({ route, bytes: body.length });
      if (hold) await hold;
      if (fail) throw fail;
      const h = served.get(route);
      if (!h) {
        const e = new RingkvError('NOT_FOUND', `unknown internal route ${JSON.stringify(route)}`);
        throw new TransportError('remote', PEER, e.message, { status: 404, body: enc.encode(JSON.stringify(e.toJSON())) });
      }
      return h(body, 'me:1');
    },
    close: async () => undefined,
  };
  return {
    inner,
    calls,
    holdBatches() {
      hold = new Promise<void>((r) => {
        release = r;
      });
    },
    release: () => {
      hold = undefined;
      release();
    },
    failWith(err: TransportError | undefined) {
      fail = err;
    },
  };
}

const echo: InternalHandler = async (b) => b;
const opts = { timeoutMs: 1_000, idempotent: true } as const;
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('withBatching', () => {
  it('batches the coordinator replica routes by default', () => {
    expect([...DEFAULT_BATCHED_ROUTES].sort()).toEqual([ROUTES.replicaRead, ROUTES.replicaReadVersion, ROUTES.replicaWrite].sort());
  });

  it('packs sends made while the link is busy into one batch, each with its own reply', async () => {
    const time = new ManualTime();
    const peer = fakePeer(new Map([['echo', echo]]));
    const t = withBatching(peer.inner, { clock: time, timers: time }, { routes: ['echo'], maxInFlight: 1 });
    peer.holdBatches();
    const first = t.send(PEER, 'echo', enc.encode('a'), opts);
    await tick();
    const rest = Array.from({ length: 10 }, (_, i) => t.send(PEER, 'echo', enc.encode(`m${i}`), opts));
    await tick();
    expect(peer.calls).toHaveLength(1);
    peer.release();
    expect(dec.decode(await first)).toBe('a');
    expect((await Promise.all(rest)).map((r) => dec.decode(r))).toEqual(rest.map((_, i) => `m${i}`));
    expect(peer.calls.map((c) => c.route)).toEqual([BATCH_ROUTE, BATCH_ROUTE]);
  });

  it('with a defer hook, sends made in separate events before the deferred flush share one batch', async () => {
    const time = new ManualTime();
    const peer = fakePeer(new Map([['echo', echo]]));
    const deferred: (() => void)[] = [];
    const t = withBatching(
      peer.inner,
      { clock: time, timers: time, defer: (fn) => deferred.push(fn) },
      { routes: ['echo'] },
    );
    // Three sends from three separate events (as if from three sockets read in one I/O round):
    // with the default microtask flush the first would have left alone.
    const a = t.send(PEER, 'echo', enc.encode('a'), opts);
    await tick();
    const b = t.send(PEER, 'echo', enc.encode('b'), opts);
    await tick();
    const c = t.send(PEER, 'echo', enc.encode('c'), opts);
    await tick();
    expect(peer.calls).toHaveLength(0);
    expect(deferred).toHaveLength(1);
    deferred.shift()?.();
    expect((await Promise.all([a, b, c])).map((r) => dec.decode(r))).toEqual(['a', 'b', 'c']);
    expect(peer.calls).toHaveLength(1);
    expect(peer.calls[0]?.route).toBe(BATCH_ROUTE);
  });

  it('fails only the item whose handler failed, with its own status and body', async () => {
    const time = new ManualTime();
    const peer = fakePeer(
      new Map<string, InternalHandler>([
        ['echo', echo],
        ['busy', async () => Promise.reject(new RingkvError('UNAVAILABLE', 'too busy'))],
      ]),
    );
    const t = withBatching(peer.inner, { clock: time, timers: time }, { routes: ['echo', 'busy'] });
    const [ok, bad] = await Promise.allSettled([
      t.send(PEER, 'echo', enc.encode('x'), opts),
      t.send(PEER, 'busy', enc.encode('y'), opts),
    ]);
    expect(ok.status).toBe('fulfilled');
    expect(bad.status).toBe('rejected');
    const err = (bad as PromiseRejectedResult).reason as TransportError;
    expect(err.kind).toBe('remote');
    expect(err.status).toBe(503);
    expect(JSON.parse(dec.decode(err.body))).toEqual({ error: { code: 'UNAVAILABLE', message: 'too busy' } });
  });

  it('an item for a route the peer does not serve fails as an unknown route (a peer on an older ringkv), unlike other 404s', async () => {
    const time = new ManualTime();
    const peer = fakePeer(
      new Map<string, InternalHandler>([
        ['echo', echo],
        ['gone', async () => Promise.reject(new RingkvError('NOT_FOUND', 'no such member'))],
      ]),
    );
    const t = withBatching(peer.inner, { clock: time, timers: time }, { routes: ['echo', 'newer', 'gone'] });
    const [ok, newer, gone] = await Promise.allSettled([
      t.send(PEER, 'echo', enc.encode('x'), opts),
      t.send(PEER, 'newer', enc.encode('y'), opts),
      t.send(PEER, 'gone', enc.encode('z'), opts),
    ]);
    expect(ok.status).toBe('fulfilled');
    expect(isUnknownRouteError((newer as PromiseRejectedResult).reason)).toBe(true);
    expect(((gone as PromiseRejectedResult).reason as TransportError).status).toBe(404);
    expect(isUnknownRouteError((gone as PromiseRejectedResult).reason)).toBe(false);
    expect(isUnknownRouteError(new Error('unknown internal route'))).toBe(false);
  });

  it('fails every item of a failed batch with the batch error', async () => {
    const time = new ManualTime();
    const peer = fakePeer(new Map([['echo', echo]]));
    const t = withBatching(peer.inner, { clock: time, timers: time }, { routes: ['echo'] });
    peer.failWith(new TransportError('unreachable', PEER, 'refused'));
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => t.send(PEER, 'echo', enc.encode('z'), opts)));
    expect(results.every((r) => r.status === 'rejected' && (r.reason as TransportError).kind === 'unreachable')).toBe(true);
  });

  it("holds each item's own deadline while it waits in the queue", async () => {
    const time = new ManualTime();
    const peer = fakePeer(new Map([['echo', echo]]));
    const t = withBatching(peer.inner, { clock: time, timers: time }, { routes: ['echo'], maxInFlight: 1 });
    peer.holdBatches();
    const first = t.send(PEER, 'echo', enc.encode('a'), { timeoutMs: 10_000, idempotent: true });
    await tick();
    const waiting = t.send(PEER, 'echo', enc.encode('b'), { timeoutMs: 100, idempotent: true });
    const settled = waiting.then(
      () => 'ok',
      (e: TransportError) => e.kind,
    );
    await time.advance(100);
    expect(await settled).toBe('timeout');
    peer.release();
    await first;
    await tick();
    // The timed-out item was never sent.
    expect(peer.calls).toHaveLength(1);
  });

  it('bounds the queue: a send beyond it fails at once as unreachable', async () => {
    const time = new ManualTime();
    const peer = fakePeer(new Map([['echo', echo]]));
    const t = withBatching(peer.inner, { clock: time, timers: time }, { routes: ['echo'], maxInFlight: 1, maxQueued: 2 });
    peer.holdBatches();
    const inflight = t.send(PEER, 'echo', enc.encode('a'), opts);
    await tick();
    const queued = [t.send(PEER, 'echo', enc.encode('b'), opts), t.send(PEER, 'echo', enc.encode('c'), opts)];
    const err = await t.send(PEER, 'echo', enc.encode('d'), opts).catch((e: TransportError) => e);
    expect((err as TransportError).kind).toBe('unreachable');
    peer.release();
    await Promise.all([inflight, ...queued]);
  });

  it('caps items per batch, and reports the size of each batch it sends', async () => {
    const time = new ManualTime();
    const peer = fakePeer(new Map([['echo', echo]]));
    const sizes: number[] = [];
    const t = withBatching(
      peer.inner,
      { clock: time, timers: time, onBatch: (n) => sizes.push(n) },
      { routes: ['echo'], maxInFlight: 1, maxItems: 3 },
    );
    await Promise.all(Array.from({ length: 7 }, () => t.send(PEER, 'echo', enc.encode('q'), opts)));
    expect(peer.calls).toHaveLength(3);
    expect(sizes).toEqual([3, 3, 1]);
    // Sends that pass straight through are not batches.
    await t.send(PEER, 'other', enc.encode('x'), opts).catch(() => undefined);
    expect(sizes).toEqual([3, 3, 1]);
  });

  it('bounds the queued bytes too: a send that would pass the bound fails at once as unreachable', async () => {
    const time = new ManualTime();
    const peer = fakePeer(new Map([['echo', echo]]));
    const t = withBatching(peer.inner, { clock: time, timers: time }, { routes: ['echo'], maxInFlight: 1, maxQueuedBytes: 100 });
    peer.holdBatches();
    const inflight = t.send(PEER, 'echo', new Uint8Array(50), opts);
    await tick();
    const queued = t.send(PEER, 'echo', new Uint8Array(60), opts);
    const err = await t.send(PEER, 'echo', new Uint8Array(41), opts).catch((e: TransportError) => e);
    expect((err as TransportError).kind).toBe('unreachable');
    // What still fits the bound is queued as usual.
    const fits = t.send(PEER, 'echo', new Uint8Array(40), opts);
    peer.release();
    expect((await Promise.all([inflight, queued, fits])).map((r) => r.length)).toEqual([50, 60, 40]);
  });

  it('a batch reply with the wrong number of items fails every item as timeout (outcome unknown), never mismatched', async () => {
    const time = new ManualTime();
    // A peer that answers a batch of n items with n - 1 replies (a bug or a corrupt reply).
    const inner: Transport = {
      async send(_to, route, body) {
        const reply = await (withBatchRoute(new Map([['echo', echo]])).get(BATCH_ROUTE) as InternalHandler)(body, 'me:1');
        const r = new Reader(reply);
        const n = r.uint();
        const w = new Writer(reply.length).uint(n - 1);
        for (let i = 0; i < n - 1; i++) w.uint(r.uint()).bytes(r.bytes());
        expect(route).toBe(BATCH_ROUTE);
        return w.finish();
      },
      close: async () => undefined,
    };
    const t = withBatching(inner, { clock: time, timers: time }, { routes: ['echo'] });
    const results = await Promise.allSettled(['a', 'b', 'c'].map((v) => t.send(PEER, 'echo', enc.encode(v), opts)));
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const reason = (r as PromiseRejectedResult).reason as TransportError;
      expect(reason).toBeInstanceOf(TransportError);
      expect(reason.kind).toBe('timeout');
      expect(reason.message).toMatch(/bad batch reply/);
    }
  });

  it('the batch route refuses a malformed envelope and runs none of its items', async () => {
    let ran = 0;
    const counting: InternalHandler = async (b) => {
      ran++;
      return b;
    };
    const batch = withBatchRoute(new Map([['echo', counting]])).get(BATCH_ROUTE) as InternalHandler;
    const two = new Writer(64).uint(2).str('echo').bytes(enc.encode('a')).str('echo').bytes(enc.encode('b')).finish();
    expect(new Reader(await batch(two, 'me:1')).uint()).toBe(2);
    expect(ran).toBe(2);
    ran = 0;
    const trailing = new Uint8Array(two.length + 1);
    trailing.set(two);
    await expect(batch(trailing, 'me:1')).rejects.toMatchObject({ code: 'BAD_REQUEST', message: 'trailing bytes after batch' });
    await expect(batch(two.subarray(0, two.length - 1), 'me:1')).rejects.toThrow();
    await expect(batch(new Writer(8).uint(65_537).finish(), 'me:1')).rejects.toMatchObject({ code: 'BAD_REQUEST', message: 'too many items in batch' });
    expect(ran).toBe(0);
  });

  it('passes non-idempotent sends and other routes straight through', async () => {
    const time = new ManualTime();
    const peer = fakePeer(new Map([['echo', echo]]));
    const t = withBatching(peer.inner, { clock: time, timers: time }, { routes: ['other'] });
    await t.send(PEER, 'echo', enc.encode('a'), opts);
    const t2 = withBatching(peer.inner, { clock: time, timers: time }, { routes: ['echo'] });
    await t2.send(PEER, 'echo', enc.encode('b'), { timeoutMs: 1_000 });
    expect(peer.calls.map((c) => c.route)).toEqual(['echo', 'echo']);
  });

  it('falls back to single sends for a peer that does not know the batch route', async () => {
    const time = new ManualTime();
    const inner: Transport = {
      async send(_to, route, body) {
        if (route === BATCH_ROUTE) {
          const e = new RingkvError('NOT_FOUND', `unknown internal route "${BATCH_ROUTE}"`);
          throw new TransportError('remote', PEER, e.message, { status: 404, body: enc.encode(JSON.stringify(e.toJSON())) });
        }
        return body;
      },
      close: async () => undefined,
    };
    const t = withBatching(inner, { clock: time, timers: time }, { routes: ['echo'] });
    expect(dec.decode(await t.send(PEER, 'echo', enc.encode('old'), opts))).toBe('old');
    expect(dec.decode(await t.send(PEER, 'echo', enc.encode('again'), opts))).toBe('again');
  });

  it('close fails queued sends as aborted', async () => {
    const time = new ManualTime();
    const peer = fakePeer(new Map([['echo', echo]]));
    const t = withBatching(peer.inner, { clock: time, timers: time }, { routes: ['echo'], maxInFlight: 1 });
    peer.holdBatches();
    const inflight = t.send(PEER, 'echo', enc.encode('a'), opts).catch(() => undefined);
    await tick();
    const queued = t.send(PEER, 'echo', enc.encode('b'), opts).catch((e: TransportError) => e.kind);
    await t.close();
    expect(await queued).toBe('aborted');
    peer.release();
    await inflight;
  });
});
