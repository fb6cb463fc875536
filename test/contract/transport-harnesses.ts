/**
 * The two places the transport contract suite runs: a real fastify server behind the internal
 * plugin reached by HttpTransport, and the in-memory network. `wrap` layers a wrapper (e.g.
 * batching) over the transport under test, so each wrapper reruns the same suite.
 */
import { createServer } from 'node:net';
import Fastify from 'fastify';
import { internalRoutes } from '../../src/http/internal-plugin.js';
import { systemClock, systemTimers } from '../../src/runtime/index.js';
import { HttpTransport } from '../../src/transport/http.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import type { Transport } from '../../src/transport/transport.js';
import type { MakeHarness } from './transport.contract.js';

type Wrap = (inner: Transport) => Transport;
const same: Wrap = (t) => t;

/** A local port with nothing listening on it (bound, then released). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export function httpHarness(wrap: Wrap = same): MakeHarness {
  return async (handlers) => {
    const secret = 'contract-secret';
    const app = Fastify({ logger: false });
    await app.register(internalRoutes, { handlers, secret });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    const transport = wrap(
      new HttpTransport({ clock: systemClock, timers: systemTimers }, { secret, advertise: 'client.test:7000' }),
    );
    return {
      transport,
      peer: `127.0.0.1:${address.port}`,
      deadPeer: `127.0.0.1:${await deadPort()}`,
      from: 'client.test:7000',
      openConnections: () =>
        new Promise<number>((resolve, reject) =>
          app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
        ),
      async cleanup() {
        await transport.close();
        await app.close();
      },
    };
  };
}

export function memoryHarness(wrap: Wrap = same): MakeHarness {
  return async (handlers) => {
    const net = new MemoryNetwork(systemTimers);
    net.register('server:1', handlers);
    net.register('silent:1', handlers);
    const transport = wrap(net.transport('client:1'));
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
  };
}
