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
import { encodeContext, MAX_CONTEXT_ENTRIES } from '../../../src/version/index.js';
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
});
