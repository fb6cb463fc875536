import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  AbortError,
  CircuitOpenError,
  Client,
  ClientClosedError,
  type ClientOptions,
  ConnectionError,
  InvalidArgumentError,
  QuorumError,
  RequestError,
  ServerError,
  TimeoutError,
  UnavailableError,
} from '../../../src/client/index.js';
import { ManualTime, seededRandom, systemClock, systemTimers, type Timers } from '../../../src/runtime/index.js';
import { caught, deadUrl, errorBody, FakeV1, startBlackHole } from './fake-v1.js';

const dec = new TextDecoder();
const enc = new TextEncoder();

let fake: FakeV1;
const clients: Client[] = [];
const cleanups: (() => Promise<void>)[] = [];

function client(opts: Partial<ClientOptions> = {}): Client {
  const c = new Client({ nodes: [fake.url], random: seededRandom(42), backoff: { baseMs: 1, maxMs: 5 }, ...opts });
  clients.push(c);
  return c;
}

/** Answers the first `times` matching requests with a 503 quorum failure. */
function quorumFailures(times: number, method?: string): void {
  let left = times;
  fake.intercept = (hit, reply) => {
    if (left <= 0 || (method && hit.method !== method)) return false;
    left--;
    void reply
      .code(503)
      .type('application/json')
      .send(errorBody('QUORUM_FAILED', 'write quorum not met: 1 of 2', { answered: 1, needed: 2 }));
    return true;
  };
}

beforeEach(async () => {
  fake = await FakeV1.start();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(cleanups.splice(0).map((f) => f()));
  await fake.close();
});

