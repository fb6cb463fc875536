#!/usr/bin/env node
/**
 * The ceiling of a *replicated* store on ringkv's stack: three of these processes form a
 * cluster that moves the same messages as ringkv at N=3 R=2 W=2, on the same libraries
 * (fastify 5 for HTTP, undici 7 between nodes, classic-level 3), and does nothing else.
 *
 * - `PUT /v1/kv/:key` stores the raw body locally and sends it to both peers (per-peer
 *   batches, as ringkv sends them), and answers 204 once its own write and one peer's have
 *   landed (W=2). The third copy still lands, after the answer, as in ringkv.
 * - `GET /v1/kv/:key` reads locally (LevelDB's synchronous get, as ringkv) and asks one peer
 *   (the next one in a fixed order, as ringkv does) for its copy's length (R=2: the stand-in
 *   for ringkv's version-only read), and answers 200 with the local value once the peer did.
 * - `POST /internal/batch` (cluster secret required, compared in constant time) carries the
 *   peer writes and reads, many per request.
 *
 * No versions, clocks, siblings, hints, caches, anti-entropy, membership, metrics, logging,
 * timeouts or retries: whatever ringkv costs beyond this cluster is the price of those.
 * Writes are not fsynced, like ringkv's default store; concurrent LevelDB writes go out as
 * one batch (group commit), as ringkv's do.
 *
 *   RINGKV_SECRET=s node scripts/bench-replicated.mjs --listen 127.0.0.1:9001 \
 *     --peers 127.0.0.1:9002,127.0.0.1:9003 --data /tmp/r1
 *
 * Prints one JSON line `{"listening":"http://..."}` once it accepts requests; SIGINT/SIGTERM
 * close the server and the database. A benchmark aid, not a store: it has no failure handling.
 */
import { Buffer } from 'node:buffer';
import { timingSafeEqual } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { ClassicLevel } from 'classic-level';
import { Pool } from 'undici';
import { rawBodyApp } from './bench-baseline.mjs';
import { parseFlags, serveUntilSignal } from './bench-lib.mjs';

const MAX_IN_FLIGHT = 2;
const OP_WRITE = 1;
const OP_READ = 2;

/** LevelDB writes that arrive while one is in flight go out together as the next batch. */
function groupCommit(db) {
  let queue = [];
  let busy = false;
  const flush = () => {
    const ops = queue;
    queue = [];
    busy = true;
    db.batch(ops.map((o) => o.op)).then(
      () => {
        for (const o of ops) o.resolve();
        busy = false;
        if (queue.length > 0) flush();
      },
      (err) => {
        for (const o of ops) o.reject(err);
        busy = false;
        if (queue.length > 0) flush();
      },
    );
  };
  return (key, value) =>
    new Promise((resolve, reject) => {
      queue.push({ op: { type: 'put', key, value }, resolve, reject });
      if (!busy) flush();
    });
}

/**
 * Items to one peer queue up and leave in one POST while fewer than MAX_IN_FLIGHT batches
 * are out, flushed at the end of the I/O round (setImmediate), as ringkv batches.
 * Item: op (1 byte), key length (2), key, value length (4), value. Reply: 4 bytes per item.
 */
function peerLink(address, secret) {
  const pool = new Pool(`http://${address}`, { connections: 8, keepAliveTimeout: 4_000 });
  const headers = { 'content-type': 'application/octet-stream', authorization: `Bearer ${secret}` };
  let queue = [];
  let inFlight = 0;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    while (inFlight < MAX_IN_FLIGHT && queue.length > 0) {
      const items = queue;
      queue = [];
      inFlight++;
      let size = 0;
      for (const it of items) size += 7 + it.key.length + it.value.length;
      const body = Buffer.allocUnsafe(size);
      let at = 0;
      for (const it of items) {
        body[at] = it.op;
        body.writeUInt16BE(it.key.length, at + 1);
        it.key.copy(body, at + 3);
        at += 3 + it.key.length;
        body.writeUInt32BE(it.value.length, at);
        it.value.copy(body, at + 4);
        at += 4 + it.value.length;
      }
      pool
        .request({ method: 'POST', path: '/internal/batch', headers, body })
        .then(async (res) => {
          const reply = Buffer.from(await res.body.arrayBuffer());
          if (res.statusCode !== 200 || reply.length !== 4 * items.length) {
            throw new Error(`peer ${address} answered ${res.statusCode}`);
          }
          for (let i = 0; i < items.length; i++) items[i].resolve(reply.readUInt32BE(4 * i));
        })
        .catch((err) => {
          for (const it of items) it.reject(err);
        })
        .finally(() => {
          inFlight--;
          schedule();
        });
    }
  };
  const schedule = () => {
    if (scheduled || inFlight >= MAX_IN_FLIGHT || queue.length === 0) return;
    scheduled = true;
    setImmediate(flush);
  };
  const EMPTY = Buffer.alloc(0);
  return {
    send(op, key, value = EMPTY) {
      return new Promise((resolve, reject) => {
        queue.push({ op, key, value, resolve, reject });
        schedule();
      });
    },
    close: () => pool.close(),
  };
}

