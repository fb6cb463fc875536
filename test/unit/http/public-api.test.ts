/**
 * SPEC §2 through fastify inject() on in-process nodes (RingkvNode over a MemoryStore): the
 * error paths in detail, including inputs that only make sense knowing the context format.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseNodeConfig } from '../../../src/config.js';
import { DEFAULT_TIMEOUT_MS } from '../../../src/http/request-params.js';
import { RingkvNode } from '../../../src/node.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { MemoryStore } from '../../../src/storage/index.js';
import { decodeContext, encodeContext } from '../../../src/version/index.js';
import { BAD_QUORUMS, BAD_TIMEOUTS, badContexts, forgedReplicaWrite, GOOD_QUORUMS, wrongAuthorizations } from '../../helpers/api-cases.js';
import { freePort, waitFor } from '../../helpers/ports.js';
import { errorOf, errorShape, kvPath, type RawResponse } from '../../helpers/raw-http.js';

const SECRET = 'unit-test-cluster-secret';
const MAX = 64;

/** An inject() answer in the shape the shared helpers read. */
function wrap(res: LightMyRequestResponse): RawResponse {
  const body = res.rawPayload;
  return {
    status: res.statusCode,
    headers: res.headers as RawResponse['headers'],
    body,
    text: () => body.toString('utf8'),
    json: <T>() => JSON.parse(body.toString('utf8')) as T,
    header: (name: string) => {
      const v = res.headers[name.toLowerCase()];
      return Array.isArray(v) ? v[0] : v === undefined ? undefined : String(v);
    },
  };
}

async function startNode(argv: string[], listenPort?: number): Promise<RingkvNode> {
  const port = listenPort ?? (await freePort());
  const node = new RingkvNode(parseNodeConfig(['--listen', `127.0.0.1:${port}`, '--data', '/nonexistent/unused', ...argv]), {
    store: new MemoryStore(),
    log: silentLogger(),
  });
  await node.start();
  return node;
}

let node: RingkvNode;
let open: RingkvNode;

beforeAll(async () => {
  node = await startNode(['--id', 'u1', '--secret', SECRET, '--max-value-bytes', String(MAX)]);
  // A single node started without any secret.
  open = await startNode(['--id', 'u2']);
});

afterAll(async () => {
  await node?.stop();
  await open?.stop();
});

type Req = { method: 'GET' | 'PUT' | 'DELETE' | 'POST'; url: string; headers?: Record<string, string>; payload?: string | Buffer };

async function call(n: RingkvNode, req: Req): Promise<RawResponse> {
  return wrap(await n.http.inject(req));
}

/** The value of a metric without labels beyond `node`, from the node's /metrics. */
async function metricOf(n: RingkvNode, name: string): Promise<number> {
  const text = (await call(n, { method: 'GET', url: '/metrics' })).text();
  const m = new RegExp(`^${name}\\{[^}]*\\} (\\d+)$`, 'm').exec(text);
  if (!m) throw new Error(`${name} not exported`);
  return Number(m[1]);
}

const snapshot = async (key: string) => {
  const r = await call(node, { method: 'GET', url: kvPath(key, 'r=all') });
  return { status: r.status, context: r.header('x-ringkv-context'), body: r.body.toString('base64'), ct: r.header('content-type') };
};

async function seed(key: string, value = 'original'): Promise<string> {
  const r = await call(node, { method: 'PUT', url: kvPath(key), headers: { 'content-type': 'text/plain' }, payload: value });
  expect(r.status).toBe(204);
  return r.header('x-ringkv-context') as string;
}