describe('get', () => {
  it('returns one sibling from a 200 with its content type, Last-Modified and context', async () => {
    const lm = Date.UTC(2024, 0, 2, 3, 4, 5);
    fake.seed('k', 'hello', 'text/plain; charset=utf-8', lm);
    const got = await client().get('k');
    expect(got.found).toBe(true);
    expect(got.siblings).toHaveLength(1);
    const [s] = got.siblings;
    expect(dec.decode(s!.value)).toBe('hello');
    expect(s!.contentType).toBe('text/plain; charset=utf-8');
    expect(s!.lastModified.getTime()).toBe(lm);
    expect(got.context).toMatch(/^c1\./);
  });

  it('stamps a 200 without Last-Modified with the response time', async () => {
    fake.intercept = (_hit, reply) => {
      void reply.code(200).header('content-type', 'application/octet-stream').header('x-ringkv-context', 'ctx1').send(Buffer.from([1, 2]));
      return true;
    };
    const got = await client({ clock: { now: () => 1_234_567, monotonic: systemClock.monotonic } }).get('k');
    expect(got.siblings[0]!.lastModified.getTime()).toBe(1_234_567);
    expect([...got.siblings[0]!.value]).toEqual([1, 2]);
    expect(got.context).toBe('ctx1');
  });

  it('decodes a 300 into siblings (base64 values, content types, dates) and the context', async () => {
    fake.seed('k', 'one', 'text/plain', Date.UTC(2024, 0, 1));
    fake.seed('k', Buffer.from([0, 255, 10]), 'application/octet-stream', Date.UTC(2024, 0, 2, 0, 0, 0, 123));
    const got = await client().get('k');
    expect(got.found).toBe(true);
    expect(got.siblings.map((s) => [...s.value])).toEqual([[...enc.encode('one')], [0, 255, 10]]);
    expect(got.siblings.map((s) => s.contentType)).toEqual(['text/plain', 'application/octet-stream']);
    expect(got.siblings[1]!.lastModified.toISOString()).toBe('2024-01-02T00:00:00.123Z');
    expect(got.siblings[0]!.value).toBeInstanceOf(Uint8Array);
    expect(got.context).toMatch(/^c1\./);
  });

  it('reports a missing key as found:false, with the tombstone context after a delete', async () => {
    const kv = client();
    expect(await kv.get('nope')).toEqual({ found: false, siblings: [] });
    const { context } = await kv.put('k', 'v');
    await kv.delete('k', { context });
    const got = await kv.get('k');
    expect(got.found).toBe(false);
    expect(got.siblings).toEqual([]);
    expect(got.context).toMatch(/^c1\./);
  });

  it('percent-encodes the key in the path', async () => {
    const key = 'a/b c?d#e%f&g=h+€🙂';
    fake.seed(key, 'x');
    const got = await client().get(key);
    expect(got.found).toBe(true);
    const hit = fake.hitsFor('GET')[0]!;
    expect(hit.key).toBe(key);
    expect(hit.url.startsWith(`/v1/kv/${encodeURIComponent(key)}`)).toBe(true);
  });

  it('sends r and a server timeout shorter than the attempt budget', async () => {
    await client({ attemptTimeoutMs: 1000 }).get('k', { r: 'all' });
    await client().get('k', { r: 3, timeoutMs: 500 });
    const [a, b] = fake.hitsFor('GET');
    expect(a!.query.get('r')).toBe('all');
    expect(Number(a!.query.get('timeout'))).toBe(800);
    expect(b!.query.get('r')).toBe('3');
    expect(Number(b!.query.get('timeout'))).toBeLessThanOrEqual(400);
  });

  it('retries a 503 and answers from the retry', async () => {
    fake.seed('k', 'v');
    quorumFailures(2);
    const got = await client({ retries: 2 }).get('k');
    expect(got.found).toBe(true);
    expect(fake.hitsFor('GET')).toHaveLength(3);
  });

  it('waits a jittered, exponentially growing backoff before each retry', async () => {
    fake.seed('k', 'v');
    quorumFailures(4);
    // When each attempt reached the server: the next one must come a whole backoff later.
    const failing = fake.intercept;
    const arrived: number[] = [];
    fake.intercept = (hit, reply) => {
      arrived.push(performance.now());
      return failing?.(hit, reply) ?? false;
    };
    // Real timers, with every sleep recorded, and a "random" source that always draws the
    // middle of its range, so each wait is half of its ceiling.
    const slept: number[] = [];
    const timers: Timers = {
      setTimeout: (fn, ms) => systemTimers.setTimeout(fn, ms),
      sleep: (ms, signal) => {
        slept.push(ms);
        return systemTimers.sleep(ms, signal);
      },
    };
    const middle = { next: () => 0.5, int: (n: number) => Math.floor(n / 2), bytes: (n: number) => new Uint8Array(n).fill(0x80) };
    const got = await client({ retries: 4, timers, random: middle, backoff: { baseMs: 40, maxMs: 200 } }).get('k');
    expect(got.found).toBe(true);
    expect(fake.hitsFor('GET')).toHaveLength(5);
    // Ceilings 40, 80, 160, then the 200 ms cap.
    expect(slept).toEqual([20, 40, 80, 100]);
    // And the client waited them out: a lower bound on each gap (2 ms for timer rounding).
    expect(arrived).toHaveLength(5);
    for (let i = 0; i < 4; i++) expect((arrived[i + 1] as number) - (arrived[i] as number)).toBeGreaterThanOrEqual((slept[i] as number) - 2);
  });

  it('throws a QuorumError with the counts from the error body once retries run out', async () => {
    quorumFailures(10);
    const err = await caught(client({ retries: 1 }).get('k'));
    expect(err).toBeInstanceOf(QuorumError);
    expect(err).toMatchObject({ code: 'QUORUM_FAILED', answered: 1, needed: 2, node: fake.url });
    expect(fake.hitsFor('GET')).toHaveLength(2);
  });

  it('fails over past a 500 and records it as a ServerError cause', async () => {
    const other = await FakeV1.start();
    cleanups.push(() => other.close());
    fake.intercept = (_hit, reply) => {
      void reply.code(500).type('application/json').send(errorBody('INTERNAL', 'boom'));
      return true;
    };
    other.intercept = fake.intercept;
    const err = await caught(client({ nodes: [fake.url, other.url], retries: 3 }).get('k'));
    expect(err).toBeInstanceOf(UnavailableError);
    const causes = (err as UnavailableError).causes;
    expect(causes).toHaveLength(4);
    expect(causes.every((c) => c.error instanceof ServerError && c.error.code === 'INTERNAL')).toBe(true);
    expect(new Set(causes.map((c) => c.node))).toEqual(new Set([fake.url, other.url]));
  });
});

