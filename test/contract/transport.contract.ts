import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RingkvError } from '../../src/errors.js';
import {
  type InternalHandler,
  type InternalHandlers,
  type PeerAddress,
  type Transport,
  TransportError,
} from '../../src/transport/transport.js';

/**
 * What an implementation gives the suite: a transport, a peer serving the suite's handlers,
 * and an address where nothing listens. Built fresh for each test.
 */
export interface TransportHarness {
  readonly transport: Transport;
  /** Serves the handlers passed to `make`. */
  readonly peer: PeerAddress;
  /** Nothing listens here. */
  readonly deadPeer: PeerAddress;
  /** The `from` the peer's handlers see for this transport's sends. */
  readonly from: PeerAddress | undefined;
  /** Optional: make requests from `transport` to the returned peer vanish (memory: cut link). */
  silence?(): PeerAddress;
  /** Optional: how many connections the peer's server currently has open. */
  openConnections?(): Promise<number>;
  /** Close everything the harness opened (the transport included; close is idempotent). */
  cleanup(): Promise<void>;
}

export type MakeHarness = (handlers: InternalHandlers) => Promise<TransportHarness>;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Expect `p` to reject with a TransportError and return it. */
async function failure(p: Promise<unknown>): Promise<TransportError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TransportError);
  return err as TransportError;
}