describe('public API errors (in-process)', () => {
  it('every kind of error is a JSON {"error":{"code","message"}} with the status SPEC §2 gives it', async () => {
    const ctx = await seed('errors');
    const cases: [Req, number, string][] = [
      [{ method: 'GET', url: kvPath('missing') }, 404, 'NOT_FOUND'],
      [{ method: 'GET', url: '/v1/kv/' }, 400, 'BAD_KEY'],
      [{ method: 'GET', url: kvPath('k'.repeat(513)) }, 400, 'BAD_KEY'],
      [{ method: 'GET', url: kvPath('errors', 'r=0') }, 400, 'BAD_QUERY'],
      [{ method: 'GET', url: kvPath('errors', 'timeout=-1') }, 400, 'BAD_QUERY'],
      [{ method: 'PUT', url: kvPath('errors'), headers: { 'x-ringkv-context': '!!' }, payload: 'x' }, 400, 'BAD_CONTEXT'],
      [{ method: 'PUT', url: kvPath('errors'), payload: 'x'.repeat(MAX + 1) }, 413, 'VALUE_TOO_LARGE'],
      [{ method: 'POST', url: '/internal/replica-write', payload: 'x' }, 401, 'UNAUTHORIZED'],
      [{ method: 'POST', url: '/v1/cluster/leave' }, 401, 'UNAUTHORIZED'],
      [{ method: 'POST', url: '/v1/cluster/remove/u9' }, 401, 'UNAUTHORIZED'],
      [{ method: 'GET', url: '/v1/no-such-route' }, 404, 'NOT_FOUND'],
    ];
    for (const [req, status, code] of cases) {
      expect(errorOf(await call(node, req)), `${req.method} ${req.url}`).toEqual(errorShape(status, code));
    }
    expect((await snapshot('errors')).context).toBe(ctx);
  });

  // The router's FST_ERR_BAD_URL (a path that is not valid percent-encoded UTF-8) must come
  // back in SPEC §2 form (app.ts frameworkErrors).
  it('invalid percent-encoding in the key is 400 BAD_KEY in SPEC §2 error form', async () => {
    for (const bad of ['%ZZ', '%', '%C3', '%ED%A0%80', '%FF%FE']) {
      for (const method of ['GET', 'PUT', 'DELETE'] as const) {
        const res = await call(node, { method, url: `/v1/kv/${bad}`, ...(method === 'PUT' ? { payload: 'x' } : {}) });
        expect(errorOf(res), `${method} ${bad}`).toEqual(errorShape(400, 'BAD_KEY'));
      }
    }
  });

  it('malformed contexts of every kind are 400 BAD_CONTEXT, for PUT and DELETE, and store nothing', async () => {
    const ctx = await seed('contexts');
    const before = await snapshot('contexts');
    const b64 = (bytes: number[]) => Buffer.from(bytes).toString('base64url');
    const clock = decodeContext(ctx);
    const actor = Object.keys(clock)[0] as string;
    const formatSpecific = [
      `${ctx}=`, // padding
      'A', // 4n+1 characters
      'AQB', // non-canonical spelling of the empty clock AQA (non-zero leftover bits)
      b64([2, 0]), // unknown format
      b64([1, 5]), // truncated
      b64([1, 0, 0]), // trailing bytes
      b64([1, 1, 0, 1]), // empty actor
      b64([1, 1, 1, 0x61, 0]), // counter 0
      b64([1, 2, 1, 0x62, 1, 1, 0x61, 1]), // actors out of order
      b64([1, 2, 1, 0x61, 1, 1, 0x61, 1]), // duplicate actor
      b64([1, 1, 1, 0xff, 1]), // actor not UTF-8
      'A'.repeat(16 * 1024 + 4), // too long
      encodeContext(Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`a${String(i).padStart(4, '0')}`, 1]))),
    ];
    for (const bad of [...badContexts(ctx), ...formatSpecific]) {
      for (const method of ['PUT', 'DELETE'] as const) {
        const res = await call(node, {
          method,
          url: kvPath('contexts'),
          headers: { 'x-ringkv-context': bad, 'content-type': 'text/plain' },
          ...(method === 'PUT' ? { payload: 'must not be stored' } : {}),
        });
        expect(errorOf(res), `${method} context ${bad.slice(0, 40)}`).toEqual(errorShape(400, 'BAD_CONTEXT'));
      }
    }
    expect(await snapshot('contexts')).toEqual(before);
    expect(actor).not.toBe('');
  });

  /** A context covering `ctx` whose counter for every actor (this node's included) is `counter`. */
  const contextAt = (ctx: string, counter: number): string => {
    const actors = [...Object.keys(decodeContext(ctx)), node.nodeCore.actor];
    return encodeContext(Object.fromEntries(actors.map((a) => [a, counter])));
  };

  // mint computes max(local, context) + 1; a client context with a counter near 2^53 must be
  // rejected as BAD_CONTEXT (decodeContext bounds counters), never reach the codec as a 500.
  it('a context whose counter for this node is the largest safe integer is 400 BAD_CONTEXT, not a 500', async () => {
    const ctx = await seed('huge-counter');
    const before = await snapshot('huge-counter');
    for (const method of ['PUT', 'DELETE'] as const) {
      const res = await call(node, {
        method,
        url: kvPath('huge-counter'),
        headers: { 'x-ringkv-context': contextAt(ctx, Number.MAX_SAFE_INTEGER) },
        ...(method === 'PUT' ? { payload: 'overflow' } : {}),
      });
      expect(errorOf(res), `${method}: ${res.text()}`).toEqual(errorShape(400, 'BAD_CONTEXT'));
    }
    expect(await snapshot('huge-counter')).toEqual(before);
  });

  it('a context at the largest safe counter never stores anything, whatever it answers', async () => {
    const ctx = await seed('huge-counter-2');
    const before = await snapshot('huge-counter-2');
    const res = await call(node, {
      method: 'PUT',
      url: kvPath('huge-counter-2'),
      headers: { 'x-ringkv-context': contextAt(ctx, Number.MAX_SAFE_INTEGER) },
      payload: 'overflow',
    });
    expect(res.status).not.toBe(204);
    expect(await snapshot('huge-counter-2')).toEqual(before);
  });

  // Same cause: a context one below the largest safe counter must not wedge the key.
  it('no client context can make a key unwritable: after a PUT at counter 2^53 - 2, writes still succeed', async () => {
    const ctx = await seed('wedge');
    await call(node, {
      method: 'PUT',
      url: kvPath('wedge'),
      headers: { 'x-ringkv-context': contextAt(ctx, Number.MAX_SAFE_INTEGER - 1) },
      payload: 'poison',
    });
    const blind = await call(node, { method: 'PUT', url: kvPath('wedge'), payload: 'blind write' });
    expect(blind.status, blind.text()).toBe(204);
    const read = await call(node, { method: 'GET', url: kvPath('wedge') });
    const withContext = await call(node, {
      method: 'PUT',
      url: kvPath('wedge'),
      headers: { 'x-ringkv-context': read.headers['x-ringkv-context'] as string },
      payload: 'resolved',
    });
    expect(withContext.status, withContext.text()).toBe(204);
  });

  it('r, w and timeout are validated before anything is written', async () => {
    const ctx = await seed('queries');
    const before = await snapshot('queries');
    const bad = [
      ...BAD_QUORUMS.map((q) => ['w', q] as const),
      ...BAD_TIMEOUTS.map((t) => ['timeout', t] as const),
    ];
    for (const [name, v] of bad) {
      const q = `${name}=${encodeURIComponent(v)}`;
      for (const method of ['PUT', 'DELETE'] as const) {
        const res = await call(node, { method, url: kvPath('queries', q), headers: { 'x-ringkv-context': ctx }, payload: 'no' });
        expect(errorOf(res), `${method} ${q}`).toEqual(errorShape(400, 'BAD_QUERY'));
      }
      const rq = name === 'w' ? `r=${encodeURIComponent(v)}` : q;
      expect(errorOf(await call(node, { method: 'GET', url: kvPath('queries', rq) })), `GET ${rq}`).toEqual(errorShape(400, 'BAD_QUERY'));
    }
    for (const dup of ['w=1&w=2', 'w=all&w=all', 'timeout=5&timeout=5']) {
      const res = await call(node, { method: 'PUT', url: kvPath('queries', dup), payload: 'no' });
      expect(errorOf(res), dup).toEqual(errorShape(400, 'BAD_QUERY'));
    }
    expect(await snapshot('queries')).toEqual(before);
    for (const q of GOOD_QUORUMS) expect((await call(node, { method: 'GET', url: kvPath('queries', `r=${q}`) })).status).toBe(200);
  });

  it('the value limit is exact: --max-value-bytes is accepted, one byte more is 413 and stores nothing', async () => {
    const ok = await call(node, { method: 'PUT', url: kvPath('limit'), payload: Buffer.alloc(MAX, 1) });
    expect(ok.status).toBe(204);
    const before = await snapshot('limit');
    const res = await call(node, { method: 'PUT', url: kvPath('limit'), payload: Buffer.alloc(MAX + 1, 2) });
    expect(errorOf(res)).toEqual(errorShape(413, 'VALUE_TOO_LARGE'));
    const json = await call(node, {
      method: 'PUT',
      url: kvPath('limit'),
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify('x'.repeat(MAX)),
    });
    expect(errorOf(json)).toEqual(errorShape(413, 'VALUE_TOO_LARGE'));
    expect(await snapshot('limit')).toEqual(before);
  });

  it('other bad requests are 4xx JSON errors with a code: an over-long Content-Type, a garbled internal message, removing oneself', async () => {
    const ctx = await seed('bad-requests');
    const before = await snapshot('bad-requests');
    const longType = await call(node, {
      method: 'PUT',
      url: kvPath('bad-requests'),
      headers: { 'content-type': `text/${'x'.repeat(300)}`, 'x-ringkv-context': ctx },
      payload: 'x',
    });
    expect(errorOf(longType)).toEqual(errorShape(400, 'BAD_REQUEST'));
    expect(await snapshot('bad-requests')).toEqual(before);

    const auth = { authorization: `Bearer ${SECRET}`, 'content-type': 'application/octet-stream' };
    for (const route of ['replica-write', 'replica-write-batch', 'kv-put', 'replica-read', 'gossip']) {
      const res = await call(node, { method: 'POST', url: `/internal/${route}`, headers: auth, payload: Buffer.from([0xff, 0xff, 0xff]) });
      expect(errorOf(res), route).toEqual(errorShape(400, 'BAD_REQUEST'));
    }
    expect(errorOf(await call(node, { method: 'POST', url: '/internal/no-such-route', headers: auth, payload: Buffer.alloc(0) }))).toEqual(
      errorShape(404, 'NOT_FOUND'),
    );
    const admin = { authorization: `Bearer ${SECRET}` };
    expect(errorOf(await call(node, { method: 'POST', url: '/v1/cluster/remove/u1', headers: admin }))).toEqual(errorShape(400, 'BAD_REQUEST'));
    expect(errorOf(await call(node, { method: 'POST', url: '/v1/cluster/remove/nobody', headers: admin }))).toEqual(errorShape(404, 'NOT_FOUND'));
    expect(await snapshot('bad-requests')).toEqual(before);
  });

  it('takes a body of any Content-Type, again and again: each type stored as sent, a malformed one refused', async () => {
    // Twice each: the second request of a type finds its parser in fastify's cache.
    const types = ['application/octet-stream', 'Text/Plain; Charset=UTF-8', 'application/json', 'image/png', undefined];
    for (let round = 0; round < 2; round++) {
      for (const [i, type] of types.entries()) {
        const key = `any-type-${round}-${i}`;
        const headers: Record<string, string> = type === undefined ? {} : { 'content-type': type };
        const put = await call(node, { method: 'PUT', url: kvPath(key), headers, payload: `value ${i}` });
        expect(put.status, String(type)).toBe(204);
        const got = await snapshot(key);
        expect(got.status).toBe(200);
        expect(Buffer.from(got.body, 'base64').toString()).toBe(`value ${i}`);
        expect(got.ct).toBe(type ?? 'application/octet-stream');
      }
    }
    const bad = await call(node, { method: 'PUT', url: kvPath('any-type-bad'), headers: { 'content-type': 'no slash here' }, payload: 'x' });
    expect(errorOf(bad)).toEqual(errorShape(400, 'BAD_REQUEST'));
    expect((await snapshot('any-type-bad')).status).toBe(404);
  });

  it('a 300 answer is exactly application/json, with the context in header and body alike', async () => {
    await seed('sib', 'one');
    await seed('sib', 'two');
    const res = await call(node, { method: 'GET', url: kvPath('sib') });
    expect(res.status).toBe(300);
    expect(res.header('content-type')).toBe('application/json');
    const body = res.json<{ context: string; siblings: unknown[] }>();
    expect(res.header('x-ringkv-context')).toBe(body.context);
    expect(body.siblings).toHaveLength(2);
  });
});

