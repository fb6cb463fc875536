/**
 * Assembles the node's fastify server: public v1 API, admin routes, internal routes, metrics,
 * and the one place where errors become HTTP statuses.
 */
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, LogController } from 'fastify';
import { RingkvError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { InternalHandlers } from '../transport/transport.js';
import { type AdminOptions, adminApi } from './admin-plugin.js';
import { internalRoutes } from './internal-plugin.js';
import { type PublicApiOptions, publicApi } from './public-plugin.js';

export interface AppOptions {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly publicApi: PublicApiOptions;
  readonly admin: AdminOptions;
  readonly internal: { readonly handlers: InternalHandlers; readonly secret: string | undefined };
  /** True while the node shuts down: public requests are refused as not applied. */
  readonly draining?: () => boolean;
}

/** Map any error to SPEC §2's JSON error body and status. */
export function toRingkvError(err: unknown): RingkvError {
  if (err instanceof RingkvError) return err;
  const fe = err as Partial<FastifyError>;
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new RingkvError('VALUE_TOO_LARGE', 'value larger than the limit');
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500)
    return new RingkvError('BAD_REQUEST', fe.message ?? 'bad request');
  return new RingkvError('INTERNAL', 'internal error');
}

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.log as FastifyBaseLogger,
    // Per-request log lines cost more than the request on the hot path; metrics cover them.
    logController: new LogController({ disableRequestLogging: true }),
    // No per-request child logger either: requests log through the node's logger.
    childLoggerFactory: (logger) => logger,
    // Keys are up to 512 bytes, i.e. up to ~1.5 KB percent-encoded.
    routerOptions: { maxParamLength: 4096 },
    // Our own draining hook answers in SPEC form instead (see below).
    return503OnClosing: false,
    // The router rejects a malformed percent-encoding before any route runs; answer it in
    // SPEC form too (the only such path is a key).
    frameworkErrors: (err, _req, reply) => {
      const e =
        err.code === 'FST_ERR_BAD_URL'
          ? new RingkvError('BAD_KEY', 'the path is not valid percent-encoded UTF-8')
          : toRingkvError(err);
      const raw = reply as unknown as FastifyReply;
      void raw.code(e.status).header('Content-Type', 'application/json').send(JSON.stringify(e.toJSON()));
    },
    // Internal batches may be large; the public plugin sets its own lower limit.
    bodyLimit: 64 * 1024 * 1024,
  });

  // While draining, refuse new public requests with a JSON 503 that says nothing was applied
  // (clients retry them elsewhere, even writes) and close each connection after the answer.
  // Internal routes keep working so peers can finish what they started.
  app.addHook('onRequest', (req, reply, done) => {
    if (!req.url.startsWith('/internal/') && opts.draining?.()) {
      const e = new RingkvError('UNAVAILABLE', 'node is shutting down; the request was not applied', { applied: false });
      void reply.code(503).header('Connection', 'close').header('Content-Type', 'application/json').send(JSON.stringify(e.toJSON()));
      return;
    }
    done();
  });

  app.setErrorHandler((err, req, reply) => {
    const e = toRingkvError(err);
    if (e.code === 'INTERNAL') req.log.error({ err }, 'request failed');
    void reply.code(e.status).header('Content-Type', 'application/json').send(JSON.stringify(e.toJSON()));
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new RingkvError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`);
    void reply.code(404).header('Content-Type', 'application/json').send(JSON.stringify(e.toJSON()));
  });

  // A callback hook, not an async one: no promise per request on the hot path.
  app.addHook('onResponse', (req, reply, done) => {
    const op = (req.routeOptions.config as { op?: string } | undefined)?.op;
    if (op) {
      opts.metrics.httpRequests.inc({ op, status: String(reply.statusCode) });
      opts.metrics.httpDuration.observe({ op }, reply.elapsedTime / 1000);
    }
    done();
  });

  app.get('/metrics', async (_req, reply) => {
    const body = await opts.metrics.registry.metrics();
    return reply.header('Content-Type', opts.metrics.registry.contentType).send(body);
  });

  await app.register(publicApi, opts.publicApi);
  await app.register(adminApi, opts.admin);
  await app.register(internalRoutes, opts.internal);
  return app;
}