/** Resolves once `need` of `promises` fulfilled; rejects once that can no longer happen. */
function quorum(promises, need) {
  return new Promise((resolve, reject) => {
    let ok = 0;
    let failed = 0;
    for (const p of promises) {
      p.then(
        () => {
          if (++ok === need) resolve();
        },
        (err) => {
          if (++failed === promises.length - need + 1) reject(err);
        },
      );
    }
  });
}

/** Build and start one member; resolves to `{ url, close() }`. */
export async function startReplicated({ host = '127.0.0.1', port = 0, data, peers, secret }) {
  const db = new ClassicLevel(data, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const write = groupCommit(db);
  const links = peers.map((p) => peerLink(p, secret));
  const expected = Buffer.from(`Bearer ${secret}`);
  const authorized = (header) => {
    if (typeof header !== 'string') return false;
    const got = Buffer.from(header);
    return got.length === expected.length && timingSafeEqual(got, expected);
  };

  const app = rawBodyApp(16 * 1024 * 1024);

  app.put('/v1/kv/:key', async (req, reply) => {
    const key = Buffer.from(req.params.key);
    const value = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    await quorum([write(key, value), ...links.map((l) => l.send(OP_WRITE, key, value))], 2);
    return reply.code(204).send();
  });
  app.get('/v1/kv/:key', async (req, reply) => {
    const key = Buffer.from(req.params.key);
    const value = db.getSync(key);
    await links[0].send(OP_READ, key);
    if (value === undefined) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'key not found' } });
    return reply.code(200).header('content-type', 'application/octet-stream').send(value);
  });
  app.post('/internal/batch', async (req, reply) => {
    if (!authorized(req.headers.authorization)) return reply.code(401).send({ error: { code: 'UNAUTHORIZED' } });
    const body = req.body;
    const runs = [];
    let at = 0;
    while (at < body.length) {
      const op = body[at];
      const keyLen = body.readUInt16BE(at + 1);
      const key = body.subarray(at + 3, at + 3 + keyLen);
      at += 3 + keyLen;
      const valueLen = body.readUInt32BE(at);
      const value = body.subarray(at + 4, at + 4 + valueLen);
      at += 4 + valueLen;
      if (op === OP_WRITE) runs.push(write(key, value).then(() => 0));
      else runs.push(Promise.resolve(db.getSync(key)?.length ?? 0));
    }
    const results = await Promise.all(runs);
    const out = Buffer.allocUnsafe(4 * results.length);
    for (let i = 0; i < results.length; i++) out.writeUInt32BE(results[i], 4 * i);
    return reply.code(200).header('content-type', 'application/octet-stream').send(out);
  });
  app.get('/v1/health', async () => ({ status: 'ok', node: 'replicated' }));

  const url = await app.listen({ host, port });
  return {
    url,
    async close() {
      await app.close();
      await Promise.all(links.map((l) => l.close()));
      await db.close();
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  serveUntilSignal(
    'bench-replicated',
    () => {
      const flags = parseFlags(process.argv.slice(2), { listen: 'string', data: 'string', peers: 'string' });
      if (!flags.data) throw new Error('--data is required');
      if (!flags.peers) throw new Error('--peers is required');
      if (!process.env.RINGKV_SECRET) throw new Error('RINGKV_SECRET must be set');
      const [host, port] = (flags.listen ?? '127.0.0.1:0').split(':');
      const peers = flags.peers.split(',').filter((p) => p !== '');
      return { host, port: Number(port), data: flags.data, peers, secret: process.env.RINGKV_SECRET };
    },
    startReplicated,
  );
}