describe('default quorums and timeouts (in-process)', () => {
  it("--r and --w are the routes' default quorums, and r, w and timeout from the query reach the coordinator", async () => {
    // A single node (quorums are capped at the one member, so every request succeeds), with
    // non-default quorums; the coordinator is watched, not replaced.
    const strict = await startNode(['--id', 'u3', '--n', '3', '--r', '3', '--w', '1']);
    try {
      const coordinator = strict.nodeCore.coordinator;
      const put = vi.spyOn(coordinator, 'put');
      const get = vi.spyOn(coordinator, 'get');
      // The quorum options of the latest call: put(key, write, context, opts), get(key, opts).
      const putOpts = () => put.mock.calls.at(-1)?.[3];
      const getOpts = () => get.mock.calls.at(-1)?.[1];

      expect((await call(strict, { method: 'PUT', url: kvPath('q'), payload: 'v' })).status).toBe(204);
      expect(putOpts()).toEqual({ w: 1, timeoutMs: DEFAULT_TIMEOUT_MS });
      expect((await call(strict, { method: 'PUT', url: kvPath('q', 'w=all&timeout=1234'), payload: 'v' })).status).toBe(204);
      expect(putOpts()).toEqual({ w: 3, timeoutMs: 1234 });
      expect((await call(strict, { method: 'GET', url: kvPath('q') })).status).toBe(300);
      expect(getOpts()).toEqual({ r: 3, timeoutMs: DEFAULT_TIMEOUT_MS });
      expect((await call(strict, { method: 'GET', url: kvPath('q', 'r=quorum&timeout=777') })).status).toBe(300);
      expect(getOpts()).toEqual({ r: 2, timeoutMs: 777 });
      expect((await call(strict, { method: 'DELETE', url: kvPath('q', 'timeout=99') })).status).toBe(204);
      expect(putOpts()).toEqual({ w: 1, timeoutMs: 99 });
      expect(put).toHaveBeenCalledTimes(3);
      expect(get).toHaveBeenCalledTimes(2);

      // The node started with the defaults (n=3, r=2, w=2), shared with the other tests: its
      // spies go whatever happens.
      const putDefault = vi.spyOn(node.nodeCore.coordinator, 'put');
      const getDefault = vi.spyOn(node.nodeCore.coordinator, 'get');
      try {
        await seed('q-default');
        expect(putDefault.mock.calls.at(-1)?.[3]).toEqual({ w: 2, timeoutMs: DEFAULT_TIMEOUT_MS });
        await call(node, { method: 'GET', url: kvPath('q-default') });
        expect(getDefault.mock.calls.at(-1)?.[1]).toEqual({ r: 2, timeoutMs: DEFAULT_TIMEOUT_MS });
      } finally {
        putDefault.mockRestore();
        getDefault.mockRestore();
      }
    } finally {
      await strict.stop();
    }
  });
});