describe('put and delete', () => {
  it('retries a blind write on another node when a node refuses it while shutting down (503 UNAVAILABLE)', async () => {
    const other = await FakeV1.start();
    cleanups.push(() => other.close());
    const refuse = (_hit: unknown, reply: { code(n: number): { type(t: string): { send(b: string): unknown } } }): boolean => {
      void reply.code(503).type('application/json').send(errorBody('UNAVAILABLE', 'node is shutting down'));
      return true;
    };
    fake.intercept = refuse;
    // The other node refuses its first request too, so whichever node the client starts with,
    // the write meets at least two refusals before it lands.
    let otherCalls = 0;
    other.intercept = (hit, reply) => (++otherCalls === 1 ? refuse(hit, reply) : false);
    const kv = client({ nodes: [fake.url, other.url], retries: 3 });
    await kv.put('k', 'v');
    expect(other.data.get('k')).toHaveLength(1);
    expect(fake.data.get('k')).toBeUndefined();
    expect(fake.hitsFor('PUT').length).toBeGreaterThanOrEqual(1);
  });

  it('does not retry a blind write after a 503 that may have been applied', async () => {
    fake.intercept = (_hit, reply) => {
      void reply.code(503).type('application/json').send(errorBody('INTERNAL', 'something else'));
      return true;
    };
    const err = await caught(client({ nodes: [fake.url], retries: 3 }).put('k', 'v'));
    expect(err).toBeInstanceOf(UnavailableError);
    expect(fake.hitsFor('PUT')).toHaveLength(1);
  });

  it('returns the new context and stores the content type (strings default to text/plain)', async () => {
    const kv = client();
    const a = await kv.put('k', 'text value');
    expect(a.context).toMatch(/^c1\./);
    expect(fake.data.get('k')![0]!.contentType).toBe('text/plain; charset=utf-8');
    await kv.put('b', new Uint8Array([1, 2, 3]));
    expect(fake.data.get('b')![0]!.contentType).toBe('application/octet-stream');
    await kv.put('c', '{}', { contentType: 'application/json' });
    expect(fake.data.get('c')![0]!.contentType).toBe('application/json');
  });

  it('sends the context so the write replaces what the read saw; without one it adds a sibling', async () => {
    const kv = client();
    await kv.put('k', 'a');
    await kv.put('k', 'b');
    expect(fake.values('k')).toEqual(['a', 'b']);
    const got = await kv.get('k');
    await kv.put('k', 'merged', { context: got.context, w: 'quorum' });
    expect(fake.values('k')).toEqual(['merged']);
    const put = fake.hitsFor('PUT').at(-1)!;
    expect(put.headers['x-ringkv-context']).toBe(got.context);
    expect(put.query.get('w')).toBe('quorum');
  });

  it('deletes with the context and returns the tombstone context', async () => {
    const kv = client();
    const { context } = await kv.put('k', 'v');
    const res = await kv.delete('k', { context, w: 2 });
    expect(res.context).toMatch(/^c1\./);
    expect(fake.values('k')).toEqual([]);
    expect(fake.hitsFor('DELETE')[0]!.query.get('w')).toBe('2');
  });

  it('throws RequestError for a 400 and a 413, with the server code, without retrying', async () => {
    const kv = client();
    fake.intercept = (hit, reply) => {
      if (hit.headers['x-ringkv-context'] !== 'bogus') return false;
      void reply.code(400).type('application/json').send(errorBody('BAD_CONTEXT', 'malformed context'));
      return true;
    };
    const bad = await caught(kv.put('k', 'v', { context: 'bogus' }));
    expect(bad).toBeInstanceOf(RequestError);
    expect(bad).toMatchObject({ status: 400, code: 'BAD_CONTEXT', message: 'malformed context' });
    fake.intercept = undefined;
    fake.maxValueBytes = 4;
    const big = await caught(kv.put('k', 'too large'));
    expect(big).toBeInstanceOf(RequestError);
    expect(big).toMatchObject({ status: 413, code: 'VALUE_TOO_LARGE' });
    expect(fake.hitsFor('PUT')).toHaveLength(2);
  });

  it('does not retry a write without context whose outcome is unknown (503)', async () => {
    quorumFailures(1, 'PUT');
    const err = await caught(client({ retries: 3 }).put('k', 'v'));
    expect(err).toBeInstanceOf(QuorumError);
    expect(fake.hitsFor('PUT')).toHaveLength(1);
  });

  it('retries a write after an unknown outcome when it carries a context', async () => {
    const kv = client({ retries: 3 });
    const { context } = await kv.put('k', 'v1');
    quorumFailures(2, 'PUT');
    await kv.put('k', 'v2', { context });
    expect(fake.hitsFor('PUT')).toHaveLength(4);
    expect(fake.values('k')).toEqual(['v2']);
  });

  it('retries a write without context after an unknown outcome when retryUnsafe is set', async () => {
    quorumFailures(1, 'PUT');
    await client({ retries: 3 }).put('k', 'v', { retryUnsafe: true });
    expect(fake.hitsFor('PUT')).toHaveLength(2);
  });

  it('retries a write without context that certainly did not reach a node', async () => {
    const dead = await deadUrl();
    const kv = client({ nodes: [dead, fake.url], retries: 2 });
    for (let i = 0; i < 4; i++) await kv.put(`k${i}`, 'v');
    expect(fake.hitsFor('PUT')).toHaveLength(4);
  });

  it('does not retry a write without context that timed out', async () => {
    const hole = await startBlackHole();
    cleanups.push(hole.close);
    const err = await caught(client({ nodes: [hole.url], retries: 3, attemptTimeoutMs: 100 }).put('k', 'v'));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(hole.connections()).toBe(1);
  });
});

