/**
 * The node's HTTP edge and lifecycle as an operator meets them (SPEC §1, §2): the cluster
 * secret on internal and admin routes over real sockets, admin routes called the way curl
 * calls them, and the addresses a node dials its peers from. In-process nodes over a
 * MemoryStore; inject() where no socket matters.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseNodeConfig } from '../../../src/config.js';
import { RingkvNode } from '../../../src/node.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { systemClock } from '../../../src/runtime/clock.js';
import { systemTimers } from '../../../src/runtime/timers.js';
import { MemoryStore } from '../../../src/storage/index.js';
import { HttpTransport } from '../../../src/transport/http.js';
import { TransportError } from '../../../src/transport/transport.js';
import { freePort, waitFor } from '../../helpers/ports.js';
import { raw } from '../../helpers/raw-http.js';

const SECRET = 'unit-test-cluster-secret';

/** Nodes started by the current test; stopped after it whatever happened. */
const started: RingkvNode[] = [];

afterEach(async () => {
  for (const node of started.splice(0)) await node.stop();
});

/** A node on a free port of 127.0.0.1 (unless `argv` says --listen) over a MemoryStore. */
async function startNode(argv: string[]): Promise<RingkvNode> {
  const listen = argv.includes('--listen') ? [] : ['--listen', `127.0.0.1:${await freePort()}`];
  const node = new RingkvNode(parseNodeConfig([...listen, ...argv]), { store: new MemoryStore(), log: silentLogger() });
  started.push(node);
  await node.start();
  return node;
}

/** What an accepted secret cannot do: an empty list when it works for peers and admins alike. */
async function secretProblems(secret: string): Promise<string[]> {
  const node = await startNode(['--id', 's1', '--secret', secret]);
  const address = `127.0.0.1:${node.port}`;
  const problems: string[] = [];

  // Node to node: a peer's transport with the same secret. The route does not exist, so a
  // caller that got past the secret check is told 404; 401 (or no answer) means it did not.
  const transport = new HttpTransport({ clock: systemClock, timers: systemTimers }, { secret });
  try {
    await transport.send(address, 'no-such-route', new Uint8Array(0), { timeoutMs: 5000 });
    problems.push('internal: unknown route answered 2xx');
  } catch (err) {
    const status = err instanceof TransportError ? err.status : undefined;
    if (status !== 404) problems.push(`internal: ${String(err)}`);
  } finally {
    await transport.close();
  }

  // Admin, as curl sends `-H "Authorization: Bearer $SECRET"`: the secret's UTF-8 bytes.
  // node:http writes a header string as Latin-1, so this string puts exactly those bytes on
  // the wire. Removing an unknown member is 404 once the secret is accepted.
  const header = `Bearer ${Buffer.from(secret, 'utf8').toString('latin1')}`;
  try {
    const res = await raw(`http://${address}`, 'POST', '/v1/cluster/remove/nobody', { headers: { authorization: header } });
    if (res.status !== 404) problems.push(`admin: ${res.status} ${res.text()}`);
  } catch (err) {
    problems.push(`admin: cannot send the header: ${String(err)}`);
  }
  return problems;
}

describe('the cluster secret', () => {
  it.each([
    ['a trailing newline (a Kubernetes secret made with echo)', `${SECRET}\n`],
    ['a trailing space', `${SECRET} `],
    ['a leading space', ` ${SECRET}`],
    ['a non-ASCII letter', 'clüster-secret'],
    ['a character beyond Latin-1', `${SECRET}-€`],
    ['base64 from openssl rand', 'c2VjcmV0LXNlY3JldA=='],
    ['spaces inside (a passphrase)', 'correct horse battery staple'],
  ])('with %s is either refused by the config or works for peers and admins', async (_name, secret) => {
    let refusal: unknown;
    try {
      parseNodeConfig(['--id', 's1', '--secret', secret]);
    } catch (err) {
      refusal = err;
    }
    // Before: every one of these was accepted, and only the base64 one could authenticate:
    // the node started and answered, but no peer (or no admin) could ever get in.
    if (refusal === undefined) expect(await secretProblems(secret)).toEqual([]);
    else expect(refusal).toMatchObject({ name: 'ConfigError', flag: 'secret' });
  });
});

describe('admin routes', () => {
  // `curl -X POST -d ''` sends Content-Type application/x-www-form-urlencoded; many HTTP
  // libraries send application/json with an empty body. Admin routes take no body, so
  // neither may stand between an authorised operator and the route.
  it.each([
    ['curl -d (form-urlencoded, empty)', 'application/x-www-form-urlencoded', ''],
    ['an empty JSON body', 'application/json', ''],
    ['a JSON body', 'application/json', '{}'],
    ['an octet-stream body', 'application/octet-stream', 'x'],
  ])('reach their handler whatever body comes along: %s', async (_name, contentType, payload) => {
    const node = await startNode(['--id', 'a1', '--secret', SECRET]);
    const res = await node.http.inject({
      method: 'POST',
      url: '/v1/cluster/remove/nobody',
      headers: { authorization: `Bearer ${SECRET}`, 'content-type': contentType },
      payload,
    });
    // Before: 400 BAD_REQUEST "Unsupported Media Type" / "Body cannot be empty ...".
    expect(res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'no member nobody' } });
    expect(res.statusCode).toBe(404);
  });

  it('still check the secret before anything else, body or not', async () => {
    const node = await startNode(['--id', 'a1', '--secret', SECRET]);
    for (const contentType of ['application/x-www-form-urlencoded', 'application/json', undefined]) {
      const res = await node.http.inject({
        method: 'POST',
        url: '/v1/cluster/remove/nobody',
        headers: { authorization: 'Bearer wrong-secret', ...(contentType === undefined ? {} : { 'content-type': contentType }) },
        payload: contentType === undefined ? undefined : 'x',
      });
      expect(res.statusCode).toBe(401);
    }
  });
});

describe('--advertise', () => {
  it('may be an address that is not on a local interface (NAT, cloud public IP, published port)', async () => {
    // SPEC §1: --advertise is the address *other* nodes use to reach this one. Behind NAT, an
    // AWS elastic IP or a Docker published port, that address is not on any local interface,
    // and the node listens on another one. Before: the node bound every outgoing connection to
    // the advertised IP, every connect failed with EADDRNOTAVAIL, and it could never reach a
    // single peer, not even its seed on 127.0.0.1.
    const seed = await startNode(['--id', 'a', '--secret', SECRET, '--gossip-interval-ms', '100']);
    const port = await freePort();
    await startNode([
      '--id', 'b',
      '--secret', SECRET,
      '--gossip-interval-ms', '100',
      '--listen', `127.0.0.1:${port}`,
      // TEST-NET-1 (RFC 5737): never a local address.
      '--advertise', `192.0.2.10:${port}`,
      '--seeds', `127.0.0.1:${seed.port}`,
    ]);
    type View = { members: { id: string; address: string }[] };
    // b's gossip reaching its seed is enough: the seed then lists b, at its advertised address.
    const b = await waitFor(
      "the seed to hear of b",
      async () => {
        const view = (await seed.http.inject({ method: 'GET', url: '/v1/cluster' })).json<View>();
        return view.members.find((m) => m.id === 'b');
      },
      5000,
    );
    expect(b.address).toBe(`192.0.2.10:${port}`);
  });
});