describe('--weight (in-process, two nodes)', () => {
  it("gives a node a share of the ring in proportion to its weight, as /v1/cluster reports it", async () => {
    // N=1, so each partition has one replica and the shares are the ring's split itself.
    const [pa, pb] = [await freePort(), await freePort()];
    const common = ['--secret', SECRET, '--n', '1', '--r', '1', '--w', '1', '--gossip-interval-ms', '100', '--seeds', `127.0.0.1:${pa}`];
    const light = await startNode(['--id', 'w1', '--weight', '1', ...common], pa);
    let heavy: RingkvNode | undefined;
    try {
      heavy = await startNode(['--id', 'w3', '--weight', '3', ...common], pb);
      const heavyNode = heavy;
      type View = { members: { id: string; status: string; ownership: number }[] };
      const view = async (n: RingkvNode) => (await call(n, { method: 'GET', url: '/v1/cluster' })).json<View>();
      const shares = await waitFor('both nodes to see both up in their rings', async () => {
        const [a, b] = [await view(light), await view(heavyNode)];
        const both = (v: View) => v.members.length === 2 && v.members.every((m) => m.status === 'up' && m.ownership > 0);
        return both(a) && both(b) ? a.members : undefined;
      });
      const share = (id: string) => shares.find((m) => m.id === id)?.ownership ?? Number.NaN;
      expect(share('w1') + share('w3')).toBeCloseTo(1, 6);
      // 1:3 by weight; the ring's placement is not exact, so within a few points of 0.25/0.75.
      expect(share('w3')).toBeGreaterThan(0.7);
      expect(share('w3')).toBeLessThan(0.8);
    } finally {
      await heavy?.stop();
      await light.stop();
    }
  });
});

