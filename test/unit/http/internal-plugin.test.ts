import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { RingkvError } from '../../../src/errors.js';
import { INTERNAL_BODY_LIMIT, internalRoutes } from '../../../src/http/internal-plugin.js';
import { bearerToken, secretsEqual } from '../../../src/http/secret.js';
import type { InternalHandler, PeerAddress } from '../../../src/transport/transport.js';

const SECRET = 's3cret-value-for-tests';
const OCTET = 'application/octet-stream';

interface Call {
  body: Uint8Array;
  from: PeerAddress | undefined;
}

let app: FastifyInstance | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** An app with the plugin and a few handlers; `calls` records every handler invocation. */
async function build(opts: { secret?: string | undefined; bodyLimit?: number; logs?: string[] } = {}) {
  const calls: Call[] = [];
  const record =
    (fn: InternalHandler): InternalHandler =>
    async (body, from) => {
      calls.push({ body: Uint8Array.from(body), from });
      return fn(body, from);
    };
  const handlers = new Map<string, InternalHandler>([
    ['echo', record(async (body) => body)],
    ['upper', record(async (body) => new TextEncoder().encode(new TextDecoder().decode(body).toUpperCase()))],
    ['busy', record(async () => {
      throw new RingkvError('QUORUM_FAILED', 'only 1 of 2', { answered: 1, needed: 2 });
    })],
    ['boom', record(async () => {
      throw new Error(`leaky detail ${SECRET}`);
    })],
    ['status-error', record(async () => {
      throw Object.assign(new Error('looks like a client error'), { statusCode: 400 });
    })],
  ]);
  const logs = opts.logs;
  const stream = new Writable({
    write(chunk, _enc, cb) {
      logs?.push(String(chunk));
      cb();
    },
  });
  app = Fastify({ logger: logs ? { level: 'trace', stream } : false });
  await app.register(internalRoutes, {
    handlers,
    secret: 'secret' in opts ? opts.secret : SECRET,
    ...(opts.bodyLimit === undefined ? {} : { bodyLimit: opts.bodyLimit }),
  });
  await app.ready();
  return { app, calls };
}

const auth = (secret = SECRET) => ({ authorization: `Bearer ${secret}`, 'content-type': OCTET });

