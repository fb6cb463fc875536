import { describe, expect, it } from 'vitest';
import { RingkvError } from '../../../src/errors.js';
import { ManualTime } from '../../../src/runtime/index.js';
import { MemoryNetwork } from '../../../src/transport/memory.js';
import type { InternalHandler, Transport, TransportError } from '../../../src/transport/transport.js';

const body = Uint8Array.from([1, 2, 3]);

function setup() {
  const time = new ManualTime();
  const net = new MemoryNetwork(time);
  let release: (() => void) | undefined;
  let handled = 0;
  const handlers = new Map<string, InternalHandler>([
    ['echo', async (b) => {
      handled++;
      return b;
    }],
    ['hang', () => new Promise<Uint8Array>((r) => {
      release = () => r(new Uint8Array(0));
    })],
    ['sync-throw', (() => {
      throw new Error('not even async');
    }) as unknown as InternalHandler],
    ['quorum', async () => {
      throw new RingkvError('QUORUM_FAILED', 'no', { answered: 0, needed: 2 });
    }],
  ]);
  for (const a of ['a', 'b', 'c']) net.register(a, handlers);
  return { time, net, handled: () => handled, release: () => release?.() };
}

/** Start a send and report its outcome and the manual time it settled at. */
function track(time: ManualTime, p: Promise<Uint8Array>) {
  const out: { value?: Uint8Array; error?: TransportError; at?: number } = {};
  p.then(
    (v) => {
      out.value = v;
      out.at = time.monotonic();
    },
    (e: unknown) => {
      out.error = e as TransportError;
      out.at = time.monotonic();
    },
  );
  return out;
}

const send = (t: Transport, to: string, route: string, opts: { timeoutMs: number; signal?: AbortSignal }) =>
  t.send(to, route, body, opts);

describe('MemoryNetwork', () => {
  it('delivers on the next turn of manual time', async () => {
    const { time, net } = setup();
    const r = track(time, send(net.transport('a'), 'b', 'echo', { timeoutMs: 100 }));
    await time.advance(0);
    expect(Array.from(r.value!)).toEqual([1, 2, 3]);
    expect(net.delivered).toBe(1);
    expect(time.pending()).toBe(0);
  });

  it('a cut link times out at exactly the deadline, and leaves no timer behind', async () => {
    const { time, net } = setup();
    const start = time.monotonic();
    net.cut('a', 'b');
    const r = track(time, send(net.transport('a'), 'b', 'echo', { timeoutMs: 250 }));
    await time.advance(249);
    expect(r.at).toBeUndefined();
    await time.advance(1);
    expect(r.error?.kind).toBe('timeout');
    expect(r.at! - start).toBe(250);
    expect(net.delivered).toBe(0);
    expect(time.pending()).toBe(0);
  });

  it('a handler that never answers times out at the deadline too', async () => {
    const { time, net } = setup();
    const r = track(time, send(net.transport('a'), 'b', 'hang', { timeoutMs: 300 }));
    await time.advance(300);
    expect(r.error?.kind).toBe('timeout');
    expect(time.pending()).toBe(0);
  });

  it('a reply lost on a link cut one way is noticed only at the deadline, after the handler ran', async () => {
    const { time, net, handled } = setup();
    net.cut('b', 'a', true);
    const r = track(time, send(net.transport('a'), 'b', 'echo', { timeoutMs: 500 }));
    await time.advance(0);
    expect(handled()).toBe(1);
    expect(r.at).toBeUndefined();
    await time.advance(500);
    expect(r.error?.kind).toBe('timeout');
  });

  it("ends a send with 'aborted' when the caller aborts", async () => {
    const { time, net } = setup();
    net.isolate('b');
    const ac = new AbortController();
    const r = track(time, send(net.transport('a'), 'b', 'echo', { timeoutMs: 10_000, signal: ac.signal }));
    await time.advance(10);
    ac.abort();
    await time.advance(0);
    expect(r.error?.kind).toBe('aborted');
    expect(time.pending()).toBe(0);
  });

  it("close() ends in-flight sends with 'aborted' and clears their timers", async () => {
    const { time, net } = setup();
    const t = net.transport('a');
    net.cut('a', 'c');
    const r1 = track(time, send(t, 'b', 'hang', { timeoutMs: 10_000 }));
    const r2 = track(time, send(t, 'c', 'echo', { timeoutMs: 10_000 }));
    await time.advance(1);
    await t.close();
    await time.advance(0);
    expect(r1.error?.kind).toBe('aborted');
    expect(r2.error?.kind).toBe('aborted');
    expect(time.pending()).toBe(0);
    const late = track(time, send(t, 'b', 'echo', { timeoutMs: 10 }));
    await time.advance(0);
    expect(late.error?.kind).toBe('unreachable');
  });

  it('maps handler errors like the HTTP plugin: RingkvError keeps its status, anything else is 500', async () => {
    const { time, net } = setup();
    const t = net.transport('a');
    const q = track(time, send(t, 'b', 'quorum', { timeoutMs: 100 }));
    const s = track(time, send(t, 'b', 'sync-throw', { timeoutMs: 100 }));
    const u = track(time, send(t, 'b', 'nope', { timeoutMs: 100 }));
    await time.advance(0);
    expect(q.error?.status).toBe(503);
    expect(JSON.parse(new TextDecoder().decode(q.error?.body))).toEqual({
      error: { code: 'QUORUM_FAILED', message: 'no', answered: 0, needed: 2 },
    });
    expect(s.error?.kind).toBe('remote');
    expect(s.error?.status).toBe(500);
    expect(JSON.parse(new TextDecoder().decode(s.error?.body))).toEqual({
      error: { code: 'INTERNAL', message: 'internal error' },
    });
    expect(u.error?.status).toBe(404);
  });

  it("an unregistered address is 'unreachable' at once", async () => {
    const { time, net } = setup();
    const r = track(time, send(net.transport('a'), 'zzz', 'echo', { timeoutMs: 1_000 }));
    await time.advance(0);
    expect(r.error?.kind).toBe('unreachable');
  });

  it('partitions, then heals', async () => {
    const { time, net } = setup();
    net.partition([['a'], ['b', 'c']]);
    expect(net.reachable('a', 'b')).toBe(false);
    expect(net.reachable('b', 'c')).toBe(true);
    net.heal();
    const r = track(time, send(net.transport('a'), 'b', 'echo', { timeoutMs: 100 }));
    await time.advance(0);
    expect(r.value).toBeDefined();
  });
});