describe('failover, timeouts, aborts', () => {
  it('fails over past a dead node, whichever node a call starts on', async () => {
    fake.seed('k', 'v');
    const dead = await deadUrl();
    const kv = client({ nodes: [dead, fake.url], breaker: false });
    for (let i = 0; i < 6; i++) expect((await kv.get('k')).found).toBe(true);
  });

  it('throws UnavailableError with one cause per attempt when every node is down', async () => {
    const nodes = [await deadUrl(), await deadUrl()];
    const err = await caught(client({ nodes, retries: 3, breaker: false }).get('k'));
    expect(err).toBeInstanceOf(UnavailableError);
    const causes = (err as UnavailableError).causes;
    expect(causes).toHaveLength(4);
    for (const c of causes) {
      expect(c.error).toBeInstanceOf(ConnectionError);
      expect(c.error).toMatchObject({ code: 'CONNECTION_FAILED', sent: false });
    }
  });

  it('times out a call to a node that never answers', async () => {
    const hole = await startBlackHole();
    cleanups.push(hole.close);
    const started = performance.now();
    const err = await caught(client({ nodes: [hole.url] }).get('k', { timeoutMs: 200 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).timeoutMs).toBe(200);
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('moves on from a hung node after the attempt timeout', async () => {
    fake.seed('k', 'v');
    const hole = await startBlackHole();
    cleanups.push(hole.close);
    const kv = client({ nodes: [hole.url, fake.url], attemptTimeoutMs: 100, timeoutMs: 5_000, breaker: false });
    for (let i = 0; i < 2; i++) expect((await kv.get('k')).found).toBe(true);
  });

  it('rejects at once, without a request, when the signal is already aborted', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    const err = await caught(client().get('k', { signal: ac.signal }));
    expect(err).toBeInstanceOf(AbortError);
    expect((err as AbortError).cause).toEqual(new Error('stop'));
    expect(fake.hits).toHaveLength(0);
  });

  it('aborts a call in flight', async () => {
    const hole = await startBlackHole();
    cleanups.push(hole.close);
    const ac = new AbortController();
    const p = caught(client({ nodes: [hole.url] }).put('k', 'v', { signal: ac.signal, context: 'c1.W10' }));
    await vi.waitFor(() => expect(hole.connections()).toBe(1));
    ac.abort('user gave up');
    const err = await p;
    expect(err).toBeInstanceOf(AbortError);
    expect((err as AbortError).cause).toBe('user gave up');
  });
});

describe('circuit breaker', () => {
  it('stops sending to a failing node, then probes it and closes again', async () => {
    const bad = await FakeV1.start();
    cleanups.push(() => bad.close());
    let broken = true;
    bad.intercept = (_hit, reply) => {
      if (!broken) return false;
      void reply.code(500).type('application/json').send(errorBody('INTERNAL', 'disk on fire'));
      return true;
    };
    bad.seed('k', 'v');
    fake.seed('k', 'v');
    const time = new ManualTime();
    const kv = client({
      nodes: [bad.url, fake.url],
      clock: time,
      breaker: { failureThreshold: 2, openMs: 1_000, maxOpenMs: 1_000 },
    });
    for (let i = 0; i < 4; i++) expect((await kv.get('k')).found).toBe(true);
    expect(bad.hits).toHaveLength(2);
    expect(kv.nodeStates()).toEqual([
      { node: bad.url, breaker: 'open' },
      { node: fake.url, breaker: 'closed' },
    ]);
    for (let i = 0; i < 6; i++) await kv.get('k');
    expect(bad.hits).toHaveLength(2);

    broken = false;
    await time.advance(1_000);
    expect(kv.nodeStates()[0]!.breaker).toBe('half-open');
    for (let i = 0; i < 4; i++) await kv.get('k');
    expect(kv.nodeStates()[0]!.breaker).toBe('closed');
    expect(bad.hits.length).toBeGreaterThanOrEqual(4);
  });

  it('fails fast with CircuitOpenError causes when every breaker is open', async () => {
    const dead = await deadUrl();
    const kv = client({ nodes: [dead], retries: 0, clock: new ManualTime(), breaker: { failureThreshold: 1 } });
    expect(await caught(kv.get('k'))).toBeInstanceOf(UnavailableError);
    const err = await caught(kv.get('k'));
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as UnavailableError).causes.map((c) => c.error)).toEqual([new CircuitOpenError(dead)]);
  });
});

