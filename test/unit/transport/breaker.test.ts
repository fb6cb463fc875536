import { describe, expect, it } from 'vitest';
import { ManualTime, type Random, seededRandom } from '../../../src/runtime/index.js';
import {
  BREAKER_DEFAULTS,
  type BreakerInit,
  type BreakerState,
  CircuitOpenError,
  withCircuitBreaker,
} from '../../../src/transport/breaker.js';
import type { PeerAddress, TransportError } from '../../../src/transport/transport.js';
import { controllable, OK } from './controllable.js';

const A = 'a:1';
const B = 'b:1';


const fixed = (x: number): Random => ({ next: () => x, int: () => 0, bytes: (n) => new Uint8Array(n) });

function setup(init: BreakerInit = {}, random: Random = fixed(0.5)) {
  const time = new ManualTime();
  const c = controllable();
  const changes: Array<[PeerAddress, BreakerState, BreakerState]> = [];
  const t = withCircuitBreaker(c.inner, { clock: time, random }, {
    failureThreshold: 3,
    openMs: 1_000,
    ...init,
    onStateChange: (peer, state, previous) => changes.push([peer, state, previous]),
  });
  const send = (to: PeerAddress = A) =>
    t.send(to, 'r', OK, { timeoutMs: 100 }).then(
      () => 'ok' as const,
      (e: unknown) => e as TransportError,
    );
  return { time, ...c, t, changes, send };
}

