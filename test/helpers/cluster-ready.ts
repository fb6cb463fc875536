/**
 * "Converged" (every node sees every other up on the same ring) is not yet "ready for quorum
 * traffic": a node's per-peer circuit breaker may still be open from gossip that failed while
 * its peers were starting (or down), and then its replica calls to that peer fail at once for
 * a few seconds although membership says the peer is up. waitQuorumReady waits, with a
 * deadline, until no node reports a breaker that is not closed (its `*breaker*` gauges are all
 * 0) and a w=all write and an r=all read succeed through every node.
 */
import { waitFor } from './ports.js';
import { parseExposition } from './prometheus.js';
import { kvPath, raw } from './raw-http.js';

let attempt = 0;

async function breakersClosed(url: string): Promise<boolean> {
  const res = await raw(url, 'GET', '/metrics');
  if (res.status !== 200) return false;
  return parseExposition(res.text())
    .samples.filter((s) => s.name.includes('breaker'))
    .every((s) => s.value === 0);
}

export async function waitQuorumReady(urls: readonly string[], timeoutMs = 45_000): Promise<void> {
  await waitFor(
    'closed circuit breakers, and a w=all write and an r=all read to succeed through every node',
    async () => {
      for (const url of urls) {
        // Traffic first: an open breaker only moves on when a send reaches it.
        const key = `__ready__:${url}:${++attempt}`;
        const put = await raw(url, 'PUT', kvPath(key, 'w=all'), { body: 'ready' });
        if (put.status !== 204) return false;
        const get = await raw(url, 'GET', kvPath(key, 'r=all'));
        if (get.status !== 200) return false;
      }
      for (const url of urls) if (!(await breakersClosed(url))) return false;
      return true;
    },
    timeoutMs,
    250,
  );
}
