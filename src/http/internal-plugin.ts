import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { RingkvError } from '../errors.js';
import { withBatchRoute } from '../transport/batching.js';
import type { InternalHandlers } from '../transport/transport.js';
import { bearerToken, secretMatcher } from './secret.js';

export interface InternalRoutesOptions {
  readonly handlers: InternalHandlers;
  /**
   * The cluster secret. Undefined or empty (a single node without seeds) means nobody may
   * call: every internal route answers 401.
   */
  readonly secret: string | undefined;
  /** Largest accepted request body in bytes (hint batches and transfers can be big). */
  readonly bodyLimit?: number;
}

export const INTERNAL_BODY_LIMIT = 64 * 1024 * 1024;

const OCTET_STREAM = 'application/octet-stream';

/**
 * Serves the node-to-node routes: `POST /internal/:route` with an octet-stream body, behind
 * `Authorization: Bearer <cluster secret>`. Register it without fastify-plugin: its body
 * parser, auth hook and error handler stay inside this plugin's context and do not touch the
 * public API.
 *
 * Auth runs in onRequest, before the body is read, so an unauthenticated caller cannot make
 * the node buffer 64 MiB, and no handler runs. Request logs never include headers (fastify's
 * default serializer logs method and url only), so the secret is not logged.
 */
export const internalRoutes: FastifyPluginAsync<InternalRoutesOptions> = async (app, opts) => {
  // Also serve the per-peer batch envelope (transport/batching.ts) over the same handlers.
  const handlers = withBatchRoute(opts.handlers, (err, route) => app.log.error({ err, route }, 'internal route failed'));
  const secret = opts.secret === '' ? undefined : opts.secret;
  const matchesSecret = secretMatcher(secret ?? '');
  const bodyLimit = opts.bodyLimit ?? INTERNAL_BODY_LIMIT;

  // Octet-stream only: whatever parsers the parent context has (JSON, text) do not apply here.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(OCTET_STREAM, { parseAs: 'buffer', bodyLimit }, (_req, body, done) => {
    done(null, body);
  });

  // A callback hook, not an async one: no promise per node-to-node request.
  app.addHook('onRequest', (req, _reply, done) => {
    const token = bearerToken(req.headers.authorization);
    // Compare even when there is nothing to compare against, so "no secret configured" and
    // "wrong secret" take the same path.
    const ok = matchesSecret(token ?? '') && token !== undefined && secret !== undefined;
    done(ok ? undefined : new RingkvError('UNAUTHORIZED', 'missing or wrong cluster secret'));
  });

  app.setErrorHandler((err: FastifyError | RingkvError, req: FastifyRequest, reply: FastifyReply) => {
    const error = toRingkvError(err);
    if (error.code === 'INTERNAL') req.log.error({ err }, 'internal route failed');
    if (error.code === 'UNAUTHORIZED') void reply.header('www-authenticate', 'Bearer');
    return reply.code(error.status).type('application/json').send(error.toJSON());
  });

  app.post<{ Params: { route: string } }>('/internal/:route', { bodyLimit }, async (req, reply) => {
    const handler = handlers.get(req.params.route);
    if (!handler) throw new RingkvError('NOT_FOUND', `unknown internal route ${JSON.stringify(req.params.route)}`);
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const from = req.headers['x-ringkv-from'];
    const out = await handler(body, typeof from === 'string' && from !== '' ? from : undefined);
    // A view, not a copy: replies can be large.
    return reply.code(200).type(OCTET_STREAM).send(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
  });

  // Anything else under /internal/ (other methods, nested paths) still needs the secret, then 404s.
  app.all('/internal/*', async () => {
    throw new RingkvError('NOT_FOUND', 'no such internal route');
  });
};

function toRingkvError(err: FastifyError | RingkvError): RingkvError {
  if (err instanceof RingkvError) return err;
  // fastify's own client errors (body too large, wrong content type, malformed request);
  // anything else a handler throws is our bug, and its message stays in the log.
  const own = typeof err.code === 'string' && err.code.startsWith('FST_');
  const status = err.statusCode ?? 500;
  if (own && status === 413) return new RingkvError('VALUE_TOO_LARGE', err.message);
  if (own && status >= 400 && status < 500) return new RingkvError('BAD_REQUEST', err.message);
  return new RingkvError('INTERNAL', 'internal error');
}
