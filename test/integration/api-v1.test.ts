/**
 * SPEC §2 (HTTP API v1) against real `ringkv node` processes (built `dist/`): first one node on
 * its own, then a 3-node cluster (any node, same answers; auth; quorum failures).
 * Every rejected request is followed by a read proving that nothing was stored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BAD_QUORUMS,
  BAD_TIMEOUTS,
  badContexts,
  binaryValue,
  forgedReplicaWrite,
  GOOD_QUORUMS,
  ISO_8601,
  ODD_KEYS,
  type Snapshot,
  snapshotOf,
  wrongAuthorizations,
} from '../helpers/api-cases.js';
import { clusterView, converged, startCluster, type TestCluster } from '../helpers/cluster.js';
import { waitQuorumReady } from '../helpers/cluster-ready.js';
import { waitFor } from '../helpers/ports.js';
import { familyOf, parseExposition } from '../helpers/prometheus.js';
import { type ErrorBody, errorOf, errorShape, kvPath, type RawResponse, raw } from '../helpers/raw-http.js';

const MAX_VALUE_BYTES = 1024;
const OCTET = 'application/octet-stream';

interface PutOpts {
  readonly contentType?: string;
  readonly context?: string;
  readonly query?: string;
  readonly headers?: Record<string, string | string[]>;
}

function put(base: string, key: string, value: Uint8Array | string, o: PutOpts = {}): Promise<RawResponse> {
  return raw(base, 'PUT', kvPath(key, o.query), {
    headers: {
      ...(o.contentType === undefined ? {} : { 'content-type': o.contentType }),
      ...(o.context === undefined ? {} : { 'x-ringkv-context': o.context }),
      ...(o.headers ?? {}),
    },
    body: value,
  });
}

function get(base: string, key: string, query = ''): Promise<RawResponse> {
  return raw(base, 'GET', kvPath(key, query));
}

function del(base: string, key: string, o: { context?: string; query?: string } = {}): Promise<RawResponse> {
  return raw(base, 'DELETE', kvPath(key, o.query), {
    headers: o.context === undefined ? {} : { 'x-ringkv-context': o.context },
  });
}

/** PUT and insist on 204 with a context; returns that context. */
async function putOk(base: string, key: string, value: Uint8Array | string, o: PutOpts = {}): Promise<string> {
  const res = await put(base, key, value, o);
  expect(res.status, `PUT ${key}: ${res.text()}`).toBe(204);
  const ctx = res.header('x-ringkv-context');
  expect(ctx).toBeTruthy();
  return ctx as string;
}

interface SiblingsBody {
  context: string;
  siblings: { value: string; contentType: string; lastModified: string }[];
}

/** Checks every SPEC §2 rule of a 300 answer and returns its body. */
function expectSiblings(res: RawResponse): SiblingsBody {
  expect(res.status, res.text()).toBe(300);
  expect(res.header('content-type')).toBe('application/json');
  const body = res.json<SiblingsBody>();
  expect(Object.keys(body).sort()).toEqual(['context', 'siblings']);
  expect(typeof body.context).toBe('string');
  expect(body.context).not.toBe('');
  expect(res.header('x-ringkv-context')).toBe(body.context);
  expect(body.siblings.length).toBeGreaterThanOrEqual(2);
  for (const s of body.siblings) {
    expect(Object.keys(s).sort()).toEqual(['contentType', 'lastModified', 'value']);
    expect(Buffer.from(s.value, 'base64').toString('base64')).toBe(s.value);
    expect(typeof s.contentType).toBe('string');
    expect(s.lastModified).toMatch(ISO_8601);
    expect(Math.abs(Date.parse(s.lastModified) - Date.now())).toBeLessThan(24 * 3600 * 1000);
  }
  return body;
}

/** The sibling values (decoded, sorted) with their content types. */
function siblingSet(body: SiblingsBody): [string, string][] {
  return body.siblings.map((s) => [Buffer.from(s.value, 'base64').toString('utf8'), s.contentType] as [string, string]).sort();
}

let keySeq = 0;
/** A key no other test uses. */
const fresh = (name: string): string => `${name}:${++keySeq}:${Date.now()}`;

// ------------------------------------------------------------------------------------------