describe('arguments', () => {
  it.each<[string, (kv: Client) => Promise<unknown>]>([
    ['empty key', (kv) => kv.get('')],
    ['key over 512 UTF-8 bytes', (kv) => kv.get('€'.repeat(171))],
    ['key with a lone surrogate', (kv) => kv.get('a\uD800b')],
    ['non-string key', (kv) => kv.get(42 as unknown as string)],
    ['bad r', (kv) => kv.get('k', { r: 0 })],
    ['bad r name', (kv) => kv.get('k', { r: 'most' as 'all' })],
    ['bad w', (kv) => kv.put('k', 'v', { w: 1.5 })],
    ['bad value', (kv) => kv.put('k', { a: 1 } as unknown as string)],
    ['bad context', (kv) => kv.put('k', 'v', { context: 'two words' })],
    ['empty context', (kv) => kv.delete('k', { context: '' })],
    ['bad content type', (kv) => kv.put('k', 'v', { contentType: 'a\r\nb' })],
    ['bad timeout', (kv) => kv.get('k', { timeoutMs: -1 })],
    ['bad retries', (kv) => kv.get('k', { retries: 1.5 })],
    ['bad signal', (kv) => kv.get('k', { signal: {} as AbortSignal })],
    ['bad mutator', (kv) => kv.update('k', 'nope' as unknown as () => string)],
    ['bad update key', (kv) => kv.update('', () => 'x')],
  ])('rejects a %s with InvalidArgumentError and no request', async (_name, call) => {
    const err = await caught(call(client()));
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).code).toBe('INVALID_ARGUMENT');
    expect(fake.hits).toHaveLength(0);
  });

  it('accepts a key of exactly 512 UTF-8 bytes', async () => {
    await client().put(`${'€'.repeat(170)}ab`, 'v');
    expect(fake.hitsFor('PUT')).toHaveLength(1);
  });

  it.each<[string, unknown]>([
    ['no nodes', { nodes: [] }],
    ['a bad URL', { nodes: ['127.0.0.1:8081'] }],
    ['a URL with a path', { nodes: ['http://127.0.0.1:8081/v1'] }],
    ['a bad timeout', { nodes: ['http://127.0.0.1:8081'], timeoutMs: 0 }],
    ['a bad breaker', { nodes: ['http://127.0.0.1:8081'], breaker: { failureThreshold: 0 } }],
    ['a bad default quorum', { nodes: ['http://127.0.0.1:8081'], w: 'most' }],
  ])('refuses a client with %s', (_name, opts) => {
    expect(() => new Client(opts as ClientOptions)).toThrow(InvalidArgumentError);
  });
});

