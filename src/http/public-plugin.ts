/**
 * The public HTTP API, version 1 (SPEC §2): /v1/kv/{key}, /v1/health, /v1/cluster.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Coordinator } from '../coordinator/coordinator.js';
import { RingkvError } from '../errors.js';
import { decodeContext, encodeContext, liveSiblings, type VersionedObject, type VersionVector } from '../version/index.js';
import { httpDate } from './http-date.js';
import { keyFromUrl, parseQuery } from './request-params.js';

export interface PublicApiOptions {
  readonly nodeId: string;
  readonly coordinator: Coordinator;
  /** Configured replication factor and default quorums. */
  readonly n: number;
  readonly r: number;
  readonly w: number;
  readonly maxValueBytes: number;
  /** The /v1/cluster document. */
  readonly clusterInfo: () => Promise<unknown> | unknown;
  /** Told of every read answered with two or more siblings (see SiblingWatch). */
  readonly onSiblings?: (key: string, count: number) => void;
}

const KV_PREFIX = '/v1/kv/';
const CONTEXT_HEADER = 'x-ringkv-context';
const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/** The client's context: as sent (forwarded as is) and decoded (decoded once, here). */
interface ClientContext {
  readonly text: string;
  /** Undefined when there is no context (the coordinator starts from an empty clock). */
  readonly clock: VersionVector | undefined;
}

const NO_CONTEXT: ClientContext = { text: '', clock: undefined };

function contextFromHeader(req: FastifyRequest): ClientContext {
  const h = req.headers[CONTEXT_HEADER];
  if (h === undefined) return NO_CONTEXT;
  if (Array.isArray(h)) throw new RingkvError('BAD_CONTEXT', 'X-Ringkv-Context must be given once');
  // Validated here so a malformed context is rejected before anything is stored or forwarded.
  return { text: h, clock: decodeContext(h) };
}

function contentTypeOf(req: FastifyRequest): string {
  const ct = req.headers['content-type'];
  if (ct === undefined || ct === '') return DEFAULT_CONTENT_TYPE;
  if (ct.length > 256) throw new RingkvError('BAD_REQUEST', 'Content-Type longer than 256 characters');
  return ct;
}

function sendObject(
  reply: FastifyReply,
  object: VersionedObject | undefined,
  key: string,
  onSiblings: PublicApiOptions['onSiblings'],
): FastifyReply {
  if (!object) {
    throw new RingkvError('NOT_FOUND', 'key not found');
  }
  const context = encodeContext(object.clock);
  const live = liveSiblings(object);
  if (live.length === 0) {
    // A deleted key: 404, but with the tombstone's context so a later write supersedes it.
    reply.header('X-Ringkv-Context', context);
    throw new RingkvError('NOT_FOUND', 'key not found (deleted)');
  }
  reply.header('X-Ringkv-Context', context);
  if (live.length === 1) {
    const s = live[0]!;
    return reply
      .code(200)
      .header('Content-Type', s.contentType)
      .header('Last-Modified', httpDate(s.lastModified))
      .send(Buffer.from(s.value.buffer, s.value.byteOffset, s.value.byteLength));
  }
  onSiblings?.(key, live.length);
  return reply
    .code(300)
    .header('Content-Type', 'application/json')
    .send(
      jsonBytes({
        context,
        siblings: live.map((s) => ({
          value: Buffer.from(s.value.buffer, s.value.byteOffset, s.value.byteLength).toString('base64'),
          contentType: s.contentType,
          lastModified: new Date(s.lastModified).toISOString(),
        })),
      }),
    );
}

/** JSON as bytes, so the Content-Type stays exactly `application/json` (SPEC §2). */
function jsonBytes(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v));
}

/** Registers the v1 routes. Encapsulated: its body parser applies to these routes only. */
export async function publicApi(app: FastifyInstance, opts: PublicApiOptions): Promise<void> {
  const { coordinator } = opts;
  // Values are opaque bytes whatever their Content-Type: take every body as a Buffer.
  // A pattern that matches every type (the empty one of a body sent without a header too),
  // not '*': fastify caches the parser it finds for each type through a pattern, but looks a
  // '*' parser up again on every request, parsing the header anew (~0.7 µs per PUT).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(/^/, { parseAs: 'buffer', bodyLimit: opts.maxValueBytes }, (_req, body, done) => {
    done(null, body);
  });

  app.put('/v1/kv/*', { config: { op: 'put' }, bodyLimit: opts.maxValueBytes }, async (req, reply) => {
    const key = keyFromUrl(req.raw.url ?? '', KV_PREFIX);
    const { quorum, timeoutMs } = parseQuery(req.query as Record<string, unknown>, 'w', opts.n, opts.w);
    const context = contextFromHeader(req);
    const contentType = contentTypeOf(req);
    const body = req.body;
    const value = body instanceof Uint8Array ? new Uint8Array(body.buffer, body.byteOffset, body.byteLength) : new Uint8Array(0);
    if (value.length > opts.maxValueBytes)
      throw new RingkvError('VALUE_TOO_LARGE', `value is ${value.length} bytes; the limit is ${opts.maxValueBytes}`);
    const clock = await coordinator.put(key, { value, contentType, deleted: false }, context.text, { w: quorum, timeoutMs }, context.clock);
    return reply.code(204).header('X-Ringkv-Context', encodeContext(clock)).send();
  });

  app.get('/v1/kv/*', { config: { op: 'get' } }, async (req, reply) => {
    const key = keyFromUrl(req.raw.url ?? '', KV_PREFIX);
    const { quorum, timeoutMs } = parseQuery(req.query as Record<string, unknown>, 'r', opts.n, opts.r);
    const { object } = await coordinator.get(key, { r: quorum, timeoutMs });
    return sendObject(reply, object, key, opts.onSiblings);
  });

  app.delete('/v1/kv/*', { config: { op: 'delete' } }, async (req, reply) => {
    const key = keyFromUrl(req.raw.url ?? '', KV_PREFIX);
    const { quorum, timeoutMs } = parseQuery(req.query as Record<string, unknown>, 'w', opts.n, opts.w);
    const context = contextFromHeader(req);
    const clock = await coordinator.put(
      key,
      { value: new Uint8Array(0), contentType: DEFAULT_CONTENT_TYPE, deleted: true },
      context.text,
      { w: quorum, timeoutMs },
      context.clock,
    );
    return reply.code(204).header('X-Ringkv-Context', encodeContext(clock)).send();
  });

  app.get('/v1/health', { config: { op: 'health' } }, async () => ({ status: 'ok', node: opts.nodeId }));

  app.get('/v1/cluster', { config: { op: 'cluster' } }, async () => opts.clusterInfo());
}
