/**
 * Admin routes (SPEC §2): they change membership, so they take the cluster secret as
 * `Authorization: Bearer <secret>`, compared in constant time.
 */
import type { FastifyInstance } from 'fastify';
import { RingkvError } from '../errors.js';
import { bearerToken, secretsEqual } from './secret.js';

export interface AdminOptions {
  readonly secret: string | undefined;
  /** Start handing this node's data to the new owners, then shut down. */
  readonly leave: () => Promise<void>;
  /** Drop a (dead) member for good. Throws NOT_FOUND for an unknown id. */
  readonly remove: (id: string) => Promise<void>;
}

/** Admin routes take no body; whatever comes along is read up to this size and dropped. */
const ADMIN_BODY_LIMIT = 64 * 1024;

export async function adminApi(app: FastifyInstance, opts: AdminOptions): Promise<void> {
  // Admin routes take no body, so none may refuse the call: `curl -X POST -d ''` sends
  // application/x-www-form-urlencoded (no parser: 415) and many clients send an empty
  // application/json (the JSON parser's 400). Encapsulated: the public API keeps its parsers.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: ADMIN_BODY_LIMIT }, (_req, _body, done) => {
    done(null, undefined);
  });

  app.addHook('onRequest', async (req) => {
    const token = bearerToken(req.headers.authorization);
    if (opts.secret === undefined || token === undefined || !secretsEqual(token, opts.secret))
      throw new RingkvError('UNAUTHORIZED', 'admin routes need Authorization: Bearer <cluster secret>');
  });

  app.post('/v1/cluster/leave', { config: { op: 'admin' } }, async (_req, reply) => {
    await opts.leave();
    return reply.code(202).send({ status: 'leaving' });
  });

  app.post<{ Params: { id: string } }>('/v1/cluster/remove/:id', { config: { op: 'admin' } }, async (req, reply) => {
    await opts.remove(req.params.id);
    return reply.code(202).send({ status: 'removed', id: req.params.id });
  });
}
