import Fastify from 'fastify';
import { internalRoutes } from '../../src/http/internal-plugin.js';
import { systemClock, systemTimers } from '../../src/runtime/index.js';
import { withBatching } from '../../src/transport/batching.js';
import { HttpTransport } from '../../src/transport/http.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import type { Transport } from '../../src/transport/transport.js';
import { transportContract } from './transport.contract.js';

// Every route the suite uses, so its sends go through the batch envelope.
const ROUTES = ['echo', 'from', 'busy', 'bad', 'boom', 'hang', 'no-such-route'];

/**
 * withBatching only batches idempotent sends; mark every send of the suite idempotent so the
 * contract exercises the batched path (sends with a signal still pass straight through).
 */
function batched(inner: Transport): Transport {
  const t = withBatching(inner, { clock: systemClock, timers: systemTimers }, { routes: ROUTES, maxInFlight: 1 });
  return { send: (to, route, body, opts) => t.send(to, route, body, { ...opts, idempotent: true }), close: () => t.close() };
}

transportContract('withBatching(HttpTransport)', async (handlers) => {
  const secret = 'contract-secret';
  const app = Fastify({ logger: false });
  await app.register(internalRoutes, { handlers, secret });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  const transport = batched(
    new HttpTransport({ clock: systemClock, timers: systemTimers }, { secret, advertise: 'client.test:7000' }),
  );
  return {
    transport,
    peer: `127.0.0.1:${address.port}`,
    deadPeer: '127.0.0.1:1',
    from: 'client.test:7000',
    openConnections: () =>
      new Promise<number>((resolve, reject) => app.server.getConnections((err, n) => (err ? reject(err) : resolve(n)))),
    async cleanup() {
      await transport.close();
      await app.close();
    },
  };
});

transportContract('withBatching(MemoryNetwork)', async (handlers) => {
  const net = new MemoryNetwork(systemTimers);
  net.register('server:1', handlers);
  net.register('silent:1', handlers);
  const transport = batched(net.transport('client:1'));
  return {
    transport,
    peer: 'server:1',
    deadPeer: 'nobody:1',
    from: 'client:1',
    silence() {
      net.cut('client:1', 'silent:1');
      return 'silent:1';
    },
    cleanup: () => transport.close(),
  };
});