describe('withCircuitBreaker', () => {
  it('stays closed below the threshold and resets on success', async () => {
    const { outcome, send, t } = setup();
    outcome.set(A, 'unreachable');
    await send();
    await send();
    outcome.set(A, 'ok');
    expect(await send()).toBe('ok');
    outcome.set(A, 'timeout');
    await send();
    await send();
    expect(t.breakerStates().get(A)).toBe('closed');
  });

  it("opens after failureThreshold consecutive 'unreachable'/'timeout' failures and then fails fast", async () => {
    const { outcome, send, t, calls, changes } = setup();
    outcome.set(A, 'unreachable');
    await send();
    outcome.set(A, 'timeout');
    await send();
    await send();
    expect(t.breakerStates().get(A)).toBe('open');
    expect(changes).toEqual([[A, 'open', 'closed']]);

    const before = calls.length;
    const err = await send();
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect((err as TransportError).kind).toBe('unreachable');
    expect((err as TransportError).message).toContain('circuit open');
    expect(calls.length).toBe(before); // nothing reached the wire
  });

  it('does not count remote errors or aborts: the peer answered, or nobody knows', async () => {
    const { outcome, send, t } = setup();
    outcome.set(A, 'unreachable');
    await send();
    await send();
    outcome.set(A, 'remote');
    await send(); // resets the streak
    outcome.set(A, 'unreachable');
    await send();
    await send();
    outcome.set(A, 'aborted');
    await send();
    await send();
    expect(t.breakerStates().get(A)).toBe('closed');
  });

  it('counts an error that is not a TransportError (outcome unknown) as a timeout', async () => {
    const time = new ManualTime();
    const inner = {
      async send(): Promise<Uint8Array> {
        throw new TypeError('a bug below the breaker');
      },
      close: async () => undefined,
    };
    const t = withCircuitBreaker(inner, { clock: time, random: fixed(0.5) }, { failureThreshold: 2, openMs: 1_000 });
    for (let i = 0; i < 2; i++) await expect(t.send(A, 'r', OK, { timeoutMs: 100 })).rejects.toBeInstanceOf(TypeError);
    expect(t.breakerStates().get(A)).toBe('open');
    await expect(t.send(A, 'r', OK, { timeoutMs: 100 })).rejects.toBeInstanceOf(CircuitOpenError);
  });

  it('keeps one breaker per peer', async () => {
    const { outcome, send, t } = setup();
    outcome.set(A, 'unreachable');
    for (let i = 0; i < 3; i++) await send(A);
    expect(await send(B)).toBe('ok');
    expect(t.breakerStates()).toEqual(
      new Map<PeerAddress, BreakerState>([
        [A, 'open'],
        [B, 'closed'],
      ]),
    );
  });

  it('half-opens after openMs and lets exactly one probe through; success closes it', async () => {
    const { time, outcome, send, t, calls, hung, changes } = setup();
    outcome.set(A, 'unreachable');
    for (let i = 0; i < 3; i++) await send();
    await time.advance(999);
    expect(t.breakerStates().get(A)).toBe('open');
    await time.advance(1);
    expect(t.breakerStates().get(A)).toBe('half-open');

    outcome.set(A, 'hang');
    const before = calls.length;
    const probe = send();
    const others = await Promise.all([send(), send()]);
    expect(others.every((e) => e instanceof CircuitOpenError)).toBe(true);
    expect(calls.length).toBe(before + 1);

    hung[0]!('ok');
    expect(await probe).toBe('ok');
    expect(t.breakerStates().get(A)).toBe('closed');
    expect(changes.map(([, s, p]) => `${p}->${s}`)).toEqual(['closed->open', 'open->half-open', 'half-open->closed']);
    outcome.set(A, 'ok');
    expect(await send()).toBe('ok');
  });

  it('re-opens when the probe fails, for another openMs', async () => {
    const { time, outcome, send, t, changes } = setup();
    outcome.set(A, 'timeout');
    for (let i = 0; i < 3; i++) await send();
    await time.advance(1_000);
    expect((await send()) as TransportError).not.toBeInstanceOf(CircuitOpenError); // the probe
    expect(t.breakerStates().get(A)).toBe('open');
    expect(await send()).toBeInstanceOf(CircuitOpenError);
    await time.advance(1_000);
    expect(t.breakerStates().get(A)).toBe('half-open');
    expect(changes.map(([, s]) => s)).toEqual(['open', 'half-open', 'open', 'half-open']);
  });

  it('a remote error from the probe proves the peer reachable and closes the breaker', async () => {
    const { time, outcome, send, t } = setup();
    outcome.set(A, 'unreachable');
    for (let i = 0; i < 3; i++) await send();
    await time.advance(1_000);
    outcome.set(A, 'remote');
    await send();
    expect(t.breakerStates().get(A)).toBe('closed');
  });

  it('an aborted probe frees the slot for the next send', async () => {
    const { time, outcome, send, t, calls } = setup();
    outcome.set(A, 'unreachable');
    for (let i = 0; i < 3; i++) await send();
    await time.advance(1_000);
    outcome.set(A, 'aborted');
    await send();
    expect(t.breakerStates().get(A)).toBe('half-open');
    outcome.set(A, 'ok');
    const before = calls.length;
    expect(await send()).toBe('ok');
    expect(calls.length).toBe(before + 1);
    expect(t.breakerStates().get(A)).toBe('closed');
  });

  it('ignores late results of calls admitted under an earlier state', async () => {
    const { time, outcome, send, t, hung } = setup();
    outcome.set(A, 'hang');
    const slow = send(); // admitted while closed
    outcome.set(A, 'unreachable');
    for (let i = 0; i < 3; i++) await send();
    expect(t.breakerStates().get(A)).toBe('open');
    hung[0]!('ok'); // the slow call succeeds after the breaker opened
    expect(await slow).toBe('ok');
    expect(t.breakerStates().get(A)).toBe('open');
    await time.advance(1_000);
    expect(t.breakerStates().get(A)).toBe('half-open');
  });

  it('jitters openMs within ±openJitter', async () => {
    for (const [r, openFor] of [
      [0, 800],
      [0.999_999, 1_200],
    ] as const) {
      const { time, outcome, send, t } = setup({ openJitter: 0.2 }, fixed(r));
      outcome.set(A, 'unreachable');
      for (let i = 0; i < 3; i++) await send();
      await time.advance(openFor - 1);
      expect(t.breakerStates().get(A), `r=${r}`).toBe('open');
      await time.advance(1);
      expect(t.breakerStates().get(A), `r=${r}`).toBe('half-open');
    }
  });

  it('spreads the reopening of different peers', async () => {
    const time = new ManualTime();
    const c = controllable();
    const halfOpenAt = new Map<PeerAddress, number>();
    const t = withCircuitBreaker(c.inner, { clock: time, random: seededRandom(42) }, {
      failureThreshold: 1,
      openMs: 1_000,
      openJitter: 0.2,
      onStateChange: (peer, state) => {
        if (state === 'half-open') halfOpenAt.set(peer, time.monotonic());
      },
    });
    const peers = Array.from({ length: 8 }, (_, i) => `p${i}:1`);
    const opened = time.monotonic();
    for (const p of peers) {
      c.outcome.set(p, 'unreachable');
      await t.send(p, 'r', OK, { timeoutMs: 1 }).catch(() => 0);
    }
    for (let ms = 0; ms < 1_300; ms += 10) {
      t.breakerStates(); // reading the states lets time move them
      await time.advance(10);
    }
    const waits = peers.map((p) => halfOpenAt.get(p)! - opened);
    for (const w of waits) {
      expect(w).toBeGreaterThanOrEqual(800);
      expect(w).toBeLessThanOrEqual(1_210);
    }
    expect(new Set(waits).size).toBeGreaterThan(1);
  });

  it('uses the exported defaults', async () => {
    const time = new ManualTime();
    const c = controllable();
    const t = withCircuitBreaker(c.inner, { clock: time, random: fixed(0.5) });
    c.outcome.set(A, 'unreachable');
    for (let i = 0; i < BREAKER_DEFAULTS.failureThreshold - 1; i++) await t.send(A, 'r', OK, { timeoutMs: 1 }).catch(() => 0);
    expect(t.breakerStates().get(A)).toBe('closed');
    await t.send(A, 'r', OK, { timeoutMs: 1 }).catch(() => 0);
    expect(t.breakerStates().get(A)).toBe('open');
    await time.advance(BREAKER_DEFAULTS.openMs);
    expect(t.breakerStates().get(A)).toBe('half-open');
  });

  it('survives a throwing onStateChange hook', async () => {
    const time = new ManualTime();
    const c = controllable();
    const t = withCircuitBreaker(c.inner, { clock: time, random: fixed(0.5) }, {
      failureThreshold: 1,
      onStateChange: () => {
        throw new Error('metrics broke');
      },
    });
    c.outcome.set(A, 'unreachable');
    const err = await t.send(A, 'r', OK, { timeoutMs: 1 }).catch((e: unknown) => e);
    expect((err as TransportError).kind).toBe('unreachable');
    expect(t.breakerStates().get(A)).toBe('open');
  });
});
