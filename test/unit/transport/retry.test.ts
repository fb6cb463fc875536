import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualTime, type Random, seededRandom } from '../../../src/runtime/index.js';
import { CircuitOpenError } from '../../../src/transport/breaker.js';
import { RETRY_DEFAULTS, withRetry } from '../../../src/transport/retry.js';
import {
  type PeerAddress,
  type SendOptions,
  type Transport,
  TransportError,
} from '../../../src/transport/transport.js';

const PEER = 'peer:1';
const OK = Uint8Array.from([1]);

interface Attempt {
  at: number;
  timeoutMs: number;
}

/**
 * An inner transport that answers attempt i with `script(i, opts)`; each answer may take
 * manual time. Records when each attempt started and the budget it was given.
 */
function scripted(
  time: ManualTime,
  script: (i: number, opts: SendOptions) => { after?: number; fail?: TransportError },
): Transport & { attempts: Attempt[] } {
  const attempts: Attempt[] = [];
  return {
    attempts,
    async send(_to: PeerAddress, _route: string, _body: Uint8Array, opts: SendOptions) {
      const i = attempts.length;
      attempts.push({ at: time.monotonic(), timeoutMs: opts.timeoutMs });
      const step = script(i, opts);
      if (step.after) await time.sleep(step.after);
      if (step.fail) throw step.fail;
      return OK;
    },
    close: async () => undefined,
  };
}

const unreachable = () => new TransportError('unreachable', PEER, 'refused');
const timeout = () => new TransportError('timeout', PEER, 'timed out');
const remote = (status: number) => new TransportError('remote', PEER, `status ${status}`, { status });

/** Drive manual time until `p` settles (timers fire in order, no real sleeping). */
async function settle<T>(time: ManualTime, p: Promise<T>): Promise<{ value?: T; error?: unknown; at: number }> {
  let done: { value?: T; error?: unknown; at: number } | undefined;
  p.then(
    (value) => {
      done = { value, at: time.monotonic() };
    },
    (error: unknown) => {
      done = { error, at: time.monotonic() };
    },
  );
  for (let guard = 0; !done && guard < 10_000; guard++) {
    const next = time.nextAt();
    await time.advance(next === undefined ? 0 : Math.max(0, next - time.monotonic()));
  }
  if (!done) throw new Error('promise never settled');
  return done;
}

function setup(script: Parameters<typeof scripted>[1], init = {}, random: Random = seededRandom(1)) {
  const time = new ManualTime();
  const inner = scripted(time, script);
  const transport = withRetry(inner, { clock: time, timers: time, random }, init);
  return { time, inner, transport };
}

