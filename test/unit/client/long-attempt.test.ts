/**
 * An attempt budget longer than undici's default header timeout (300 s) is honoured: the
 * SDK's own attempt timer is the only one. A file of its own because it fakes the global
 * timers before undici first uses them (undici keeps one timer wheel per process).
 */
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { Client, TimeoutError, UnavailableError } from '../../../src/client/index.js';
import { startBlackHole } from './fake-v1.js';

beforeAll(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
});

afterAll(() => {
  vi.useRealTimers();
});

it('waits out a 10-minute attempt on a node that is slow to answer, instead of failing at 5 minutes', async () => {
  const hole = await startBlackHole();
  const kv = new Client({ nodes: [hole.url], attemptTimeoutMs: 600_000, timeoutMs: 3_600_000, retries: 0 });
  let outcome: unknown = 'pending';
  const call = kv.get('k').then(
    (v) => {
      outcome = v;
    },
    (err: unknown) => {
      outcome = err;
    },
  );
  await vi.waitFor(() => expect(hole.connections()).toBe(1));
  // Past undici's default 300 s header timeout: the attempt still has 290 s to go.
  await vi.advanceTimersByTimeAsync(310_000);
  expect(outcome).toBe('pending');
  await vi.advanceTimersByTimeAsync(300_000);
  await call;
  // Its one attempt timed out (the call's own deadline is an hour away).
  expect(outcome).toBeInstanceOf(UnavailableError);
  expect((outcome as UnavailableError).causes.map((c) => c.error)).toEqual([expect.any(TimeoutError)]);
  vi.useRealTimers();
  await kv.close();
  await hole.close();
});
