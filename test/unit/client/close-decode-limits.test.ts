/**
 * Each test pins a behaviour docs/client.md promises and that the SDK once got wrong: close()
 * with calls still running, 300 decoding, update's argument checks, jsonSetUnion on numbers a
 * double cannot hold, and durations too long for a timer.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  Client,
  ClientClosedError,
  type ClientOptions,
  canonicalJson,
  InvalidArgumentError,
  ProtocolError,
  resolvers,
  type Sibling,
} from '../../../src/client/index.js';
import { ManualTime, seededRandom } from '../../../src/runtime/index.js';
import { caught, errorBody, FakeV1, startBlackHole } from './fake-v1.js';

const enc = new TextEncoder();

let fake: FakeV1;
const clients: Client[] = [];
const cleanups: (() => Promise<void>)[] = [];

function client(opts: Partial<ClientOptions> = {}): Client {
  const c = new Client({ nodes: [fake.url], random: seededRandom(7), backoff: { baseMs: 1, maxMs: 5 }, ...opts });
  clients.push(c);
  return c;
}

/** Resolves with `value` after `ms` real milliseconds (a bound on how long a test waits). */
function resolveAfter<T>(ms: number, value: T): Promise<T> {
  return new Promise((r) => setTimeout(() => r(value), ms));
}

beforeEach(async () => {
  fake = await FakeV1.start();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(cleanups.splice(0).map((f) => f()));
  await fake.close();
});

describe('close() and calls still running', () => {
  it('sends nothing more once close() has returned, even for a call waiting out a backoff', async () => {
    // Every PUT fails with a quorum failure; a write with a context retries those after a
    // backoff. The client is closed while the call sleeps before its first retry.
    fake.intercept = (_hit, reply) => {
      void reply.code(503).type('application/json').send(errorBody('QUORUM_FAILED', 'quorum not met', { answered: 1, needed: 2 }));
      return true;
    };
    const kv = client({ retries: 3, backoff: { baseMs: 300, maxMs: 300 }, random: { ...seededRandom(1), next: () => 0.99 } });
    const call = caught(kv.put('k', 'v', { context: 'c1.W10' }));
    await vi.waitFor(() => expect(fake.hitsFor('PUT')).toHaveLength(1));
    await kv.close();
    const err = await call;
    // Whatever the call reports, no request may leave a closed client.
    expect(fake.hitsFor('PUT')).toHaveLength(1);
    expect(err).toBeInstanceOf(ClientClosedError);
  });

  it('does not wait for a discovery refresh stuck on a hung node before it closes', async () => {
    // Manual timers: the attempt timeout never fires on its own, so close() must end the
    // refresh itself instead of waiting for it.
    const hole = await startBlackHole();
    cleanups.push(hole.close);
    const time = new ManualTime();
    const kv = client({ nodes: [hole.url], discover: true, clock: time, timers: time });
    await vi.waitFor(() => expect(hole.connections()).toBe(1));
    const closing = kv.close().then(() => 'closed');
    const outcome = await Promise.race([closing, resolveAfter(2_000, 'still waiting')]);
    // Let the stuck refresh end either way, so the test leaves nothing running.
    await time.advance(60_000);
    await closing;
    expect(outcome).toBe('closed');
  });

  it('does not wait for a call still running on a node that discovery dropped', async () => {
    // The client starts on the hung node (random start index 1), where a get hangs. A refresh
    // through the other node then drops the hung one, and its pool is retired while the get
    // is still in flight on it.
    const hole = await startBlackHole();
    cleanups.push(hole.close);
    fake.cluster = { members: [{ id: 'a', address: fake.url.replace('http://', ''), status: 'up' }] };
    const time = new ManualTime();
    const startAtOne = { ...seededRandom(1), int: (n: number) => Math.min(1, n - 1) };
    const kv = client({ nodes: [fake.url, hole.url], clock: time, timers: time, random: startAtOne, breaker: false });
    const stuck = caught(kv.get('k'));
    await vi.waitFor(() => expect(hole.connections()).toBe(1));
    expect(await kv.refreshNodes()).toEqual([fake.url]);
    const closing = kv.close().then(() => 'closed');
    const outcome = await Promise.race([closing, resolveAfter(2_000, 'still waiting')]);
    await time.advance(60_000);
    await closing;
    await stuck;
    expect(outcome).toBe('closed');
  });
});

