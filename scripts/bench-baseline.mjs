#!/usr/bin/env node
/**
 * The ceiling of ringkv's stack on this machine: one process, fastify 5 + classic-level 3, no
 * replication, no versions, no quorum. `PUT /v1/kv/:key` stores the raw body (204),
 * `GET /v1/kv/:key` returns it (200) or 404. Writes are not fsynced, like ringkv's default
 * LevelStore (`sync: false`), so the two do the same disk work per replica.
 *
 *   node scripts/bench-baseline.mjs --listen 127.0.0.1:9000 --data /tmp/baseline
 *
 * Prints one JSON line `{"listening":"http://..."}` once it accepts requests; SIGINT/SIGTERM
 * close the server and the database.
 */
import { pathToFileURL } from 'node:url';
import { ClassicLevel } from 'classic-level';
import Fastify from 'fastify';
import { parseFlags, serveUntilSignal } from './bench-lib.mjs';

/**
 * A fastify app that takes every request body as a Buffer whatever its Content-Type (values
 * are opaque bytes, as in ringkv); also the replicated baseline's.
 */
export function rawBodyApp(bodyLimit) {
  const app = Fastify({ logger: false, bodyLimit, routerOptions: { maxParamLength: 4096 } });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  return app;
}

/** Build and start the server; resolves to `{ url, close() }`. */
export async function startBaseline({ host = '127.0.0.1', port = 0, data }) {
  const db = new ClassicLevel(data, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  await db.open();
  const app = rawBodyApp(1024 * 1024);

  app.put('/v1/kv/:key', async (req, reply) => {
    await db.put(req.params.key, Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
    return reply.code(204).send();
  });
  app.get('/v1/kv/:key', async (req, reply) => {
    const value = await db.get(req.params.key);
    // classic-level 3 resolves a missing key to undefined instead of throwing.
    if (value === undefined) {
      return reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'key not found' } });
    }
    return reply.code(200).header('content-type', 'application/octet-stream').send(value);
  });
  app.get('/v1/health', async () => ({ status: 'ok', node: 'baseline' }));

  const url = await app.listen({ host, port });
  return {
    url,
    async close() {
      await app.close();
      await db.close();
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  serveUntilSignal(
    'bench-baseline',
    () => {
      const flags = parseFlags(process.argv.slice(2), { listen: 'string', data: 'string' });
      if (!flags.data) throw new Error('--data is required');
      const [host, port] = (flags.listen ?? '127.0.0.1:0').split(':');
      return { host, port: Number(port), data: flags.data };
    },
    startBaseline,
  );
}
