/**
 * Public-API behaviour of the coordinator's routes that was once wrong, through fastify
 * inject() on an in-process single node (quorums are capped at its one member).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNodeConfig } from '../../../src/config.js';
import { keyFromUrl } from '../../../src/http/request-params.js';
import { RingkvNode } from '../../../src/node.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { MemoryStore } from '../../../src/storage/index.js';
import { decodeContext, encodeContext, MAX_CONTEXT_COUNTER, MAX_CONTEXT_ENTRIES, MAX_CONTEXT_LENGTH } from '../../../src/version/index.js';
import { freePort } from '../../helpers/ports.js';
import { kvPath } from '../../helpers/raw-http.js';

let node: RingkvNode;

beforeAll(async () => {
  const port = await freePort();
  node = new RingkvNode(parseNodeConfig(['--id', 'r1', '--listen', `127.0.0.1:${port}`, '--data', '/nonexistent/unused']), {
    store: new MemoryStore(),
    log: silentLogger(),
  });
  await node.start();
});

afterAll(async () => {
  await node?.stop();
});

type Req = { method: 'GET' | 'PUT' | 'DELETE'; url: string; headers?: Record<string, string>; payload?: string };

async function call(req: Req): Promise<{ status: number; context: string | undefined; body: string }> {
  const res = await node.http.inject(req);
  const ctx = res.headers['x-ringkv-context'];
  return { status: res.statusCode, context: typeof ctx === 'string' ? ctx : undefined, body: res.body };
}

describe('the key in the path', () => {
  it('is the same key whichever characters of the route prefix the client escaped', async () => {
    // %6B is "k" (an unreserved character: escaped or not, the same URI, RFC 3986 §6.2.2.2).
    // The router matches /v1/kv/* either way; the key must not move by the escape's length.
    expect(keyFromUrl('/v1/%6Bv/cart', '/v1/kv/')).toBe('cart');
    expect(keyFromUrl('/%761/kv/a%2Fb?r=1', '/v1/kv/')).toBe('a/b');
    const put = await call({ method: 'PUT', url: '/v1/%6Bv/escaped-prefix', headers: { 'content-type': 'text/plain' }, payload: 'v' });
    expect(put.status).toBe(204);
    const got = await call({ method: 'GET', url: kvPath('escaped-prefix') });
    expect(got.status).toBe(200);
    expect(got.body).toBe('v');
  });
});

describe('contexts the server hands out', () => {
  // Like the counter bound (public-api.test.ts, "no client context can make a key
  // unwritable"): a context the server accepted must not leave the key with a clock whose
  // context it then refuses, or every later read-modify-write of the key is a 400.
  it('are always accepted back: a write whose version would not fit a context is refused, and the key stays writable', async () => {
    // A context at the entry limit, plus the actor of the new write: one entry too many.
    const full = encodeContext(Object.fromEntries(Array.from({ length: MAX_CONTEXT_ENTRIES }, (_, i) => [`a${String(i).padStart(3, '0')}`, 1])));
    const refused = await call({ method: 'PUT', url: kvPath('wedged'), headers: { 'x-ringkv-context': full }, payload: 'first' });
    expect(refused.status).toBe(400);
    expect(refused.body).toContain('BAD_CONTEXT');
    expect((await call({ method: 'GET', url: kvPath('wedged') })).status).toBe(404);
    // The key is then written and read-modify-written as usual.
    expect((await call({ method: 'PUT', url: kvPath('wedged'), payload: 'first' })).status).toBe(204);
    const read = await call({ method: 'GET', url: kvPath('wedged') });
    expect(read.status).toBe(200);
    const next = await call({ method: 'PUT', url: kvPath('wedged'), headers: { 'x-ringkv-context': read.context as string }, payload: 'second' });
    expect(next.status, next.body).toBe(204);
  });

  /** A read-modify-write of `key` with the context a read hands out: it must succeed. */
  async function stillWritable(key: string): Promise<void> {
    const read = await call({ method: 'GET', url: kvPath(key) });
    expect(read.status).toBe(200);
    expect(() => decodeContext(read.context as string)).not.toThrow();
    const next = await call({ method: 'PUT', url: kvPath(key), headers: { 'x-ringkv-context': read.context as string }, payload: 'later' });
    expect(next.status, next.body).toBe(204);
  }

  it('are always accepted back: a context that would take this node\'s counter past the largest a context holds is refused', async () => {
    // Two writes through this node: the second is minted under the node's own actor.
    expect((await call({ method: 'PUT', url: kvPath('counted'), payload: 'one' })).status).toBe(204);
    const first = await call({ method: 'GET', url: kvPath('counted') });
    expect((await call({ method: 'PUT', url: kvPath('counted'), headers: { 'x-ringkv-context': first.context as string }, payload: 'two' })).status).toBe(204);
    const clock = decodeContext((await call({ method: 'GET', url: kvPath('counted') })).context as string);
    // A context naming every actor of the key, this node's at the largest counter accepted.
    const forged = encodeContext(Object.fromEntries(Object.keys(clock).map((a) => [a, MAX_CONTEXT_COUNTER])));
    const refused = await call({ method: 'PUT', url: kvPath('counted'), headers: { 'x-ringkv-context': forged }, payload: 'three' });
    expect(refused.status).toBe(400);
    expect(refused.body).toContain('BAD_CONTEXT');
    await stillWritable('counted');
  });

  it('are always accepted back: contexts that together would make the version longer than a context may be are refused', async () => {
    // Two contexts of 60 long actor names each, both within the limit on their own.
    const longActors = (tag: string): Record<string, number> =>
      Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`${tag}-${String(i).padStart(2, '0')}-${'x'.repeat(140)}`, 1]));
    const one = encodeContext(longActors('a'));
    const two = encodeContext(longActors('b'));
    expect(one.length).toBeLessThan(MAX_CONTEXT_LENGTH);
    expect(encodeContext({ ...longActors('a'), ...longActors('b') }).length).toBeGreaterThan(MAX_CONTEXT_LENGTH);
    expect((await call({ method: 'PUT', url: kvPath('long'), headers: { 'x-ringkv-context': one }, payload: 'one' })).status).toBe(204);
    const refused = await call({ method: 'PUT', url: kvPath('long'), headers: { 'x-ringkv-context': two }, payload: 'two' });
    expect(refused.status).toBe(400);
    expect(refused.body).toContain('BAD_CONTEXT');
    await stillWritable('long');
  });
});