describe('discovery and lifecycle', () => {
  it('replaces the node list with the up members of /v1/cluster', async () => {
    const other = await FakeV1.start();
    cleanups.push(() => other.close());
    const host = (u: string) => u.replace('http://', '');
    fake.cluster = {
      node: 'a',
      members: [
        { id: 'b', address: host(other.url), zone: 'z', status: 'up' },
        { id: 'c', address: '127.0.0.1:1', zone: 'z', status: 'down' },
      ],
    };
    const kv = client();
    expect(await kv.refreshNodes()).toEqual([other.url]);
    other.seed('k', 'from b');
    expect(dec.decode((await kv.get('k')).siblings[0]!.value)).toBe('from b');
  });

  it('discovers on its own with discover: true', async () => {
    const other = await FakeV1.start();
    cleanups.push(() => other.close());
    fake.cluster = { members: [{ id: 'b', address: other.url.replace('http://', ''), status: 'up' }] };
    const kv = client({ discover: true });
    await vi.waitFor(() => expect(kv.nodes()).toEqual([other.url]));
  });

  it('refreshes on its interval and leaves no timer behind after close()', async () => {
    fake.cluster = { members: [{ id: 'a', address: fake.url.replace('http://', ''), status: 'up' }] };
    const time = new ManualTime();
    const kv = client({ discover: true, discoverIntervalMs: 30_000, clock: time, timers: time });
    const clusterReads = () => fake.hits.filter((h) => h.url === '/v1/cluster').length;
    // refreshNodes() joins the refresh in flight, so these awaits add no requests of their own.
    await kv.refreshNodes();
    expect(clusterReads()).toBe(1);
    expect(time.pending()).toBe(1);
    await time.advance(30_000);
    await kv.refreshNodes();
    expect(clusterReads()).toBe(2);
    expect(time.pending()).toBe(1);
    await kv.close();
    expect(time.pending()).toBe(0);
  });

  it('keeps its node list when /v1/cluster names no member that is up', async () => {
    const kv = client();
    for (const cluster of [{ members: [] }, { members: [{ id: 'c', address: '127.0.0.1:1', status: 'down' }] }, { nothing: true }]) {
      fake.cluster = cluster;
      expect(await kv.refreshNodes()).toEqual([fake.url]);
    }
  });

  it('when the nodes it found stop answering, falls back to the configured ones too', async () => {
    const other = await FakeV1.start();
    fake.cluster = { members: [{ id: 'b', address: other.url.replace('http://', ''), status: 'up' }] };
    const kv = client();
    expect(await kv.refreshNodes()).toEqual([other.url]);
    // The discovered node goes away: the refresh fails, and the seed is back in the list.
    await other.close();
    expect(await caught(kv.refreshNodes())).toBeInstanceOf(Error);
    expect([...kv.nodes()].sort()).toEqual([fake.url, other.url].sort());
    // Through the seed, the next refresh finds the cluster again.
    fake.cluster = { members: [{ id: 'a', address: fake.url.replace('http://', ''), status: 'up' }] };
    await vi.waitFor(async () => expect(await kv.refreshNodes()).toEqual([fake.url]));
    fake.seed('k', 'from a');
    expect(dec.decode((await kv.get('k')).siblings[0]!.value)).toBe('from a');
  });

  it('refuses calls after close()', async () => {
    const kv = client();
    await kv.close();
    await kv.close();
    expect(await caught(kv.get('k'))).toBeInstanceOf(ClientClosedError);
  });
});