describe('withRetry', () => {
  it('never retries a send that is not marked idempotent', async () => {
    const { time, inner, transport } = setup(() => ({ fail: unreachable() }));
    const r = await settle(time, transport.send(PEER, 'x', OK, { timeoutMs: 1_000 }));
    expect((r.error as TransportError).kind).toBe('unreachable');
    expect(inner.attempts).toHaveLength(1);
  });

  it("retries 'unreachable' and 'timeout' until one succeeds", async () => {
    const { time, inner, transport } = setup((i) => (i === 0 ? { fail: unreachable() } : i === 1 ? { fail: timeout() } : {}));
    const r = await settle(time, transport.send(PEER, 'x', OK, { timeoutMs: 5_000, idempotent: true }));
    expect(r.value).toBe(OK);
    expect(inner.attempts).toHaveLength(3);
  });

  it("retries 'remote' 503 but not a 4xx or 500", async () => {
    for (const [status, attempts] of [
      [503, 2],
      [400, 1],
      [404, 1],
      [500, 1],
    ] as const) {
      const { time, inner, transport } = setup((i) => (i === 0 ? { fail: remote(status) } : {}));
      const r = await settle(time, transport.send(PEER, 'x', OK, { timeoutMs: 5_000, idempotent: true }));
      expect(inner.attempts, `status ${status}`).toHaveLength(attempts);
      if (attempts === 1) expect((r.error as TransportError).status).toBe(status);
    }
  });

  it("does not retry 'aborted' or an open circuit", async () => {
    for (const fail of [new TransportError('aborted', PEER, 'caller'), new CircuitOpenError(PEER)]) {
      const { time, inner, transport } = setup(() => ({ fail }));
      const r = await settle(time, transport.send(PEER, 'x', OK, { timeoutMs: 5_000, idempotent: true }));
      expect(r.error).toBe(fail);
      expect(inner.attempts).toHaveLength(1);
    }
  });

  it('stops after maxAttempts and throws the last error', async () => {
    const errors: TransportError[] = [];
    const { time, inner, transport } = setup(
      () => {
        const e = unreachable();
        errors.push(e);
        return { fail: e };
      },
      { maxAttempts: 3 },
    );
    const r = await settle(time, transport.send(PEER, 'x', OK, { timeoutMs: 60_000, idempotent: true }));
    expect(inner.attempts).toHaveLength(3);
    expect(r.error).toBe(errors[2]);
  });

  it('uses the exported defaults', async () => {
    const { time, inner, transport } = setup(() => ({ fail: unreachable() }));
    await settle(time, transport.send(PEER, 'x', OK, { timeoutMs: 600_000, idempotent: true }));
    expect(inner.attempts).toHaveLength(RETRY_DEFAULTS.maxAttempts);
  });

  it('backs off with full jitter: each pause lies in [0, min(cap, base * 2^n))', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer(),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 2_000 }),
        async (seed, baseMs, capMs) => {
          const { time, inner, transport } = setup(() => ({ fail: unreachable() }), { baseMs, capMs, maxAttempts: 6 }, seededRandom(seed));
          await settle(time, transport.send(PEER, 'x', OK, { timeoutMs: 1_000_000, idempotent: true }));
          expect(inner.attempts).toHaveLength(6);
          for (let n = 1; n < inner.attempts.length; n++) {
            const pause = inner.attempts[n]!.at - inner.attempts[n - 1]!.at;
            expect(pause).toBeGreaterThanOrEqual(0);
            expect(pause).toBeLessThan(Math.min(capMs, baseMs * 2 ** (n - 1)));
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('spreads pauses: the upper half of the range is reached too', async () => {
    const top = { next: () => 0.999, int: () => 0, bytes: (n: number) => new Uint8Array(n) };
    const { time, inner, transport } = setup(() => ({ fail: unreachable() }), { baseMs: 100, capMs: 250, maxAttempts: 4 }, top);
    await settle(time, transport.send(PEER, 'x', OK, { timeoutMs: 100_000, idempotent: true }));
    const pauses = inner.attempts.slice(1).map((a, n) => a.at - inner.attempts[n]!.at);
    // Manual time starts at an epoch-sized number, so compare to a millisecond's fraction.
    [99.9, 199.8, 249.75].forEach((want, n) => {
      expect(pauses[n]).toBeCloseTo(want, 2);
    });
  });

  it('never runs past the deadline: each attempt gets the time left, no pause outlives it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer(),
        fc.integer({ min: 1, max: 5_000 }),
        fc.array(fc.integer({ min: 0, max: 3_000 }), { minLength: 1, maxLength: 10 }),
        async (seed, timeoutMs, durations) => {
          const { time, inner, transport } = setup(
            (i, opts) => {
              // An attempt fails after its own duration, or times out at its budget.
              const d = durations[i % durations.length]!;
              return d >= opts.timeoutMs ? { after: opts.timeoutMs, fail: timeout() } : { after: d, fail: unreachable() };
            },
            { baseMs: 50, capMs: 1_000, maxAttempts: 10 },
            seededRandom(seed),
          );
          const start = time.monotonic();
          const r = await settle(time, transport.send(PEER, 'x', OK, { timeoutMs, idempotent: true }));
          expect(r.error).toBeInstanceOf(TransportError);
          expect(r.at - start).toBeLessThanOrEqual(timeoutMs);
          for (const a of inner.attempts) {
            expect(a.timeoutMs).toBe(start + timeoutMs - a.at);
            expect(a.timeoutMs).toBeGreaterThan(0);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('caps each attempt at attemptTimeoutMs when given, leaving room to retry a timeout', async () => {
    const { time, inner, transport } = setup(
      (i, opts) => (i < 2 ? { after: opts.timeoutMs, fail: timeout() } : {}),
      { attemptTimeoutMs: 300, baseMs: 10 },
    );
    const r = await settle(time, transport.send(PEER, 'x', OK, { timeoutMs: 1_000, idempotent: true }));
    expect(r.value).toBe(OK);
    expect(inner.attempts.map((a) => a.timeoutMs)).toEqual([300, 300, 300]);
  });

  it("turns a caller abort during the backoff into 'aborted' without another attempt", async () => {
    const { time, inner, transport } = setup(() => ({ fail: unreachable() }), { baseMs: 1_000, capMs: 1_000 }, {
      next: () => 0.5,
      int: () => 0,
      bytes: (n) => new Uint8Array(n),
    });
    const ac = new AbortController();
    const p = transport.send(PEER, 'x', OK, { timeoutMs: 10_000, idempotent: true, signal: ac.signal });
    await time.advance(100); // first attempt failed; now pausing 500 ms
    ac.abort();
    const r = await settle(time, p);
    expect((r.error as TransportError).kind).toBe('aborted');
    expect(inner.attempts).toHaveLength(1);
    expect(time.pending()).toBe(0);
  });

  it('passes close through', async () => {
    let closed = 0;
    const inner: Transport = { send: async () => OK, close: async () => void closed++ };
    const time = new ManualTime();
    await withRetry(inner, { clock: time, timers: time, random: seededRandom(1) }).close();
    expect(closed).toBe(1);
  });
});
