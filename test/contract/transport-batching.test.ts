import { systemClock, systemTimers } from '../../src/runtime/index.js';
import { withBatching } from '../../src/transport/batching.js';
import type { Transport } from '../../src/transport/transport.js';
import { transportContract } from './transport.contract.js';
import { httpHarness, memoryHarness } from './transport-harnesses.js';

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

transportContract('withBatching(HttpTransport)', httpHarness(batched));
transportContract('withBatching(MemoryNetwork)', memoryHarness(batched));