describe('internalRoutes plugin', () => {
  it('calls the handler with the body and the caller, and replies 200 octet-stream', async () => {
    const { app, calls } = await build();
    const res = await app.inject({
      method: 'POST',
      url: '/internal/upper',
      headers: { ...auth(), 'x-ringkv-from': '10.0.0.2:8081' },
      payload: Buffer.from('hello'),
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(OCTET);
    expect(res.body).toBe('HELLO');
    expect(calls).toHaveLength(1);
    expect(new TextDecoder().decode(calls[0]!.body)).toBe('hello');
    expect(calls[0]!.from).toBe('10.0.0.2:8081');
  });

  it('round-trips arbitrary bytes and an empty body; `from` is undefined when not sent', async () => {
    const { app, calls } = await build();
    const bytes = Buffer.from([0, 255, 1, 254, 0]);
    const res = await app.inject({ method: 'POST', url: '/internal/echo', headers: auth(), payload: bytes });
    expect(res.statusCode).toBe(200);
    expect(Buffer.compare(res.rawPayload, bytes)).toBe(0);
    const empty = await app.inject({ method: 'POST', url: '/internal/echo', headers: auth(), payload: Buffer.alloc(0) });
    expect(empty.statusCode).toBe(200);
    expect(empty.rawPayload.byteLength).toBe(0);
    expect(calls[1]!.body.byteLength).toBe(0);
    expect(calls[0]!.from).toBeUndefined();
  });

  describe('auth', () => {
    it.each([
      ['no authorization header', { 'content-type': OCTET }],
      ['a wrong secret', auth('wrong')],
      ['the secret with one byte more', auth(`${SECRET}x`)],
      ['the secret as a prefix', auth(SECRET.slice(0, -1))],
      ['another scheme', { authorization: `Basic ${SECRET}`, 'content-type': OCTET }],
      ['the bare secret', { authorization: SECRET, 'content-type': OCTET }],
      ['an empty bearer token', { authorization: 'Bearer ', 'content-type': OCTET }],
    ])('answers 401 JSON to %s and does not call the handler', async (_name, headers) => {
      const { app, calls } = await build();
      const res = await app.inject({ method: 'POST', url: '/internal/echo', headers, payload: Buffer.from('x') });
      expect(res.statusCode).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(res.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.any(String) } });
      expect(calls).toHaveLength(0);
    });

    it.each([
      ['undefined', undefined],
      ['empty', ''],
    ])('rejects every call when the node has no secret (%s)', async (_name, secret) => {
      const { app, calls } = await build({ secret });
      for (const headers of [auth(''), auth('anything'), { 'content-type': OCTET }, { authorization: 'Bearer', 'content-type': OCTET }]) {
        const res = await app.inject({ method: 'POST', url: '/internal/echo', headers, payload: Buffer.from('x') });
        expect(res.statusCode).toBe(401);
      }
      expect(calls).toHaveLength(0);
    });

    it('checks the secret before reading the body and before routing', async () => {
      const { app } = await build({ bodyLimit: 10 });
      const big = await app.inject({ method: 'POST', url: '/internal/echo', headers: auth('wrong'), payload: Buffer.alloc(100) });
      expect(big.statusCode).toBe(401);
      const unknown = await app.inject({ method: 'POST', url: '/internal/nope', headers: auth('wrong'), payload: Buffer.alloc(1) });
      expect(unknown.statusCode).toBe(401);
      const otherMethod = await app.inject({ method: 'GET', url: '/internal/echo' });
      expect(otherMethod.statusCode).toBe(401);
      const nested = await app.inject({ method: 'DELETE', url: '/internal/a/b' });
      expect(nested.statusCode).toBe(401);
    });

    it('accepts the scheme in any case', async () => {
      const { app } = await build();
      const res = await app.inject({
        method: 'POST',
        url: '/internal/echo',
        headers: { authorization: `bearer ${SECRET}`, 'content-type': OCTET },
        payload: Buffer.from('x'),
      });
      expect(res.statusCode).toBe(200);
    });

    it('never logs the secret', async () => {
      const logs: string[] = [];
      const { app } = await build({ logs });
      await app.inject({ method: 'POST', url: '/internal/echo', headers: auth(), payload: Buffer.from('x') });
      await app.inject({ method: 'POST', url: '/internal/echo', headers: auth(`${SECRET}-wrong`), payload: Buffer.from('x') });
      await app.inject({ method: 'POST', url: '/internal/boom', headers: auth(), payload: Buffer.from('x') });
      expect(logs.some((l) => l.includes('incoming request'))).toBe(true);
      // The 'boom' handler puts the secret in its own error message, which is logged as the
      // bug it is; every other line (requests, responses, the 401) must be free of it.
      const requestLines = logs.filter((l) => !l.includes('leaky detail'));
      expect(requestLines.length).toBeGreaterThan(4);
      for (const line of requestLines) {
        expect(line).not.toContain(SECRET);
        expect(line.toLowerCase()).not.toContain('bearer');
      }
    });
  });

  describe('routing and errors', () => {
    it('answers 404 JSON for an unknown route', async () => {
      const { app } = await build();
      const res = await app.inject({ method: 'POST', url: '/internal/no-such', headers: auth(), payload: Buffer.from('x') });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
    });

    it('answers 404 JSON for other methods and nested paths under /internal/', async () => {
      const { app } = await build();
      const get = await app.inject({ method: 'GET', url: '/internal/echo', headers: { authorization: `Bearer ${SECRET}` } });
      expect(get.statusCode).toBe(404);
      expect(get.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
      const nested = await app.inject({ method: 'POST', url: '/internal/echo/more', headers: auth(), payload: Buffer.from('x') });
      expect(nested.statusCode).toBe(404);
    });

    it("maps a handler's RingkvError to its status and JSON body", async () => {
      const { app } = await build();
      const res = await app.inject({ method: 'POST', url: '/internal/busy', headers: auth(), payload: Buffer.from('x') });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ error: { code: 'QUORUM_FAILED', message: 'only 1 of 2', answered: 1, needed: 2 } });
    });

    it('maps any other throw to 500 INTERNAL without its message', async () => {
      const { app } = await build();
      for (const route of ['boom', 'status-error']) {
        const res = await app.inject({ method: 'POST', url: `/internal/${route}`, headers: auth(), payload: Buffer.from('x') });
        expect(res.statusCode, route).toBe(500);
        expect(res.json()).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
        expect(res.body).not.toContain(SECRET);
      }
    });

    it('accepts only octet-stream bodies', async () => {
      const { app, calls } = await build();
      const res = await app.inject({
        method: 'POST',
        url: '/internal/echo',
        headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
        payload: '{"a":1}',
      });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: { code: 'BAD_REQUEST' } });
      expect(calls).toHaveLength(0);
    });

    it('answers 413 above bodyLimit', async () => {
      const { app, calls } = await build({ bodyLimit: 16 });
      const ok = await app.inject({ method: 'POST', url: '/internal/echo', headers: auth(), payload: Buffer.alloc(16) });
      expect(ok.statusCode).toBe(200);
      const res = await app.inject({ method: 'POST', url: '/internal/echo', headers: auth(), payload: Buffer.alloc(17) });
      expect(res.statusCode).toBe(413);
      expect(res.json()).toMatchObject({ error: { code: 'VALUE_TOO_LARGE' } });
      expect(calls).toHaveLength(1);
    });

    it('defaults bodyLimit to 64 MiB', async () => {
      expect(INTERNAL_BODY_LIMIT).toBe(64 * 1024 * 1024);
      const { app } = await build();
      const res = await app.inject({ method: 'POST', url: '/internal/echo', headers: auth(), payload: Buffer.alloc(2 * 1024 * 1024) });
      expect(res.statusCode).toBe(200);
      expect(res.rawPayload.byteLength).toBe(2 * 1024 * 1024);
    });
  });

  describe('encapsulation', () => {
    it('leaks no parser, hook or error handler to sibling routes', async () => {
      app = Fastify({ logger: false });
      await app.register(internalRoutes, { handlers: new Map(), secret: SECRET });
      app.post('/public', async (req) => ({ got: req.body }));
      await app.ready();
      // JSON still parsed outside, no auth needed, octet-stream not accepted there.
      const json = await app.inject({ method: 'POST', url: '/public', payload: { a: 1 } });
      expect(json.statusCode).toBe(200);
      expect(json.json()).toEqual({ got: { a: 1 } });
      const octet = await app.inject({
        method: 'POST',
        url: '/public',
        headers: { 'content-type': OCTET },
        payload: Buffer.from('x'),
      });
      expect(octet.statusCode).toBe(415);
    });
  });
});

describe('secret helpers', () => {
  it('secretsEqual compares exactly, whatever the lengths', () => {
    expect(secretsEqual('abc', 'abc')).toBe(true);
    expect(secretsEqual('abc', 'abd')).toBe(false);
    expect(secretsEqual('abc', 'abcd')).toBe(false);
    expect(secretsEqual('', '')).toBe(true);
    expect(secretsEqual('', 'x')).toBe(false);
    expect(secretsEqual('ünïcødé', 'ünïcødé')).toBe(true);
    expect(secretsEqual('x'.repeat(10_000), 'x'.repeat(10_000))).toBe(true);
  });

  it('bearerToken extracts the token of a Bearer header only', () => {
    expect(bearerToken(undefined)).toBeUndefined();
    expect(bearerToken('')).toBeUndefined();
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer abc')).toBe('abc');
    expect(bearerToken('BEARER  abc ')).toBe('abc');
    expect(bearerToken('Bearer ')).toBeUndefined();
    expect(bearerToken('Bearer')).toBeUndefined();
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearerabc')).toBeUndefined();
    expect(bearerToken('abc')).toBeUndefined();
  });
});
