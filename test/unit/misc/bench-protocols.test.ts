import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MISS, makeKeyState, OK, protocols, SIBLINGS } from '../../../scripts/bench-lib.mjs';

/**
 * The load generator's protocols (scripts/bench-lib.mjs) read responses through a bare undici
 * dispatch handler; these check what they make of each answer a server can give, against a
 * scripted HTTP server: the body must be read whole and measured, chunked bodies included.
 */
type Handler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;

let server: Server;
let pool: Pool;
let next: Handler = (_req, _body, res) => res.end();
const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: Buffer }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      next(req, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 2 });
});

afterAll(async () => {
  await pool.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Write `body` in two chunks without a Content-Length: the response goes out chunked. */
function chunked(res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer): void {
  res.writeHead(status, headers);
  res.write(body.subarray(0, body.length >> 1));
  res.end(body.subarray(body.length >> 1));
}

describe('bench protocols', () => {
  it('ringkv: a PUT sends the value, keeps the returned context and sends it with the next PUT', async () => {
    const st = makeKeyState({ prefix: 'k', keys: 4, valueSize: 64 });
    next = (_req, _body, res) => {
      res.writeHead(204, { 'X-Ringkv-Context': 'ctx-1' });
      res.end();
    };
    expect(await protocols.ringkv.put(pool, st, 2)).toBe(OK);
    expect(st.contexts[2]).toBe('ctx-1');
    expect(st.written[2]).toBe(1);
    const first = seen.at(-1);
    expect(first?.method).toBe('PUT');
    expect(first?.url).toBe('/v1/kv/k000002');
    expect(first?.body.equals(st.value)).toBe(true);
    expect(first?.headers['x-ringkv-context']).toBeUndefined();
    expect(await protocols.ringkv.put(pool, st, 2)).toBe(OK);
    expect(seen.at(-1)?.headers['x-ringkv-context']).toBe('ctx-1');
  });

  it('ringkv: a GET reads a chunked body whole and checks its length', async () => {
    const st = makeKeyState({ prefix: 'k', keys: 4, valueSize: 300 });
    next = (_req, _body, res) => chunked(res, 200, { 'X-Ringkv-Context': 'ctx-2' }, Buffer.alloc(300, 7));
    expect(await protocols.ringkv.get(pool, st, 1)).toBe(OK);
    expect(st.contexts[1]).toBe('ctx-2');
    next = (_req, _body, res) => chunked(res, 200, {}, Buffer.alloc(299, 7));
    expect(await protocols.ringkv.get(pool, st, 1)).toBe('bad-length');
  });

  it('ringkv: 404, 300 and an error status are told apart; a failed PUT is not marked written', async () => {
    const st = makeKeyState({ prefix: 'k', keys: 4, valueSize: 8 });
    next = (_req, _body, res) => {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end('{"error":{"code":"NOT_FOUND","message":"key not found"}}');
    };
    expect(await protocols.ringkv.get(pool, st, 0)).toBe(MISS);
    next = (_req, _body, res) => {
      res.writeHead(300, { 'Content-Type': 'application/json', 'X-Ringkv-Context': 'ctx-3' });
      res.end('{"context":"ctx-3","siblings":[]}');
    };
    expect(await protocols.ringkv.get(pool, st, 0)).toBe(SIBLINGS);
    expect(st.contexts[0]).toBe('ctx-3');
    next = (_req, _body, res) => {
      res.writeHead(503);
      res.end('{}');
    };
    expect(await protocols.ringkv.get(pool, st, 3)).toBe(503);
    expect(await protocols.ringkv.put(pool, st, 3)).toBe(503);
    expect(st.written[3]).toBe(0);
  });

  it('etcd: a range answer is checked by its base64 value length, a miss has no value', async () => {
    const st = makeKeyState({ prefix: 'k', keys: 2, valueSize: 100 });
    next = (_req, _body, res) => res.end('{"header":{}}');
    expect(await protocols.etcd.put(pool, st, 0)).toBe(OK);
    const put = seen.at(-1);
    expect(put?.url).toBe('/v3/kv/put');
    expect(JSON.parse(put?.body.toString() ?? '{}')).toEqual({
      key: Buffer.from('k000000').toString('base64'),
      value: st.value.toString('base64'),
    });
    const value = st.value.toString('base64');
    next = (_req, _body, res) =>
      chunked(res, 200, { 'Content-Type': 'application/json' }, Buffer.from(`{"header":{},"kvs":[{"key":"eA==","value":"${value}"}],"count":"1"}`));
    expect(await protocols.etcd.get(pool, st, 0)).toBe(OK);
    next = (_req, _body, res) => res.end(`{"header":{},"kvs":[{"key":"eA==","value":"${value.slice(4)}"}]}`);
    expect(await protocols.etcd.get(pool, st, 0)).toBe('bad-length');
    next = (_req, _body, res) => res.end('{"header":{}}');
    expect(await protocols.etcd.get(pool, st, 1)).toBe(MISS);
    next = (_req, _body, res) => {
      res.writeHead(500);
      res.end('{}');
    };
    expect(await protocols.etcd.get(pool, st, 1)).toBe(500);
  });
});
