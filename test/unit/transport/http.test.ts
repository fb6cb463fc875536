import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { internalRoutes } from '../../../src/http/internal-plugin.js';
import { ManualTime, systemClock, systemTimers } from '../../../src/runtime/index.js';
import { HttpTransport, type HttpTransportInit } from '../../../src/transport/http.js';
import { TransportError } from '../../../src/transport/transport.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Seen {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingMessage['headers'];
  body: Buffer;
  remoteAddress: string | undefined;
}

/** A plain node:http server (no ringkv code) that records requests and answers via `reply`. */
async function rawHttp(reply: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void = (_q, res, body) => res.end(body)) {
  const seen: Seen[] = [];
  let connections = 0;
  const server: Server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method, url: req.url, headers: req.headers, body, remoteAddress: req.socket.remoteAddress });
      reply(req, res, body);
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  const port = (server.address() as { port: number }).port;
  return { server, seen, peer: `127.0.0.1:${port}`, connections: () => connections };
}

/** A TCP server that accepts connections and reads, but never answers. */
async function blackHole() {
  const sockets: Socket[] = [];
  let received = 0;
  const server: NetServer = createNetServer((s) => {
    sockets.push(s);
    s.on('data', (d) => {
      received += d.length;
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { peer: `127.0.0.1:${(server.address() as { port: number }).port}`, received: () => received, sockets };
}

function transport(init: Partial<HttpTransportInit> = {}, time?: ManualTime) {
  const t = new HttpTransport(
    { clock: time ?? systemClock, timers: time ?? systemTimers },
    { secret: 'the-secret', ...init },
  );
  cleanups.push(() => t.close());
  return t;
}

async function failure(p: Promise<unknown>): Promise<TransportError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TransportError);
  return err as TransportError;
}

async function until(cond: () => boolean, ms = 2_000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('HttpTransport', () => {
  it('POSTs octet-stream to /internal/<route> with the secret and the advertised address', async () => {
    const srv = await rawHttp();
    const t = transport({ advertise: '10.1.2.3:8081' });
    const reply = await t.send(srv.peer, 'hint/deliver', Uint8Array.from([1, 2, 3]), { timeoutMs: 5_000 });
    expect(Array.from(reply)).toEqual([1, 2, 3]);
    const req = srv.seen[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/internal/hint%2Fdeliver');
    expect(req.headers['content-type']).toBe('application/octet-stream');
    expect(req.headers.authorization).toBe('Bearer the-secret');
    expect(req.headers['x-ringkv-from']).toBe('10.1.2.3:8081');
    expect(req.headers['content-length']).toBe('3');
  });

  it('reports the bytes of each call by route: the body sent, and the reply received whatever its status', async () => {
    const srv = await rawHttp((req, res, body) => {
      if (req.url?.endsWith('/bad')) res.statusCode = 500;
      res.end(Buffer.concat([body, body]));
    });
    const traffic: [string, string, number][] = [];
    const t = transport({ onTraffic: (route, direction, bytes) => traffic.push([route, direction, bytes]) });
    await t.send(srv.peer, 'good', new Uint8Array(5), { timeoutMs: 5_000 });
    await failure(t.send(srv.peer, 'bad', new Uint8Array(3), { timeoutMs: 5_000 }));
    // A call that never reaches a peer sends nothing.
    await failure(t.send(srv.peer, 'late', new Uint8Array(7), { timeoutMs: 0 }));
    expect(traffic).toEqual([
      ['good', 'sent', 5],
      ['good', 'received', 10],
      ['bad', 'sent', 3],
      ['bad', 'received', 6],
    ]);
  });

  it('sends no x-ringkv-from without an advertised address', async () => {
    const srv = await rawHttp();
    await transport().send(srv.peer, 'r', new Uint8Array(0), { timeoutMs: 5_000 });
    expect(srv.seen[0]!.headers['x-ringkv-from']).toBeUndefined();
  });

  it('keeps connections alive across sends', async () => {
    const srv = await rawHttp();
    const t = transport();
    for (let i = 0; i < 20; i++) await t.send(srv.peer, 'r', Uint8Array.from([i]), { timeoutMs: 5_000 });
    expect(srv.seen).toHaveLength(20);
    // undici resolves a body a moment before it marks the connection free, so a send issued
    // in that same tick may open a second one; after that both are reused.
    expect(srv.connections()).toBeLessThanOrEqual(2);
  });

  it('opens at most connectionsPerPeer connections to a peer', async () => {
    let pending: Array<() => void> = [];
    const srv = await rawHttp((_q, res, body) => pending.push(() => res.end(body)));
    const t = transport({ connectionsPerPeer: 2 });
    const sends = Array.from({ length: 6 }, (_, i) => t.send(srv.peer, 'r', Uint8Array.from([i]), { timeoutMs: 5_000 }));
    await until(() => pending.length === 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(srv.connections()).toBe(2);
    while (srv.seen.length < 6 || pending.length > 0) {
      const now = pending;
      pending = [];
      for (const p of now) p();
      await new Promise((r) => setTimeout(r, 5));
    }
    const replies = await Promise.all(sends);
    expect(replies.map((r) => r[0])).toEqual([0, 1, 2, 3, 4, 5]);
    expect(srv.connections()).toBe(2);
  });

  it("maps a non-2xx reply to 'remote' with status and body, JSON or not", async () => {
    const srv = await rawHttp((_q, res) => {
      res.statusCode = 502;
      res.setHeader('content-type', 'text/html');
      res.end('<h1>bad gateway</h1>');
    });
    const err = await failure(transport().send(srv.peer, 'r', new Uint8Array(0), { timeoutMs: 5_000 }));
    expect(err.kind).toBe('remote');
    expect(err.status).toBe(502);
    expect(new TextDecoder().decode(err.body)).toBe('<h1>bad gateway</h1>');
    expect(err.message).toContain('502');
  });

  it("reports a wrong secret as 'remote' 401 from the internal plugin", async () => {
    const app = Fastify({ logger: false });
    await app.register(internalRoutes, { handlers: new Map([['r', async (b: Uint8Array) => b]]), secret: 'right' });
    await app.listen({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => app.close());
    const peer = `127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const err = await failure(transport({ secret: 'not-the-right-one' }).send(peer, 'r', new Uint8Array(1), { timeoutMs: 5_000 }));
    expect(err.kind).toBe('remote');
    expect(err.status).toBe(401);
    expect(err.message).toContain('UNAUTHORIZED');
    expect(err.message).not.toContain('not-the-right-one');
  });

  it("reports a refused connection as 'unreachable'", async () => {
    const srv = await rawHttp();
    const peer = srv.peer;
    await cleanups.pop()!(); // close the server: nothing listens on its port now
    const err = await failure(transport().send(peer, 'r', new Uint8Array(1), { timeoutMs: 5_000 }));
    expect(err.kind).toBe('unreachable');
    expect(err.peer).toBe(peer);
  });

  it("reports a connection dropped after the request was sent as 'timeout' (outcome unknown)", async () => {
    const srv = await rawHttp((req) => req.socket.destroy());
    const err = await failure(transport().send(srv.peer, 'r', Uint8Array.from([9]), { timeoutMs: 5_000 }));
    expect(srv.seen).toHaveLength(1); // the peer did get it
    expect(err.kind).toBe('timeout');
    expect(err.message).toContain('outcome unknown');
  });

  it("reports a bad peer address as 'unreachable'", async () => {
    const err = await failure(transport().send('not a host:port', 'r', new Uint8Array(0), { timeoutMs: 1_000 }));
    expect(err.kind).toBe('unreachable');
  });

  it('enforces the deadline with the injected Timers', async () => {
    const hole = await blackHole();
    const time = new ManualTime();
    const t = transport({}, time);
    let settled: TransportError | undefined;
    const p = t.send(hole.peer, 'r', Uint8Array.from([1]), { timeoutMs: 60_000 }).catch((e: unknown) => {
      settled = e as TransportError;
    });
    await until(() => hole.received() > 0); // the request is on the wire, no answer coming
    await time.advance(59_999);
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBeUndefined();
    await time.advance(1);
    await p;
    expect(settled?.kind).toBe('timeout');
    expect(settled?.message).toContain('60000 ms');
    expect(time.pending()).toBe(0); // the deadline timer is gone
  });

  it('fails a call still queued behind others at its own deadline, and never sends it', async () => {
    const pending: Array<() => void> = [];
    const srv = await rawHttp((_q, res, body) => pending.push(() => res.end(body)));
    const time = new ManualTime();
    const t = transport({ connectionsPerPeer: 1 }, time);
    const first = t.send(srv.peer, 'r', Uint8Array.from([1]), { timeoutMs: 60_000 });
    await until(() => pending.length === 1); // the only connection is busy with `first`
    let queued: TransportError | undefined;
    const second = t.send(srv.peer, 'r', Uint8Array.from([2]), { timeoutMs: 1_000 }).catch((e: unknown) => {
      queued = e as TransportError;
    });
    await time.advance(1_000);
    await second;
    expect(queued?.kind).toBe('timeout');
    expect(queued?.message).toContain('1000 ms');
    (pending.shift() as () => void)();
    expect([...(await first)]).toEqual([1]);
    // The timed-out call must never reach the peer (undici drops the connection it was queued
    // for when it aborts it there), so the next call is the second the peer sees.
    const third = t.send(srv.peer, 'r', Uint8Array.from([3]), { timeoutMs: 60_000 });
    await until(() => pending.length === 1);
    (pending.shift() as () => void)();
    expect([...(await third)]).toEqual([3]);
    expect(srv.seen.map((x) => [...x.body])).toEqual([[1], [3]]);
  });

  it('assembles a reply that arrives in many chunks', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    const srv = await rawHttp((_q, res) => {
      // Written in pieces, with a pause, so the client reads it in several socket chunks.
      res.write(big.subarray(0, 1024));
      setTimeout(() => res.end(big.subarray(1024)), 20);
    });
    const reply = await transport().send(srv.peer, 'r', new Uint8Array(0), { timeoutMs: 5_000 });
    expect(reply.byteLength).toBe(big.length);
    expect(Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength).equals(big)).toBe(true);
  });

  it('undici headersTimeout also bounds a call (second line of defence)', async () => {
    const hole = await blackHole();
    const time = new ManualTime(); // never advanced: only undici's own timer can fire
    const started = performance.now();
    const err = await failure(transport({}, time).send(hole.peer, 'r', Uint8Array.from([1]), { timeoutMs: 300 }));
    expect(err.kind).toBe('timeout');
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('binds outgoing sockets to localAddress when given', async () => {
    const srv = await rawHttp();
    // Any 127/8 address is local on Linux; a second one shows the bind took effect.
    await transport({ localAddress: '127.0.0.2' }).send(srv.peer, 'r', new Uint8Array(0), { timeoutMs: 5_000 });
    expect(srv.seen[0]!.remoteAddress).toBe('127.0.0.2');
    await transport().send(srv.peer, 'r', new Uint8Array(0), { timeoutMs: 5_000 });
    expect(srv.seen[1]!.remoteAddress).toBe('127.0.0.1');
  });

  it('close() destroys the pools: the server sees the connections go', async () => {
    const srv = await rawHttp();
    const t = transport();
    await t.send(srv.peer, 'r', new Uint8Array(0), { timeoutMs: 5_000 });
    const count = () =>
      new Promise<number>((resolve, reject) => srv.server.getConnections((e, n) => (e ? reject(e) : resolve(n))));
    expect(await count()).toBe(1);
    await t.close();
    let n = await count();
    for (let i = 0; i < 200 && n > 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      n = await count();
    }
    expect(n).toBe(0);
  });
});