/** The shared suite every Transport implementation must pass. Uses real time. */
export function transportContract(name: string, make: MakeHarness): void {
  describe(`Transport contract: ${name}`, () => {
    let h: TransportHarness;
    /** Handlers of route 'hang' wait on this; released in cleanup so servers can close. */
    let release: () => void;
    let hung: Promise<void>;

    beforeEach(async () => {
      hung = new Promise<void>((resolve) => {
        release = resolve;
      });
      const handlers: InternalHandlers = new Map<string, InternalHandler>([
        ['echo', async (body: Uint8Array) => body],
        ['from', async (_body: Uint8Array, from: PeerAddress | undefined) => enc.encode(from ?? '<none>')],
        ['busy', async () => {
          throw new RingkvError('UNAVAILABLE', 'too busy', { retryAfterMs: 5 });
        }],
        ['bad', async () => {
          throw new RingkvError('BAD_REQUEST', 'malformed message');
        }],
        ['boom', async () => {
          throw new Error('a bug with a secret detail');
        }],
        ['hang', async () => {
          await hung;
          return new Uint8Array(0);
        }],
      ]);
      h = await make(handlers);
    });

    afterEach(async () => {
      release();
      await h.cleanup();
    });

    describe('round trips', () => {
      it('returns the reply bytes', async () => {
        const body = Uint8Array.from([0, 1, 2, 250, 255, 0, 10, 13]);
        const reply = await h.transport.send(h.peer, 'echo', body, { timeoutMs: 5_000 });
        expect(Array.from(reply)).toEqual(Array.from(body));
      });

      it('round-trips an empty body', async () => {
        const reply = await h.transport.send(h.peer, 'echo', new Uint8Array(0), { timeoutMs: 5_000 });
        expect(reply).toBeInstanceOf(Uint8Array);
        expect(reply.byteLength).toBe(0);
      });

      it('round-trips a 5 MiB body intact', async () => {
        const body = new Uint8Array(5 * 1024 * 1024);
        for (let i = 0; i < body.length; i++) body[i] = (i * 31 + (i >>> 11)) & 0xff;
        const reply = await h.transport.send(h.peer, 'echo', body, { timeoutMs: 20_000 });
        expect(reply.byteLength).toBe(body.byteLength);
        expect(Buffer.compare(Buffer.from(reply), Buffer.from(body))).toBe(0);
      });

      it('does not share the buffer with the receiver', async () => {
        const body = enc.encode('original');
        const reply = await h.transport.send(h.peer, 'echo', body, { timeoutMs: 5_000 });
        reply[0] = 0;
        expect(dec.decode(body)).toBe('original');
      });

      it('tells the handler who is calling', async () => {
        const reply = await h.transport.send(h.peer, 'from', new Uint8Array(0), { timeoutMs: 5_000 });
        expect(dec.decode(reply)).toBe(h.from ?? '<none>');
      });

      it('keeps concurrent sends apart', async () => {
        const sends = Array.from({ length: 64 }, (_, i) =>
          h.transport.send(h.peer, 'echo', enc.encode(`message ${i}`), { timeoutMs: 10_000 }),
        );
        const replies = await Promise.all(sends);
        expect(replies.map((r) => dec.decode(r))).toEqual(sends.map((_, i) => `message ${i}`));
      });
    });

    describe('errors', () => {
      it("surfaces a handler's RingkvError as kind 'remote' with its status and JSON body", async () => {
        const err = await failure(h.transport.send(h.peer, 'busy', new Uint8Array(0), { timeoutMs: 5_000 }));
        expect(err.kind).toBe('remote');
        expect(err.peer).toBe(h.peer);
        expect(err.status).toBe(503);
        expect(JSON.parse(dec.decode(err.body))).toEqual({
          error: { code: 'UNAVAILABLE', message: 'too busy', retryAfterMs: 5 },
        });

        const bad = await failure(h.transport.send(h.peer, 'bad', new Uint8Array(0), { timeoutMs: 5_000 }));
        expect(bad.kind).toBe('remote');
        expect(bad.status).toBe(400);
      });

      it('answers any other throw with 500 INTERNAL and no detail', async () => {
        const err = await failure(h.transport.send(h.peer, 'boom', new Uint8Array(0), { timeoutMs: 5_000 }));
        expect(err.kind).toBe('remote');
        expect(err.status).toBe(500);
        const json = JSON.parse(dec.decode(err.body)) as { error: { code: string; message: string } };
        expect(json.error.code).toBe('INTERNAL');
        expect(json.error.message).not.toContain('secret detail');
      });

      it('answers an unknown route with remote 404', async () => {
        const err = await failure(h.transport.send(h.peer, 'no-such-route', new Uint8Array(0), { timeoutMs: 5_000 }));
        expect(err.kind).toBe('remote');
        expect(err.status).toBe(404);
      });

      it("times out within the deadline when the handler never answers", async () => {
        const started = performance.now();
        const err = await failure(h.transport.send(h.peer, 'hang', new Uint8Array(0), { timeoutMs: 150 }));
        const elapsed = performance.now() - started;
        expect(err.kind).toBe('timeout');
        expect(elapsed).toBeGreaterThanOrEqual(140);
        // Generous: this checks that the deadline holds, not how fast the machine is.
        expect(elapsed).toBeLessThan(150 + 2_000);
      });

      it('times out within the deadline when requests vanish', async (ctx) => {
        if (!h.silence) return ctx.skip();
        const silent = h.silence();
        const started = performance.now();
        const err = await failure(h.transport.send(silent, 'echo', new Uint8Array(1), { timeoutMs: 150 }));
        expect(err.kind).toBe('timeout');
        expect(performance.now() - started).toBeLessThan(150 + 2_000);
      });

      it("reports a peer where nothing listens as 'unreachable' (or 'timeout')", async () => {
        const err = await failure(h.transport.send(h.deadPeer, 'echo', new Uint8Array(1), { timeoutMs: 2_000 }));
        expect(['unreachable', 'timeout']).toContain(err.kind);
        expect(err.peer).toBe(h.deadPeer);
      });

      it("ends a send the caller aborts with kind 'aborted', promptly", async () => {
        const ac = new AbortController();
        const pending = h.transport.send(h.peer, 'hang', new Uint8Array(0), { timeoutMs: 30_000, signal: ac.signal });
        setTimeout(() => ac.abort(), 20);
        const started = performance.now();
        const err = await failure(pending);
        expect(err.kind).toBe('aborted');
        expect(performance.now() - started).toBeLessThan(2_000);
      });

      it("rejects a send whose signal is already aborted with 'aborted'", async () => {
        const err = await failure(
          h.transport.send(h.peer, 'echo', new Uint8Array(0), { timeoutMs: 5_000, signal: AbortSignal.abort() }),
        );
        expect(err.kind).toBe('aborted');
      });

      it('rejects a send with no time left without calling the peer', async () => {
        const err = await failure(h.transport.send(h.peer, 'echo', new Uint8Array(0), { timeoutMs: 0 }));
        expect(err.kind).toBe('timeout');
      });
    });

    describe('close', () => {
      it('is idempotent, and later sends fail without touching the network', async () => {
        await h.transport.send(h.peer, 'echo', new Uint8Array(1), { timeoutMs: 5_000 });
        await Promise.all([h.transport.close(), h.transport.close()]);
        await h.transport.close();
        const err = await failure(h.transport.send(h.peer, 'echo', new Uint8Array(1), { timeoutMs: 5_000 }));
        expect(err.kind).toBe('unreachable');
      });

      it("ends in-flight sends with 'aborted' instead of leaving them hanging", async () => {
        const pending = failure(h.transport.send(h.peer, 'hang', new Uint8Array(0), { timeoutMs: 30_000 }));
        // Let the request get on its way.
        await new Promise((r) => setTimeout(r, 50));
        const started = performance.now();
        await h.transport.close();
        const err = await pending;
        expect(err.kind).toBe('aborted');
        expect(performance.now() - started).toBeLessThan(2_000);
      });

      it('leaves no connection open', async (ctx) => {
        const count = h.openConnections;
        if (!count) return ctx.skip();
        await Promise.all(
          Array.from({ length: 4 }, () => h.transport.send(h.peer, 'echo', new Uint8Array(1), { timeoutMs: 5_000 })),
        );
        // Keep-alive: the connections outlive the calls...
        expect(await count()).toBeGreaterThan(0);
        await h.transport.close();
        // ...until close() destroys the pool, and the server sees every one of them go.
        const deadline = performance.now() + 2_000;
        while ((await count()) > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        expect(await count()).toBe(0);
      });
    });
  });
}
