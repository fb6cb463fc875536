/**
 * A small stand-in for a ringkv node's public API v1 (SPEC §2), for SDK tests. It keeps
 * siblings like the real store: every version gets a dot; a context is the set of dots the
 * writer saw; a PUT/DELETE replaces exactly the versions its context covers and otherwise
 * adds a sibling. Hooks let a test delay, fail or inspect any request.
 */
import { createServer, type Server, type Socket } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

export interface Version {
  dot: number;
  value: Buffer;
  contentType: string;
  lastModified: number;
  deleted: boolean;
}

export interface Hit {
  method: string;
  url: string;
  key: string | undefined;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** Return true after answering `reply` yourself to skip the normal handling. */
export type Intercept = (hit: Hit, reply: FastifyReply) => boolean | Promise<boolean>;

/** What `p` rejects with; throws if it resolves instead. */
export async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

export function errorBody(code: string, message: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ error: { code, message, ...extra } });
}

export function encodeContext(dots: Iterable<number>): string {
  return `c1.${Buffer.from(JSON.stringify([...new Set(dots)].sort((a, b) => a - b))).toString('base64url')}`;
}

function decodeContext(ctx: string): Set<number> | undefined {
  if (!ctx.startsWith('c1.')) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(ctx.slice(3), 'base64url').toString());
    if (!Array.isArray(parsed) || !parsed.every((d) => Number.isInteger(d))) return undefined;
    return new Set(parsed as number[]);
  } catch {
    return undefined;
  }
}

export class FakeV1 {
  url = '';
  readonly hits: Hit[] = [];
  readonly data = new Map<string, Version[]>();
  /** Runs before every request is handled. */
  intercept: Intercept | undefined;
  /** Pause before handling each request (ms), to shuffle concurrent requests. */
  delay: (() => number) | undefined;
  maxValueBytes = 1024 * 1024;
  /** How many reads were answered with siblings (300). */
  siblingReads = 0;
  /** Served as GET /v1/cluster. */
  cluster: unknown = { node: 'fake', members: [] };
  /** Wall clock for lastModified stamps (ms); tests can pin it. */
  now: () => number = () => Date.now();
  private nextDot = 1;
  private readonly app: FastifyInstance;
  private readonly hitOf = new WeakMap<object, Hit>();

  private constructor() {
    this.app = Fastify({ logger: false, forceCloseConnections: true });
  }

  static async start(): Promise<FakeV1> {
    const f = new FakeV1();
    await f.listen();
    return f;
  }

  /** Puts a version straight into the store (as if written without a context). */
  seed(key: string, value: string | Buffer, contentType = 'text/plain', lastModified = this.now()): number {
    const dot = this.nextDot++;
    const list = this.data.get(key) ?? [];
    list.push({ dot, value: Buffer.from(value), contentType, lastModified, deleted: false });
    this.data.set(key, list);
    return dot;
  }

  /** The live values of a key as strings. */
  values(key: string): string[] {
    return (this.data.get(key) ?? []).filter((v) => !v.deleted).map((v) => v.value.toString());
  }

  hitsFor(method: string): Hit[] {
    return this.hits.filter((h) => h.method === method);
  }

  async close(): Promise<void> {
    await this.app.close();
  }

  private async listen(): Promise<void> {
    const app = this.app;
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 64 * 1024 * 1024 }, (_req, body, done) => done(null, body));

    app.addHook('preHandler', async (req, reply) => {
      const raw = req.raw.url ?? '';
      const q = raw.indexOf('?');
      const path = q === -1 ? raw : raw.slice(0, q);
      const hit: Hit = {
        method: req.method,
        url: raw,
        key: path.startsWith('/v1/kv/') ? decodeURIComponent(path.slice('/v1/kv/'.length)) : undefined,
        query: new URLSearchParams(q === -1 ? '' : raw.slice(q + 1)),
        headers: req.headers,
        body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
      };
      this.hits.push(hit);
      this.hitOf.set(req, hit);
      const ms = this.delay?.() ?? 0;
      if (ms > 0) await new Promise((r) => setTimeout(r, ms));
      if (this.intercept && (await this.intercept(hit, reply))) return reply;
      return undefined;
    });

    app.get('/v1/health', async () => ({ status: 'ok', node: 'fake' }));
    app.get('/v1/cluster', async () => this.cluster);

    app.get('/v1/kv/*', async (req, reply) => {
      const key = this.hitOf.get(req)?.key ?? '';
      const stored = this.data.get(key) ?? [];
      const live = stored.filter((v) => !v.deleted);
      if (stored.length > 0) reply.header('X-Ringkv-Context', encodeContext(stored.map((v) => v.dot)));
      if (live.length === 0) {
        return reply.code(404).type('application/json').send(errorBody('NOT_FOUND', 'key not found'));
      }
      if (live.length === 1) {
        const v = live[0]!;
        return reply
          .code(200)
          .header('Content-Type', v.contentType)
          .header('Last-Modified', new Date(v.lastModified).toUTCString())
          .send(v.value);
      }
      this.siblingReads++;
      return reply
        .code(300)
        .type('application/json')
        .send(
          JSON.stringify({
            context: encodeContext(stored.map((v) => v.dot)),
            siblings: live.map((v) => ({
              value: v.value.toString('base64'),
              contentType: v.contentType,
              lastModified: new Date(v.lastModified).toISOString(),
            })),
          }),
        );
    });

    const write = (deleted: boolean) => async (req: FastifyRequest, reply: FastifyReply) => {
      const hit = this.hitOf.get(req)!;
      const key = hit.key ?? '';
      if (key === '' || Buffer.byteLength(key) > 512) return reply.code(400).type('application/json').send(errorBody('BAD_KEY', 'bad key'));
      const ctxHeader = req.headers['x-ringkv-context'];
      let seen = new Set<number>();
      if (typeof ctxHeader === 'string') {
        const parsed = decodeContext(ctxHeader);
        if (!parsed) return reply.code(400).type('application/json').send(errorBody('BAD_CONTEXT', 'malformed context'));
        seen = parsed;
      }
      const value = deleted ? Buffer.alloc(0) : hit.body;
      if (value.length > this.maxValueBytes) {
        return reply.code(413).type('application/json').send(errorBody('VALUE_TOO_LARGE', `value is ${value.length} bytes`));
      }
      const dot = this.nextDot++;
      const kept = (this.data.get(key) ?? []).filter((v) => !seen.has(v.dot));
      kept.push({
        dot,
        value,
        contentType: typeof req.headers['content-type'] === 'string' ? req.headers['content-type'] : 'application/octet-stream',
        lastModified: this.now(),
        deleted,
      });
      this.data.set(key, kept);
      return reply.code(204).header('X-Ringkv-Context', encodeContext([...seen, dot])).send();
    };
    app.put('/v1/kv/*', write(false));
    app.delete('/v1/kv/*', write(true));

    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    if (addr === null || typeof addr === 'string') throw new Error('no address');
    this.url = `http://127.0.0.1:${addr.port}`;
  }
}

/** A TCP server that accepts connections and never answers, keeping every byte it is sent. */
export async function startBlackHole(): Promise<{ url: string; close(): Promise<void>; connections(): number; received(): string }> {
  const sockets = new Set<Socket>();
  let count = 0;
  let received = '';
  const server: Server = createServer((s) => {
    count++;
    sockets.add(s);
    s.on('data', (d) => {
      received += d.toString('latin1');
    });
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${addr.port}`,
    connections: () => count,
    received: () => received,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A URL where nothing listens (connections are refused). */
export async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no address');
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${addr.port}`;
}
