import { describe, expect, it } from 'vitest';
import { ManualTime, seededRandom } from '../../../src/runtime/index.js';
import { CircuitOpenError } from '../../../src/transport/breaker.js';
import { resilientTransport } from '../../../src/transport/resilient.js';
import { type Transport, TransportError } from '../../../src/transport/transport.js';
import { controllable, OK } from './controllable.js';

const A = 'a:1';


describe('resilientTransport: retry(breaker(inner))', () => {
  it('stops retrying as soon as the breaker opens, and exposes the breaker states', async () => {
    const time = new ManualTime();
    const c = controllable();
    c.outcome.set(A, 'unreachable');
    const { transport, breakerStates } = resilientTransport(
      c.inner,
      { clock: time, timers: time, random: seededRandom(3) },
      { retry: { maxAttempts: 10, baseMs: 10 }, breaker: { failureThreshold: 3, openMs: 5_000 } },
    );
    let result: unknown;
    const p = transport.send(A, 'r', OK, { timeoutMs: 60_000, idempotent: true }).catch((e: unknown) => {
      result = e;
    });
    for (let i = 0; i < 100 && result === undefined; i++) await time.advance(10);
    await p;
    expect(result).toBeInstanceOf(CircuitOpenError);
    // Three real attempts opened the breaker; the fourth failed fast and ended the loop.
    expect(c.calls).toHaveLength(3);
    expect(breakerStates().get(A)).toBe('open');
    expect(time.pending()).toBe(0);
  });

  it('retries through the breaker while the peer recovers', async () => {
    const time = new ManualTime();
    const c = controllable();
    let n = 0;
    const flaky: Transport = {
      send: (to, route, body, opts) => (n++ < 2 ? Promise.reject(new TransportError('unreachable', to, 'x')) : c.inner.send(to, route, body, opts)),
      close: async () => undefined,
    };
    const { transport, breakerStates } = resilientTransport(flaky, { clock: time, timers: time, random: seededRandom(3) });
    let result: unknown;
    const p = transport.send(A, 'r', OK, { timeoutMs: 60_000, idempotent: true }).then((v) => {
      result = v;
    });
    for (let i = 0; i < 1_000 && result === undefined; i++) await time.advance(10);
    await p;
    expect(result).toBe(OK);
    expect(breakerStates().get(A)).toBe('closed');
  });
});