describe('decoding a 300', () => {
  it('refuses a sibling whose value is not base64 instead of returning made-up bytes', async () => {
    fake.intercept = (_hit, reply) => {
      void reply
        .code(300)
        .type('application/json')
        .header('x-ringkv-context', 'c1.W10')
        .send(
          JSON.stringify({
            context: 'c1.W10',
            siblings: [
              { value: Buffer.from('fine').toString('base64'), contentType: 'text/plain', lastModified: '2024-01-01T00:00:00.000Z' },
              { value: 'this is not base64!', contentType: 'text/plain', lastModified: '2024-01-01T00:00:00.000Z' },
            ],
          }),
        );
      return true;
    };
    const err = await caught(client().get('k'));
    expect(err).toBeInstanceOf(ProtocolError);
  });
});

describe('update() argument checks', () => {
  it.each<[string, object]>([
    ['w', { w: 0 }],
    ['retryUnsafe', { retryUnsafe: 'yes' }],
  ])('rejects a bad %s with InvalidArgumentError before any request', async (_name, opts) => {
    fake.seed('k', 'v');
    let mutated = false;
    const err = await caught(
      client().update(
        'k',
        () => {
          mutated = true;
          return 'next';
        },
        opts,
      ),
    );
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(fake.hits).toHaveLength(0);
    expect(mutated).toBe(false);
  });
});

describe('jsonSetUnion and numbers', () => {
  const sib = (text: string): Sibling => ({ value: enc.encode(text), contentType: 'application/json', lastModified: new Date(0) });

  it('keeps two distinct integers beyond 2^53 as two elements, digits intact', () => {
    // 64-bit ids written as JSON numbers: distinct in the data, equal as JS doubles.
    const out = resolvers.jsonSetUnion([sib('[9007199254740993]'), sib('[9007199254740992]')]);
    expect(out).toBe('[9007199254740992,9007199254740993]');
    // Still a set: the same big number written two ways is one element, and a second pass
    // changes nothing.
    expect(resolvers.jsonSetUnion([sib(out), sib('[9.007199254740993e15, 90071992547409930e-1]')])).toBe(out);
  });

  it('keeps a number no double can hold instead of turning it into null or 0', () => {
    expect(resolvers.jsonSetUnion([sib('[1e400, 1e-400, 0]')])).toBe('[0,1e-400,1e400]');
  });

  it('writes every number a double holds exactly as before, with keys sorted (property)', () => {
    // The canonical text of values that JSON.parse keeps exactly is what canonicalJson gives.
    fc.assert(
      fc.property(fc.array(fc.jsonValue()), fc.constantFrom(undefined, 2), (values, indent) => {
        const previous = [...new Set(values.map((v) => canonicalJson(v)))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        expect(resolvers.jsonSetUnion([sib(JSON.stringify(values, null, indent))])).toBe(`[${previous.join(',')}]`);
      }),
    );
  });
});

describe('durations longer than a Node.js timer can hold (2^31 - 1 ms, ~24.8 days)', () => {
  const long = 2 ** 32;

  it('does not cut an attempt short when its budget is longer', async () => {
    // Node fires an overlong setTimeout after 1 ms; the blind write below would then be
    // reported as timed out (outcome unknown) although the node answers in 20 ms.
    fake.delay = () => 20;
    const res = await client({ attemptTimeoutMs: long, timeoutMs: long }).put('k', 'v');
    expect(res.context).toMatch(/^c1\./);
    expect(fake.hitsFor('PUT')).toHaveLength(1);
  });

  it('does not refresh discovery in a loop when the interval is longer', async () => {
    fake.cluster = { members: [{ id: 'a', address: fake.url.replace('http://', ''), status: 'up' }] };
    const reads = (): number => fake.hits.filter((h) => h.url === '/v1/cluster').length;
    client({ discover: true, discoverIntervalMs: long });
    await vi.waitFor(() => expect(reads()).toBe(1));
    // A window in which a correct client makes no second refresh (the next is weeks away).
    await resolveAfter(300, undefined);
    expect(reads()).toBe(1);
  });
});