describe('a node started without a secret (in-process)', () => {
  it('refuses every internal and admin call, whatever Authorization it carries', async () => {
    const put = await call(open, { method: 'PUT', url: kvPath('open'), headers: { 'content-type': 'text/plain' }, payload: 'genuine' });
    expect(put.status).toBe(204);
    const forged = forgedReplicaWrite('open', put.header('x-ringkv-context') as string, 'forged');
    const auths = [...wrongAuthorizations('anything'), 'Bearer undefined', 'Bearer null', 'Bearer  ', 'Bearer anything'];
    for (const authorization of auths) {
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream', ...(authorization === undefined ? {} : { authorization }) };
      const internal = await call(open, { method: 'POST', url: '/internal/replica-write', headers, payload: Buffer.from(forged) });
      expect(errorOf(internal), `internal with ${JSON.stringify(authorization)}`).toEqual(errorShape(401, 'UNAUTHORIZED'));
      for (const url of ['/v1/cluster/leave', '/v1/cluster/remove/u2']) {
        const admin = await call(open, { method: 'POST', url, headers: authorization === undefined ? {} : { authorization } });
        expect(errorOf(admin), `${url} with ${JSON.stringify(authorization)}`).toEqual(errorShape(401, 'UNAUTHORIZED'));
      }
    }
    const got = await call(open, { method: 'GET', url: kvPath('open') });
    expect(got.status).toBe(200);
    expect(got.text()).toBe('genuine');
  });

  it('exports the object, version and decoded-object caches and the key filter: hits, misses, entries and bytes', async () => {
    const port = await freePort();
    const cached = new RingkvNode(parseNodeConfig(['--id', 'c1', '--listen', `127.0.0.1:${port}`, '--data', '/nonexistent/unused']), {
      store: new MemoryStore({ objectCacheBytes: 1 << 20 }),
      log: silentLogger(),
    });
    await cached.start();
    try {
      const metric = (name: string): Promise<number> => metricOf(cached, name);
      const before = await metric('ringkv_object_cache_hits_total');
      const decodedHits = await metric('ringkv_decoded_cache_hits_total');
      const decodedMisses = await metric('ringkv_decoded_cache_misses_total');
      const put = await call(cached, { method: 'PUT', url: kvPath('cached'), payload: 'v' });
      expect(put.status).toBe(204);
      // A write leaves nothing cached: the first read fills the cache, the second hits it
      // (and is answered with the object the first one decoded).
      expect((await call(cached, { method: 'GET', url: kvPath('cached') })).status).toBe(200);
      expect(await metric('ringkv_decoded_cache_misses_total')).toBe(decodedMisses + 1);
      const again = await call(cached, { method: 'GET', url: kvPath('cached') });
      expect(again.status).toBe(200);
      expect(again.text()).toBe('v');
      expect(await metric('ringkv_object_cache_hits_total')).toBeGreaterThan(before);
      expect(await metric('ringkv_decoded_cache_hits_total')).toBe(decodedHits + 1);
      expect(await metric('ringkv_decoded_cache_entries')).toBeGreaterThanOrEqual(1);
      expect(await metric('ringkv_decoded_cache_bytes')).toBeGreaterThan(0);
      expect(await metric('ringkv_object_cache_entries')).toBeGreaterThanOrEqual(1);
      expect(await metric('ringkv_object_cache_bytes')).toBeGreaterThan(0);
      // A key never written: the key filter answers it without a store read once its start-up
      // scan is done (unit-tested in key-filter.test.ts); before that, the store is read.
      const misses = await metric('ringkv_object_cache_misses_total');
      const filtered = await metric('ringkv_key_filter_hits_total');
      expect((await call(cached, { method: 'GET', url: kvPath('never-written') })).status).toBe(404);
      const read = (await metric('ringkv_object_cache_misses_total')) - misses;
      expect(read + (await metric('ringkv_key_filter_hits_total')) - filtered).toBe(1);
      expect(await metric('ringkv_key_filter_entries')).toBeGreaterThanOrEqual(1);
      // The version cache: the first write of a key misses it, a write with its context hits.
      const vMisses = await metric('ringkv_version_cache_misses_total');
      const vHits = await metric('ringkv_version_cache_hits_total');
      const first = await call(cached, { method: 'PUT', url: kvPath('versioned'), payload: 'a' });
      expect(await metric('ringkv_version_cache_misses_total')).toBe(vMisses + 1);
      const context = first.headers['x-ringkv-context'] as string;
      const second = await call(cached, { method: 'PUT', url: kvPath('versioned'), payload: 'b', headers: { 'x-ringkv-context': context } });
      expect(second.status).toBe(204);
      expect(await metric('ringkv_version_cache_hits_total')).toBe(vHits + 1);
      expect(await metric('ringkv_version_cache_entries')).toBeGreaterThanOrEqual(2);
      expect(await metric('ringkv_version_cache_bytes')).toBeGreaterThan(0);
    } finally {
      await cached.stop();
    }
  });

  it('counts reads answered with siblings in ringkv_read_siblings, and not reads of one value', async () => {
    const metric = (name: string): Promise<number> => metricOf(open, name);
    const count = await metric('ringkv_read_siblings_count');
    const sum = await metric('ringkv_read_siblings_sum');
    // Three writes without a context: three siblings.
    for (const v of ['a', 'b', 'c']) expect((await call(open, { method: 'PUT', url: kvPath('sibs'), payload: v })).status).toBe(204);
    const three = await call(open, { method: 'GET', url: kvPath('sibs') });
    expect(three.status).toBe(300);
    expect(three.json<{ siblings: unknown[] }>().siblings).toHaveLength(3);
    expect((await call(open, { method: 'PUT', url: kvPath('single'), payload: 'x' })).status).toBe(204);
    expect((await call(open, { method: 'GET', url: kvPath('single') })).status).toBe(200);
    expect(await metric('ringkv_read_siblings_count')).toBe(count + 1);
    expect(await metric('ringkv_read_siblings_sum')).toBe(sum + 3);
  });

  it('keeps its own metrics: one node’s requests do not show up in another’s /metrics', async () => {
    for (let i = 0; i < 3; i++) await call(open, { method: 'GET', url: kvPath('metrics-only-u2') });
    const m1 = (await call(node, { method: 'GET', url: '/metrics' })).text();
    const m2 = (await call(open, { method: 'GET', url: '/metrics' })).text();
    expect(m2).toMatch(/node="u2"/);
    expect(m1).not.toMatch(/node="u2"/);
  });
});