describe('HTTP API v1 on a real single node (n=3, default r=2 w=2, --max-value-bytes 1024)', () => {
  let cluster: TestCluster;
  let url: string;

  beforeAll(async () => {
    cluster = await startCluster({ nodes: 1, args: ['--max-value-bytes', String(MAX_VALUE_BYTES)] });
    url = cluster.urls[0] as string;
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  /** GET with r=all, as a comparable snapshot. */
  const snap = async (key: string): Promise<Snapshot> => snapshotOf(await get(url, key, 'r=all'));

  it('PUT answers 204 with X-Ringkv-Context; GET answers 200 with the exact bytes, Content-Type and a context', async () => {
    const key = fresh('basic');
    const value = binaryValue(1000);
    const res = await put(url, key, value, { contentType: 'application/vnd.ringkv.test+octet; charset=binary' });
    expect(res.status).toBe(204);
    expect(res.body.length).toBe(0);
    expect(res.header('x-ringkv-context')).toBeTruthy();

    const got = await get(url, key);
    expect(got.status).toBe(200);
    expect(got.header('content-type')).toBe('application/vnd.ringkv.test+octet; charset=binary');
    expect(got.header('x-ringkv-context')).toBeTruthy();
    expect(Buffer.compare(got.body, value)).toBe(0);
  });

  it('stores an empty value and returns it with its Content-Type', async () => {
    const key = fresh('empty');
    await putOk(url, key, Buffer.alloc(0), { contentType: 'text/plain' });
    const got = await get(url, key);
    expect(got.status).toBe(200);
    expect(got.body.length).toBe(0);
    expect(got.header('content-type')).toBe('text/plain');
    expect(got.header('content-length') ?? '0').toBe('0');
  });

  it('keeps bodies of any Content-Type as opaque bytes (JSON that does not parse, form data, no Content-Type)', async () => {
    const cases: [string | undefined, string][] = [
      ['application/json', '{not json'],
      ['application/x-www-form-urlencoded', 'a=1&b=%ZZ'],
      ['text/plain; charset=utf-8', 'héllo wörld'],
      ['multipart/form-data; boundary=x', '--x\r\n\r\nnot really\r\n--x--'],
    ];
    for (const [contentType, body] of cases) {
      const key = fresh('opaque');
      await putOk(url, key, body, contentType === undefined ? {} : { contentType });
      const got = await get(url, key);
      expect(got.status).toBe(200);
      expect(got.text()).toBe(body);
      expect(got.header('content-type')).toBe(contentType);
    }
    // Without a Content-Type the value is still stored byte for byte, typed as opaque bytes.
    const key = fresh('no-ct');
    await putOk(url, key, binaryValue(300));
    const got = await get(url, key);
    expect(got.status).toBe(200);
    expect(Buffer.compare(got.body, binaryValue(300))).toBe(0);
    expect(got.header('content-type')).toBe(OCTET);
  });

  it('a PUT with the context it got back replaces its own value (no sibling)', async () => {
    const key = fresh('own-context');
    const c1 = await putOk(url, key, 'one', { contentType: 'text/plain' });
    const c2 = await putOk(url, key, 'two', { contentType: 'text/plain', context: c1 });
    await putOk(url, key, 'three', { contentType: 'text/plain', context: c2 });
    const got = await get(url, key);
    expect(got.status).toBe(200);
    expect(got.text()).toBe('three');
  });

  it('a blind PUT on an existing key makes siblings (300), and a PUT with their context replaces them (200)', async () => {
    const key = fresh('siblings');
    await putOk(url, key, 'first', { contentType: 'text/plain' });
    await putOk(url, key, '{"second":true}', { contentType: 'application/json' });
    const res = await get(url, key);
    const body = expectSiblings(res);
    expect(siblingSet(body)).toEqual([
      ['first', 'text/plain'],
      ['{"second":true}', 'application/json'],
    ]);

    // A third blind write adds a third sibling; nothing is dropped.
    await putOk(url, key, 'third', { contentType: 'text/plain' });
    const three = expectSiblings(await get(url, key));
    expect(three.siblings).toHaveLength(3);

    await putOk(url, key, 'merged', { contentType: 'text/x-merged', context: three.context });
    const after = await get(url, key);
    expect(after.status).toBe(200);
    expect(after.text()).toBe('merged');
    expect(after.header('content-type')).toBe('text/x-merged');
  });

  it('a PUT with an older context does not drop a sibling that context has not seen', async () => {
    const key = fresh('stale-context');
    const c1 = await putOk(url, key, 'v1', { contentType: 'text/plain' });
    await putOk(url, key, 'concurrent', { contentType: 'text/plain' });
    // c1 covers v1 only: v1 is replaced, the concurrent sibling must survive.
    await putOk(url, key, 'v2', { contentType: 'text/plain', context: c1 });
    const body = expectSiblings(await get(url, key));
    expect(siblingSet(body).map(([v]) => v)).toEqual(['concurrent', 'v2']);
  });

  it('binary siblings come back base64-encoded exactly', async () => {
    const key = fresh('binary-siblings');
    const a = binaryValue(700);
    const b = Buffer.from([0, 255, 0, 255, 10, 13]);
    await putOk(url, key, a, { contentType: OCTET });
    await putOk(url, key, b, { contentType: 'image/x-test' });
    await putOk(url, key, Buffer.alloc(0), { contentType: 'text/plain' });
    const body = expectSiblings(await get(url, key));
    const values = body.siblings.map((s) => Buffer.from(s.value, 'base64').toString('hex')).sort();
    expect(values).toEqual([a.toString('hex'), b.toString('hex'), ''].sort());
  });

  it('a missing key is a 404 JSON error', async () => {
    const res = await get(url, fresh('never-written'));
    expect(errorOf(res)).toEqual(errorShape(404, 'NOT_FOUND'));
  });

  it('DELETE with the read context answers 204; then GET is 404 with the tombstone context, which a later PUT supersedes', async () => {
    const key = fresh('delete');
    await putOk(url, key, 'doomed', { contentType: 'text/plain' });
    const read = await get(url, key);
    const ctx = read.header('x-ringkv-context') as string;
    const res = await del(url, key, { context: ctx });
    expect(res.status).toBe(204);
    expect(res.body.length).toBe(0);

    const gone = await get(url, key);
    expect(errorOf(gone)).toEqual(errorShape(404, 'NOT_FOUND'));
    const tomb = gone.header('x-ringkv-context');
    expect(tomb).toBeTruthy();

    // The tombstone's context supersedes the delete: a single value, not a sibling of it.
    await putOk(url, key, 'reborn', { contentType: 'text/plain', context: tomb as string });
    const back = await get(url, key);
    expect(back.status).toBe(200);
    expect(back.text()).toBe('reborn');
  });

  it('DELETE of a key that never existed answers 204, and DELETE of siblings with their context removes them all', async () => {
    expect((await del(url, fresh('never'))).status).toBe(204);
    const key = fresh('delete-siblings');
    await putOk(url, key, 'a');
    await putOk(url, key, 'b');
    const body = expectSiblings(await get(url, key));
    expect((await del(url, key, { context: body.context })).status).toBe(204);
    const gone = await get(url, key);
    expect(errorOf(gone)).toEqual(errorShape(404, 'NOT_FOUND'));
    expect(gone.header('x-ringkv-context')).toBeTruthy();
  });

  it('a blind DELETE is a versioned write: 204 with a context, and never an error', async () => {
    const key = fresh('blind-delete');
    await putOk(url, key, 'v');
    const res = await del(url, key);
    expect(res.status).toBe(204);
    expect(res.header('x-ringkv-context')).toBeTruthy();
  });

  it('keys are percent-encoded UTF-8 path segments: reserved characters, %, spaces, emoji and dot segments round-trip as distinct keys', async () => {
    const prefix = fresh('odd');
    const keys = ODD_KEYS.map((k) => `${prefix}|${k}`);
    // Bare odd keys too (a key may be just "/" or ".."), written under a unique value each.
    const bare = [...ODD_KEYS];
    for (const k of keys) await putOk(url, k, `value of ${k}`, { contentType: 'text/plain; charset=utf-8' });
    for (const k of keys) {
      const got = await get(url, k);
      expect(got.status, `GET ${JSON.stringify(k)}`).toBe(200);
      expect(got.text()).toBe(`value of ${k}`);
    }
    const tag = `${prefix}-bare`;
    for (const k of bare) {
      const existing = await get(url, k);
      const ctx = existing.header('x-ringkv-context');
      await putOk(url, k, `${tag} ${k}`, ctx === undefined ? {} : { context: ctx });
    }
    for (const k of bare) {
      const got = await get(url, k);
      expect(got.status, `GET bare ${JSON.stringify(k)}: ${got.text().slice(0, 200)}`).toBe(200);
      expect(got.text()).toBe(`${tag} ${k}`);
    }
  });

  it('percent-encoding is decoded, not compared raw: lower- and upper-case escapes name the same key', async () => {
    const key = `${fresh('case')}:é/ü`;
    await putOk(url, key, 'accent');
    const upper = encodeURIComponent(key);
    const lower = upper.replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase());
    expect(lower).not.toBe(upper);
    // Characters that need no escaping may be escaped anyway.
    const overEncoded = upper.replace(/[a-z]/g, (c) => `%${c.charCodeAt(0).toString(16)}`);
    for (const path of [upper, lower, overEncoded]) {
      const res = await raw(url, 'GET', `/v1/kv/${path}`);
      expect(res.status, path).toBe(200);
      expect(res.text()).toBe('accent');
    }
  });

  it('keys of exactly 512 UTF-8 bytes are accepted; 513 bytes are 400 BAD_KEY and nothing is stored', async () => {
    const ok = ['k'.repeat(512), 'é'.repeat(256), '😀'.repeat(128), `${'x'.repeat(509)}€`];
    for (const k of ok) {
      expect(Buffer.byteLength(k)).toBe(512);
      await putOk(url, k, 'max');
      expect((await get(url, k)).text()).toBe('max');
      expect((await del(url, k, { context: (await get(url, k)).header('x-ringkv-context') as string })).status).toBe(204);
    }
    const tooLong = ['k'.repeat(513), `${'é'.repeat(256)}a`, `${'😀'.repeat(128)}a`, `${'x'.repeat(510)}€`, 'k'.repeat(5000)];
    for (const k of tooLong) {
      expect(Buffer.byteLength(k)).toBeGreaterThan(512);
      for (const method of ['PUT', 'GET', 'DELETE']) {
        const res = await raw(url, method, kvPath(k), method === 'PUT' ? { body: 'x' } : {});
        expect(errorOf(res), `${method} ${Buffer.byteLength(k)}-byte key`).toEqual(errorShape(400, 'BAD_KEY'));
      }
      // Nothing stored under the key, nor under its 512-byte prefix.
      expect((await get(url, Buffer.from(k).subarray(0, 512).toString())).status).not.toBe(200);
    }
  });

  it('an empty key is 400 BAD_KEY for PUT, GET and DELETE', async () => {
    for (const method of ['PUT', 'GET', 'DELETE']) {
      const res = await raw(url, method, '/v1/kv/', method === 'PUT' ? { body: 'x' } : {});
      expect(errorOf(res), method).toEqual(errorShape(400, 'BAD_KEY'));
      const withQuery = await raw(url, method, '/v1/kv/?r=1&w=1', method === 'PUT' ? { body: 'x' } : {});
      expect(errorOf(withQuery), `${method} with query`).toEqual(errorShape(400, 'BAD_KEY'));
    }
  });

  // fastify's router rejects these URLs before any route runs; app.ts's frameworkErrors answers
  // them in SPEC §2 form.
  it('invalid percent-encoding in a key is 400 BAD_KEY with a SPEC §2 JSON error body', async () => {
    for (const bad of ['%ZZ', '%', 'abc%4', '%C3', '%FF', '%ED%A0%80', 'ok%C3%28']) {
      for (const method of ['PUT', 'GET', 'DELETE']) {
        const res = await raw(url, method, `/v1/kv/${bad}`, method === 'PUT' ? { body: 'x' } : {});
        expect(errorOf(res), `${method} /v1/kv/${bad}`).toEqual(errorShape(400, 'BAD_KEY'));
      }
    }
  });

  it('invalid percent-encoding in a key is rejected with 400 and stores nothing', async () => {
    const prefix = encodeURIComponent(fresh('bad-escape'));
    for (const bad of ['%ZZ', '%', '%C3', '%FF', '%ED%A0%80']) {
      const res = await raw(url, 'PUT', `/v1/kv/${prefix}${bad}`, { body: 'x' });
      expect(res.status, bad).toBe(400);
      expect((await get(url, decodeURIComponent(prefix) + bad)).status).toBe(404);
    }
  });

  it('r and w accept 1..n, one, quorum, all (capped to the one node that exists)', async () => {
    const key = fresh('quorums');
    for (const w of GOOD_QUORUMS) {
      const got = await get(url, key, `r=${w}`);
      const ctx = got.header('x-ringkv-context');
      await putOk(url, key, `w=${w}`, { query: `w=${w}`, ...(ctx ? { context: ctx } : {}) });
    }
    for (const r of GOOD_QUORUMS) {
      const got = await get(url, key, `r=${r}`);
      expect(got.status, `r=${r}`).toBe(200);
      expect(got.text()).toBe('w=all');
    }
    for (const w of GOOD_QUORUMS) {
      const k = fresh('del-quorum');
      await putOk(url, k, 'x');
      const ctx = (await get(url, k)).header('x-ringkv-context') as string;
      expect((await del(url, k, { context: ctx, query: `w=${w}` })).status, `DELETE w=${w}`).toBe(204);
    }
  });

  it('other r/w values, and repeated r/w, are 400 BAD_QUERY and change nothing', async () => {
    const key = fresh('bad-quorum');
    await putOk(url, key, 'original', { contentType: 'text/plain' });
    const before = await snap(key);
    const queries = [...BAD_QUORUMS.map((v) => encodeURIComponent(v)), '1&X=1'.replace('X', 'w'), '2&X=2'.replace('X', 'w')];
    for (const q of queries) {
      const rq = q.includes('&') ? q.replace(/w=/g, 'r=') : q;
      const g = await get(url, key, `r=${rq}`);
      expect(errorOf(g), `GET r=${rq}`).toEqual(errorShape(400, 'BAD_QUERY'));
      const p = await put(url, key, 'must not be stored', { query: `w=${q}` });
      expect(errorOf(p), `PUT w=${q}`).toEqual(errorShape(400, 'BAD_QUERY'));
      const d = await del(url, key, { query: `w=${q}`, context: before.context as string });
      expect(errorOf(d), `DELETE w=${q}`).toEqual(errorShape(400, 'BAD_QUERY'));
    }
    expect(await snap(key)).toEqual(before);
  });

  it('timeout must be a positive integer of ms, given once: otherwise 400 BAD_QUERY and nothing changes', async () => {
    const key = fresh('timeout');
    await putOk(url, key, 'kept', { contentType: 'text/plain', query: 'timeout=10000' });
    expect((await get(url, key, 'timeout=10000')).status).toBe(200);
    const before = await snap(key);
    const queries = [...BAD_TIMEOUTS.map((t) => `timeout=${encodeURIComponent(t)}`), 'timeout=1000&timeout=1000'];
    for (const q of queries) {
      expect(errorOf(await get(url, key, q)), `GET ${q}`).toEqual(errorShape(400, 'BAD_QUERY'));
      expect(errorOf(await put(url, key, 'no', { query: q })), `PUT ${q}`).toEqual(errorShape(400, 'BAD_QUERY'));
      expect(errorOf(await del(url, key, { query: q, context: before.context as string })), `DELETE ${q}`).toEqual(
        errorShape(400, 'BAD_QUERY'),
      );
    }
    expect(await snap(key)).toEqual(before);
  });

  it('a malformed X-Ringkv-Context is 400 BAD_CONTEXT on PUT and DELETE, and nothing is stored', async () => {
    const key = fresh('bad-context');
    const ctx = await putOk(url, key, 'original', { contentType: 'text/plain' });
    const before = await snap(key);
    for (const bad of badContexts(ctx)) {
      const p = await put(url, key, 'must not be stored', { context: bad });
      expect(errorOf(p), `PUT context ${JSON.stringify(bad)}`).toEqual(errorShape(400, 'BAD_CONTEXT'));
      const d = await del(url, key, { context: bad });
      expect(errorOf(d), `DELETE context ${JSON.stringify(bad)}`).toEqual(errorShape(400, 'BAD_CONTEXT'));
      // A new key stays absent too.
      const n = await put(url, `${key}-new`, 'must not be stored', { context: bad });
      expect(n.status).toBe(400);
    }
    // The header given twice is not one context either.
    const twice = await put(url, key, 'no', { headers: { 'x-ringkv-context': [ctx, ctx] } });
    expect(errorOf(twice)).toEqual(errorShape(400, 'BAD_CONTEXT'));
    expect(await snap(key)).toEqual(before);
    expect((await get(url, `${key}-new`)).status).toBe(404);
  });

  it('a value larger than --max-value-bytes is 413 VALUE_TOO_LARGE and nothing is stored; the limit itself is fine', async () => {
    const key = fresh('too-large');
    await putOk(url, key, Buffer.alloc(MAX_VALUE_BYTES, 7), { contentType: OCTET });
    const before = await snap(key);
    expect(Buffer.from(before.body, 'base64').length).toBe(MAX_VALUE_BYTES);

    for (const size of [MAX_VALUE_BYTES + 1, 4 * MAX_VALUE_BYTES, 2 * 1024 * 1024]) {
      // The server answers 413 as soon as it sees Content-Length and closes the connection; a
      // client still writing a 2 MiB body may see that close (EPIPE/ECONNRESET) before it reads
      // the 413. Either way the value was refused, and the snapshot below proves nothing changed.
      const refused = async (k: string, contentType: string): Promise<void> => {
        try {
          const res = await put(url, k, Buffer.alloc(size, 9), { contentType });
          expect(errorOf(res), `${size} bytes`).toEqual(errorShape(413, 'VALUE_TOO_LARGE'));
        } catch (err) {
          if (size <= 64 * 1024) throw err;
          expect((err as NodeJS.ErrnoException).code).toMatch(/^(EPIPE|ECONNRESET)$/);
        }
      };
      await refused(key, OCTET);
      await refused(`${key}-new`, 'text/plain');
    }
    // Without a Content-Length (chunked), the limit still holds.
    const chunked = await put(url, key, Buffer.alloc(MAX_VALUE_BYTES + 1, 9), { headers: { 'transfer-encoding': 'chunked' } });
    expect(errorOf(chunked)).toEqual(errorShape(413, 'VALUE_TOO_LARGE'));
    // With a context it is still rejected before anything is written.
    const withCtx = await put(url, key, Buffer.alloc(MAX_VALUE_BYTES + 1), { context: before.context as string });
    expect(errorOf(withCtx)).toEqual(errorShape(413, 'VALUE_TOO_LARGE'));

    expect(await snap(key)).toEqual(before);
    expect((await get(url, `${key}-new`)).status).toBe(404);
  });

  it('a single node works on its own: default r=2/w=2 and r/w=all succeed (capped to one replica)', async () => {
    const key = fresh('single');
    await putOk(url, key, 'alone');
    expect((await get(url, key)).text()).toBe('alone');
    const ctx = (await get(url, key, 'r=all')).header('x-ringkv-context') as string;
    await putOk(url, key, 'alone again', { query: 'w=all', context: ctx });
    expect((await get(url, key, 'r=3')).text()).toBe('alone again');
  });

  it('GET /v1/health is 200 {"status":"ok","node":<id>}', async () => {
    const res = await raw(url, 'GET', '/v1/health');
    expect(res.status).toBe(200);
    expect(res.header('content-type')).toMatch(/^application\/json/);
    expect(res.json()).toEqual({ status: 'ok', node: 'n1' });
  });

  it('GET /v1/cluster describes this node, its members, the ring, hints and transfers', async () => {
    const res = await raw(url, 'GET', '/v1/cluster');
    expect(res.status).toBe(200);
    const body = res.json<{
      node: string;
      members: { id: string; address: string; zone: string; status: string }[];
      ring: unknown;
      hints: { pending: number };
      transfers: { pending: number };
    }>();
    expect(body.node).toBe('n1');
    expect(body.members).toHaveLength(1);
    expect(body.members[0]).toMatchObject({ id: 'n1', address: cluster.nodes[0]?.address, zone: 'a', status: 'up' });
    expect(typeof body.ring).toBe('object');
    expect(body.ring).not.toBeNull();
    expect(Object.keys(body.ring as object).length).toBeGreaterThan(0);
    expect(Number.isInteger(body.hints.pending) && body.hints.pending >= 0).toBe(true);
    expect(Number.isInteger(body.transfers.pending) && body.transfers.pending >= 0).toBe(true);
  });

  it('GET /metrics is Prometheus text; every metric is ringkv_*; requests are counted and timed by op and status', async () => {
    // Make sure some labelled samples exist.
    const key = fresh('metrics');
    await putOk(url, key, 'm');
    expect((await get(url, key)).status).toBe(200);
    const missing = fresh('metrics-missing');

    const scrape = async () => {
      const res = await raw(url, 'GET', '/metrics');
      expect(res.status).toBe(200);
      expect(res.header('content-type')).toMatch(/^text\/plain(;|$)/);
      return parseExposition(res.text());
    };
    const first = await scrape();
    expect(first.badLines).toEqual([]);
    expect(first.types.size).toBeGreaterThan(0);
    for (const name of first.types.keys()) expect(name).toMatch(/^ringkv_/);
    for (const s of first.samples) expect(s.name).toMatch(/^ringkv_/);
    for (const s of first.samples) expect(first.types.has(familyOf(s.name, first.types)), s.name).toBe(true);

    // A counter with op and status labels, and a histogram with an op label.
    const counterOf = (e: typeof first, op: string, status: string): number =>
      e.samples
        .filter((s) => e.types.get(familyOf(s.name, e.types)) === 'counter')
        .filter((s) => s.labels.op === op && s.labels.status === status)
        .reduce((sum, s) => sum + s.value, 0);
    expect(counterOf(first, 'put', '204')).toBeGreaterThanOrEqual(1);
    expect(counterOf(first, 'get', '200')).toBeGreaterThanOrEqual(1);
    const histos = [...first.types].filter(([, t]) => t === 'histogram').map(([n]) => n);
    const timedOps = new Set(
      first.samples.filter((s) => histos.some((h) => s.name === `${h}_bucket`) && s.labels.op).map((s) => s.labels.op),
    );
    expect([...timedOps]).toEqual(expect.arrayContaining(['put', 'get']));

    // Errors are counted under their status.
    const before404 = counterOf(first, 'get', '404');
    expect((await get(url, missing)).status).toBe(404);
    const before400 = counterOf(first, 'put', '400');
    expect((await put(url, missing, 'x', { query: 'w=zero' })).status).toBe(400);
    const second = await scrape();
    expect(counterOf(second, 'get', '404')).toBeGreaterThanOrEqual(before404 + 1);
    expect(counterOf(second, 'put', '400')).toBeGreaterThanOrEqual(before400 + 1);
  });

  it('internal routes without the cluster secret answer 401 JSON and do nothing; with it, the same message is applied', async () => {
    const key = fresh('forged');
    await putOk(url, key, 'genuine', { contentType: 'text/plain' });
    const before = await snap(key);
    const forged = forgedReplicaWrite(key, before.context as string, 'forged');
    for (const authorization of wrongAuthorizations(cluster.secret)) {
      for (const route of ['replica-write', 'replica-write-batch', 'kv-put', 'replica-read', 'gossip', 'no-such-route']) {
        const res = await raw(url, 'POST', `/internal/${route}`, {
          headers: { 'content-type': 'application/octet-stream', ...(authorization === undefined ? {} : { authorization }) },
          body: forged,
        });
        expect(errorOf(res), `${route} with ${JSON.stringify(authorization)}`).toEqual(errorShape(401, 'UNAUTHORIZED'));
      }
      // Other methods and nested paths are behind the secret too.
      const g = await raw(url, 'GET', '/internal/replica-read', authorization === undefined ? {} : { headers: { authorization } });
      expect(g.status).toBe(401);
    }
    expect(await snap(key)).toEqual(before);

    // Control: the forged message is well-formed, so the 401s above are what kept it out.
    const applied = await raw(url, 'POST', '/internal/replica-write', {
      headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${cluster.secret}` },
      body: forged,
    });
    expect(applied.status).toBe(200);
    const after = await get(url, key);
    expect(after.status).toBe(200);
    expect(after.text()).toBe('forged');
  });

  it('admin routes without Authorization: Bearer <secret> answer 401 JSON and change nothing', async () => {
    const members = async () => (await clusterView(url)).members.map((m) => `${m.id}:${m.status}`);
    const before = await members();
    for (const authorization of wrongAuthorizations(cluster.secret)) {
      const headers = authorization === undefined ? {} : { authorization };
      for (const path of ['/v1/cluster/leave', '/v1/cluster/remove/n1', '/v1/cluster/remove/nobody']) {
        const res = await raw(url, 'POST', path, { headers });
        expect(errorOf(res), `${path} with ${JSON.stringify(authorization)}`).toEqual(errorShape(401, 'UNAUTHORIZED'));
      }
    }
    expect(await members()).toEqual(before);
    expect((await raw(url, 'GET', '/v1/health')).status).toBe(200);
  });

  it('the cluster secret never appears in the node log', () => {
    const log = cluster.nodes[0]?.output() ?? '';
    expect(log.length).toBeGreaterThan(0);
    expect(log).not.toContain(cluster.secret);
  });
});

// ------------------------------------------------------------------------------------------

describe('HTTP API v1 on a real 3-node cluster (zones a, b, c)', () => {
  let cluster: TestCluster;
  let urls: string[];
  /** Every key acknowledged with w >= 2, and the value it must read back as. */
  const acked = new Map<string, string>();

  beforeAll(async () => {
    cluster = await startCluster({ nodes: 3 });
    urls = cluster.urls;
    await waitQuorumReady(urls);
  }, 90_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  const url = (i: number): string => urls[i] as string;

  it('every node describes the same members, addresses, zones and statuses in /v1/cluster', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await raw(url(i), 'GET', '/v1/cluster');
      expect(res.status).toBe(200);
      const body = res.json<{
        node: string;
        members: { id: string; address: string; zone: string; status: string }[];
        hints: { pending: number };
        transfers: { pending: number };
      }>();
      expect(body.node).toBe(`n${i + 1}`);
      const members = body.members.map((m) => ({ id: m.id, address: m.address, zone: m.zone, status: m.status }));
      expect(members.sort((a, b) => a.id.localeCompare(b.id))).toEqual(
        cluster.nodes.map((n, j) => ({ id: n.id, address: n.address, zone: ['a', 'b', 'c'][j], status: 'up' })),
      );
      expect(typeof body.hints.pending).toBe('number');
      expect(typeof body.transfers.pending).toBe('number');
    }
  });

  it('counts the replica batches a coordinator sends in ringkv_replica_batch_items', async () => {
    const batches = async (): Promise<{ count: number; sum: number }> => {
      const e = parseExposition((await raw(url(0), 'GET', '/metrics')).text());
      const one = (name: string): number => e.samples.find((x) => x.name === name)?.value ?? Number.NaN;
      return { count: one('ringkv_replica_batch_items_count'), sum: one('ringkv_replica_batch_items_sum') };
    };
    const before = await batches();
    // n1 coordinates: its replica writes to n2 and n3 leave in batches of at least one item.
    await putOk(url(0), fresh('batch-metric'), 'b', { query: 'w=all' });
    const after = await batches();
    expect(after.count).toBeGreaterThanOrEqual(before.count + 1);
    expect(after.sum).toBeGreaterThanOrEqual(before.sum + 2);
  });

  it('any node gives the same answers: written via n1, read via n2 and n3 with r=all', async () => {
    const key = fresh('any-node');
    const value = binaryValue(2000);
    await putOk(url(0), key, value, { contentType: 'application/x-ringkv-bin' });
    acked.set(key, value.toString('base64'));
    const answers = await Promise.all([1, 2].map((i) => get(url(i), key, 'r=all')));
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(Buffer.compare(a.body, value)).toBe(0);
      expect(a.header('content-type')).toBe('application/x-ringkv-bin');
    }
    expect(answers[0]?.header('x-ringkv-context')).toBe(answers[1]?.header('x-ringkv-context'));

    // Errors are the same everywhere too.
    for (let i = 0; i < 3; i++) {
      expect(errorOf(await get(url(i), fresh('nowhere'), 'r=all'))).toEqual(errorShape(404, 'NOT_FOUND'));
      expect(errorOf(await raw(url(i), 'GET', '/v1/kv/'))).toEqual(errorShape(400, 'BAD_KEY'));
      expect(errorOf(await get(url(i), key, 'r=4'))).toEqual(errorShape(400, 'BAD_QUERY'));
      expect(errorOf(await put(url(i), key, 'x', { context: '!!!' }))).toEqual(errorShape(400, 'BAD_CONTEXT'));
    }
  });

  it('blind writes through different nodes become siblings everywhere; a PUT with their context through a third node resolves them', async () => {
    const key = fresh('cluster-siblings');
    await putOk(url(0), key, 'from n1', { contentType: 'text/plain' });
    await putOk(url(1), key, 'from n2', { contentType: 'text/plain' });
    const views = await Promise.all([0, 1, 2].map((i) => get(url(i), key, 'r=all')));
    const bodies = views.map(expectSiblings);
    for (const b of bodies) expect(siblingSet(b).map(([v]) => v)).toEqual(['from n1', 'from n2']);
    expect(new Set(bodies.map((b) => b.context)).size).toBe(1);

    await putOk(url(2), key, 'resolved', { contentType: 'text/plain', context: bodies[0]?.context as string });
    acked.set(key, Buffer.from('resolved').toString('base64'));
    for (let i = 0; i < 3; i++) {
      const got = await get(url(i), key, 'r=all');
      expect(got.status).toBe(200);
      expect(got.text()).toBe('resolved');
    }
  });

  it('a delete through one node is a 404 with the tombstone context through every node', async () => {
    const key = fresh('cluster-delete');
    await putOk(url(0), key, 'short-lived');
    const ctx = (await get(url(1), key, 'r=all')).header('x-ringkv-context') as string;
    expect((await del(url(2), key, { context: ctx })).status).toBe(204);
    for (let i = 0; i < 3; i++) {
      const gone = await get(url(i), key, 'r=all');
      expect(errorOf(gone)).toEqual(errorShape(404, 'NOT_FOUND'));
      expect(gone.header('x-ringkv-context')).toBeTruthy();
    }
  });

  it('a forged replica write without the secret is refused by every node and changes nothing', async () => {
    const key = fresh('cluster-forged');
    await putOk(url(0), key, 'genuine', { contentType: 'text/plain', query: 'w=all' });
    acked.set(key, Buffer.from('genuine').toString('base64'));
    const before = snapshotOf(await get(url(0), key, 'r=all'));
    const forged = forgedReplicaWrite(key, before.context as string, 'forged');
    for (let i = 0; i < 3; i++) {
      for (const authorization of [undefined, 'Bearer not-the-cluster-secret', `Bearer ${cluster.secret}0`]) {
        const res = await raw(url(i), 'POST', '/internal/replica-write', {
          headers: { 'content-type': 'application/octet-stream', ...(authorization === undefined ? {} : { authorization }) },
          body: forged,
        });
        expect(errorOf(res)).toEqual(errorShape(401, 'UNAUTHORIZED'));
      }
    }
    for (let i = 0; i < 3; i++) expect(snapshotOf(await get(url(i), key, 'r=all'))).toEqual(before);
  });

  it('admin routes without the bearer secret answer 401 on every node and remove no one', async () => {
    for (let i = 0; i < 3; i++) {
      for (const authorization of [undefined, 'Bearer wrong-secret-123', `Basic ${cluster.secret}`, cluster.secret]) {
        const headers = authorization === undefined ? {} : { authorization };
        expect(errorOf(await raw(url(i), 'POST', '/v1/cluster/remove/n3', { headers }))).toEqual(errorShape(401, 'UNAUTHORIZED'));
        expect(errorOf(await raw(url(i), 'POST', '/v1/cluster/leave', { headers }))).toEqual(errorShape(401, 'UNAUTHORIZED'));
      }
    }
    expect(await converged(urls, ['n1', 'n2', 'n3'])).toBe(true);
    for (const n of cluster.nodes) expect(n.running).toBe(true);
  });

  it('w=all with one node down is a 503 QUORUM_FAILED (needed 3) without waiting for the timeout', async () => {
    const key = fresh('w-all');
    await putOk(url(0), key, 'before', { query: 'w=all' });
    acked.set(key, Buffer.from('before').toString('base64'));
    await cluster.nodes[1]?.kill('SIGKILL');
    const started = Date.now();
    const res = await put(url(0), fresh('w-all-new'), 'needs all three', { query: 'w=all&timeout=30000' });
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(errorOf(res)).toEqual(errorShape(503, 'QUORUM_FAILED'));
    const body = res.json<ErrorBody>();
    expect(body.error.needed).toBe(3);
    // At least this node stored it. Once n2 is known to be down, the round is settled before
    // n3 answers and the body says 1 although n1 and n3 both store the write.
    expect(body.error.answered).toBeGreaterThanOrEqual(1);
    expect(body.error.answered).toBeLessThan(3);
    // A read with r=all fails the same way; r=2 (default) still works with two replicas up.
    const r = await get(url(0), key, 'r=all&timeout=30000');
    expect(errorOf(r)).toEqual(errorShape(503, 'QUORUM_FAILED'));
    expect(r.json<ErrorBody>().error.needed).toBe(3);
    expect(r.json<ErrorBody>().error.answered).toBeLessThan(3);
    await waitFor('n1 to see n2 down', async () => (await clusterView(url(0))).members.some((m) => m.id === 'n2' && m.status === 'down'), 30_000, 200);
    const ok = await get(url(0), key);
    expect(ok.status).toBe(200);
    expect(ok.text()).toBe('before');
  });

  it('with two nodes down, default-quorum PUT, DELETE and GET are 503 saying how many answered and were needed; r=1 and w=1 still work', async () => {
    const key = fresh('two-down');
    await putOk(url(0), key, 'stored', { contentType: 'text/plain' });
    acked.set(key, Buffer.from('stored').toString('base64'));
    await cluster.nodes[2]?.kill('SIGKILL');
    await waitFor(
      'n1 to see every other member down',
      async () => (await clusterView(url(0))).members.every((m) => m.id === 'n1' || m.status !== 'up'),
      30_000,
      200,
    );
    // Failing writes go to another key, so the acknowledged value above stays the one to check.
    const other = fresh('two-down-unacked');
    const p = await put(url(0), other, 'not enough replicas', { contentType: 'text/plain' });
    expect(errorOf(p)).toEqual(errorShape(503, 'QUORUM_FAILED'));
    expect(p.json<ErrorBody>().error).toMatchObject({ answered: 1, needed: 2 });
    expect(p.json<ErrorBody>().error.message).toMatch(/1\D+2/);
    // SPEC §2: a failed write may still have been stored on some replicas, and says so.
    expect(p.json<ErrorBody>().error.message).toMatch(/may still have been stored on some replicas/);

    const d = await del(url(0), other);
    expect(errorOf(d)).toEqual(errorShape(503, 'QUORUM_FAILED'));
    expect(d.json<ErrorBody>().error).toMatchObject({ answered: 1, needed: 2 });
    expect(d.json<ErrorBody>().error.message).toMatch(/may still have been stored on some replicas/);

    // This node's own replica answers; the two dead ones do not.
    const g = await get(url(0), key);
    expect(errorOf(g)).toEqual(errorShape(503, 'QUORUM_FAILED'));
    expect(g.json<ErrorBody>().error).toMatchObject({ answered: 1, needed: 2 });
    expect(g.json<ErrorBody>().error.message).not.toMatch(/stored/);

    // Enough replicas for w=1/r=1: accepted.
    const one = await get(url(0), key, 'r=1');
    expect(one.status).toBe(200);
    expect(one.text()).toBe('stored');
    await putOk(url(0), fresh('w1'), 'one is enough', { query: 'w=1' });
    // Health and cluster views need no quorum.
    expect((await raw(url(0), 'GET', '/v1/health')).status).toBe(200);
    expect((await raw(url(0), 'GET', '/v1/cluster')).status).toBe(200);
  });

  it('after kill -9 and restart, every write acknowledged with w >= 2 is still there through every node', async () => {
    await cluster.nodes[1]?.restart();
    await cluster.nodes[2]?.restart();
    await waitFor('cluster convergence after restart', () => converged(urls, ['n1', 'n2', 'n3']), 30_000, 200);
    await waitQuorumReady(urls);
    expect(acked.size).toBeGreaterThanOrEqual(4);
    for (const [key, value] of acked) {
      for (let i = 0; i < 3; i++) {
        const got = await get(url(i), key, 'r=all');
        // The 503 write above may or may not have been stored somewhere; acked values must survive.
        if (got.status === 300) {
          const values = got.json<SiblingsBody>().siblings.map((s) => s.value);
          expect(values, `${key} via n${i + 1}`).toContain(value);
        } else {
          expect(got.status, `${key} via n${i + 1}`).toBe(200);
          expect(got.body.toString('base64'), `${key} via n${i + 1}`).toBe(value);
        }
      }
    }
  });

  it('POST /v1/cluster/remove/{id} with the secret drops a dead member (202); the rest keep serving', async () => {
    await cluster.nodes[2]?.kill('SIGKILL');
    await waitFor('n1 to see n3 down', async () => (await clusterView(url(0))).members.some((m) => m.id === 'n3' && m.status === 'down'), 30_000, 200);
    const res = await raw(url(0), 'POST', '/v1/cluster/remove/n3', { headers: { authorization: `Bearer ${cluster.secret}` } });
    expect(res.status, res.text()).toBe(202);
    await waitFor(
      'n1 and n2 to forget n3',
      async () => {
        const views = await Promise.all([0, 1].map((i) => clusterView(url(i))));
        return views.every((v) => !v.members.some((m) => m.id === 'n3' && m.status !== 'down') && v.members.every((m) => m.id !== 'n3'));
      },
      30_000,
      200,
    );
    // Two replicas exist now: default w=2 and r=all succeed.
    const key = fresh('after-remove');
    await putOk(url(0), key, 'two nodes');
    const got = await get(url(1), key, 'r=all');
    expect(got.status).toBe(200);
    expect(got.text()).toBe('two nodes');
    const unknown = await raw(url(0), 'POST', '/v1/cluster/remove/no-such-node', { headers: { authorization: `Bearer ${cluster.secret}` } });
    expect(errorOf(unknown)).toEqual(errorShape(404, 'NOT_FOUND'));
  });

  it('POST /v1/cluster/leave with the secret answers 202; the node leaves, shuts down, and its data stays served', async () => {
    const key = fresh('before-leave');
    await putOk(url(0), key, 'must survive the leave', { query: 'w=all' });
    const res = await raw(url(1), 'POST', '/v1/cluster/leave', { headers: { authorization: `Bearer ${cluster.secret}` } });
    expect(res.status, res.text()).toBe(202);
    await waitFor('n2 to shut down after leaving', () => cluster.nodes[1]?.running === false, 30_000, 200);
    await waitFor('n1 to stop counting n2 as up', async () => (await clusterView(url(0))).members.every((m) => m.id !== 'n2' || m.status !== 'up'), 30_000, 200);
    const got = await get(url(0), key, 'r=all');
    expect(got.status).toBe(200);
    expect(got.text()).toBe('must survive the leave');
    await putOk(url(0), fresh('after-leave'), 'still writable');
  });

  it('the cluster secret never appears in any node log, even after failed auth attempts and restarts', () => {
    for (const n of cluster.nodes) {
      const log = n.output();
      expect(log.length).toBeGreaterThan(0);
      expect(log, n.id).not.toContain(cluster.secret);
    }
  });
});

// ------------------------------------------------------------------------------------------

describe('HTTP API v1 on a 3-node cluster with --n 2 --hinted-handoff false (some requests are forwarded to a replica)', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startCluster({ nodes: 3, args: ['--n', '2', '--hinted-handoff', 'false'] });
    await waitQuorumReady(cluster.urls);
  }, 90_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('any node gives the same answers for every key: siblings, resolution, deletes and errors', async () => {
    const urls = cluster.urls;
    // Enough keys that every node is a non-replica (forwarding) coordinator for some of them.
    const keys = Array.from({ length: 24 }, (_, i) => fresh(`fwd${i}`));
    await Promise.all(
      keys.map(async (key, i) => {
        const a = urls[i % 3] as string;
        const b = urls[(i + 1) % 3] as string;
        const c = urls[(i + 2) % 3] as string;
        await putOk(a, key, `via ${a}`, { contentType: 'text/plain' });
        await putOk(b, key, `via ${b}`, { contentType: 'text/plain' });
        const views = await Promise.all(urls.map((u) => get(u, key, 'r=all')));
        const bodies = views.map(expectSiblings);
        for (const body of bodies) expect(siblingSet(body).map(([v]) => v)).toEqual([`via ${a}`, `via ${b}`].sort());
        expect(new Set(bodies.map((x) => x.context)).size, key).toBe(1);

        await putOk(c, key, 'resolved', { contentType: 'text/plain', context: bodies[0]?.context as string });
        const resolved = await Promise.all(urls.map((u) => get(u, key, 'r=all')));
        for (const r of resolved) {
          expect(r.status, key).toBe(200);
          expect(r.text()).toBe('resolved');
        }
        expect(new Set(resolved.map((r) => r.header('x-ringkv-context'))).size).toBe(1);

        expect((await del(a, key, { context: resolved[0]?.header('x-ringkv-context') as string })).status).toBe(204);
        for (const u of urls) {
          const gone = await get(u, key, 'r=all');
          expect(errorOf(gone), key).toEqual(errorShape(404, 'NOT_FOUND'));
          expect(gone.header('x-ringkv-context')).toBeTruthy();
        }
        // Rejected before anything is forwarded or stored.
        expect(errorOf(await put(b, key, 'x', { query: 'w=3' }))).toEqual(errorShape(400, 'BAD_QUERY'));
        expect(errorOf(await put(c, key, 'x', { context: '!!!' }))).toEqual(errorShape(400, 'BAD_CONTEXT'));
        expect(errorOf(await get(b, key, 'r=all'))).toEqual(errorShape(404, 'NOT_FOUND'));
      }),
    );
  });

  it('with a node killed, quorum failures through any node (forwarded or not) are the same 503 JSON: needed 2, answered fewer', async () => {
    const urls = cluster.urls;
    await cluster.nodes[2]?.kill('SIGKILL');
    let failures = 0;
    for (let i = 0; i < 16; i++) {
      const via = urls[i % 2] as string;
      const res = await put(via, fresh(`fwd-down${i}`), 'x', { query: 'w=all' });
      if (res.status === 204) continue;
      failures++;
      expect(errorOf(res), res.text()).toEqual(errorShape(503, 'QUORUM_FAILED'));
      const e = res.json<ErrorBody>().error;
      expect(e.needed).toBe(2);
      expect(typeof e.answered).toBe('number');
      expect(e.answered).toBeLessThan(2);
    }
    // Without hinted handoff nothing stands in for n3, so the keys it replicates (about two
    // thirds of them) cannot get w=all.
    expect(failures).toBeGreaterThan(0);
  });
});
