/**
 * Test hosts for fault injection: one Linux network namespace per node, joined by a bridge
 * that lives in a namespace of its own, plus a client namespace for the workload. Nothing is
 * created in, or changed in, the machine's own namespace: every veth is created inside the
 * bridge namespace (`ip -n <br> link add ... peer ... netns <host>`), every address is in
 * 10.77.<x>.0/24 inside these namespaces, and iptables rules are only ever added to or flushed
 * from the node namespaces.
 *
 * Layout for run prefix `rkv-<pid>`:
 *
 *   rkv-<pid>-br   bridge `br0`, one veth end per host (`v-n1`, ..., `v-c`)
 *   rkv-<pid>-n1   eth0 = 10.77.<x>.11/24, lo          (node n1)
 *   ...
 *   rkv-<pid>-c    eth0 = 10.77.<x>.100/24, lo         (workload client)
 *
 * Partitions drop packets silently with `iptables -A INPUT -s <peer> -j DROP` on both ends of
 * each cut link (DROP in OUTPUT would make the kernel answer EPERM locally, which no real
 * network does). Heal is `iptables -F INPUT` in every node namespace.
 *
 * Cleanup happens on every path: `destroy()`; a process 'exit'/SIGINT/SIGTERM hook; a detached
 * janitor process that removes the namespaces if this process dies without cleaning up
 * (SIGKILL, OOM); and `cleanupLeftovers()` which, at the start of a run, removes namespaces
 * of earlier runs whose owning process is gone.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const JANITOR = fileURLToPath(new URL('./janitor.mjs', import.meta.url));
/** All fault-test namespaces start with this; `<PREFIX>-<pid>-...`. */
export const NS_PREFIX = 'rkv';
const NS_RE = new RegExp(`^${NS_PREFIX}-(\\d+)-`);

/** Run a command; resolve stdout, reject with stderr in the message. */
export function run(cmd, args, { timeoutMs = 15_000, allowFail = false } = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err && !allowFail) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(String(stdout));
    });
  });
}

function runSync(cmd, args) {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).toString();
  } catch {
    return '';
  }
}

/**
 * Why netns tests cannot run here, or undefined if they can: needs root, `ip` with netns
 * support and `iptables`.
 */
export function netnsUnavailableReason() {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'not running as root';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
  } catch {
    return '`ip netns` is unavailable (install iproute2)';
  }
  try {
    execFileSync('iptables', ['--version'], { stdio: 'ignore' });
  } catch {
    return '`iptables` is unavailable (install iptables)';
  }
  return undefined;
}

/** Names of every namespace on the machine. */
function listNamespaces() {
  return runSync('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((n) => n);
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return err.code === 'EPERM';
  }
  // A recycled pid that is not a node process does not own namespaces.
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('node');
  } catch {
    return false;
  }
}

/**
 * Synchronously removes every namespace whose name starts with `prefix` (`rkv-123-`): kills
 * each process inside it (SIGKILL also ends stopped processes), then deletes it; bridge
 * namespace last. Used by the exit hook and the janitor, where nothing async can run.
 */
export function removeNamespacesSync(prefix) {
  const names = listNamespaces().filter((n) => n.startsWith(prefix));
  names.sort((a, b) => Number(a.endsWith('-br')) - Number(b.endsWith('-br')));
  for (const ns of names) {
    for (let attempt = 0; attempt < 20; attempt++) {
      const pids = runSync('ip', ['netns', 'pids', ns])
        .split('\n')
        .map((s) => Number(s.trim()))
        .filter((p) => p > 0 && p !== process.pid);
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
    runSync('ip', ['netns', 'del', ns]);
  }
  return names;
}

/**
 * Removes namespaces left by earlier runs (`rkv-<pid>-*` whose pid is no longer a live node
 * process). Runs of other live processes are left alone. Returns the names removed.
 */
export function cleanupLeftovers() {
  const owners = new Set();
  for (const ns of listNamespaces()) {
    const m = NS_RE.exec(ns);
    if (m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) owners.add(m[1]);
  }
  const removed = [];
  for (const pid of owners) removed.push(...removeNamespacesSync(`${NS_PREFIX}-${pid}-`));
  return removed;
}

/** Every TestHosts not yet destroyed, for the exit hook. */
const live = new Set();
let hooksInstalled = false;

function installExitHooks() {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.once('exit', () => {
    for (const h of live) h.destroySync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      for (const h of live) h.destroySync();
      // Re-raise with the default action so the exit status says what happened.
      process.kill(process.pid, sig);
    });
  }
}

/**
 * A set of test hosts: `nodes` node namespaces and one client namespace on one bridge.
 * Create with `TestHosts.create()`; always `destroy()` (also done on exit and signals).
 */
export class TestHosts {
  /**
   * @param {{ nodes: number, port?: number, log?: (msg: string) => void }} opts
   */
  static async create(opts) {
    const reason = netnsUnavailableReason();
    if (reason) throw new Error(`cannot create network namespaces: ${reason}`);
    cleanupLeftovers();
    const hosts = new TestHosts(opts);
    installExitHooks();
    live.add(hosts);
    hosts.startJanitor();
    try {
      await hosts.build();
    } catch (err) {
      await hosts.destroy();
      throw err;
    }
    return hosts;
  }

  constructor({ nodes, port = 8080, log = () => {} }) {
    this.prefix = `${NS_PREFIX}-${process.pid}-`;
    // Addresses are private to these namespaces; the third octet only tells runs apart in logs.
    this.subnet = `10.77.${1 + (process.pid % 250)}`;
    this.port = port;
    this.log = log;
    this.bridgeNs = `${this.prefix}br`;
    /** @type {{ name: string, ns: string, ip: string, address: string, url: string }[]} */
    this.nodes = [];
    for (let i = 1; i <= nodes; i++) {
      const ip = `${this.subnet}.${10 + i}`;
      this.nodes.push({ name: `n${i}`, ns: `${this.prefix}n${i}`, ip, address: `${ip}:${port}`, url: `http://${ip}:${port}` });
    }
    this.client = { name: 'c', ns: `${this.prefix}c`, ip: `${this.subnet}.100` };
    this.destroyed = false;
    /** Cut links currently in force, as "a|b" with a < b. */
    this.cuts = new Set();
  }

  /** Namespace, address and URL of node `name` (`n1`...). */
  node(name) {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no test host ${name}`);
    return n;
  }

  startJanitor() {
    const child = spawn(process.execPath, [JANITOR, String(process.pid), this.prefix], {
      detached: true,
      stdio: 'ignore',
    });
    child.unref();
    this.janitorPid = child.pid;
  }

  async build() {
    const br = this.bridgeNs;
    await run('ip', ['netns', 'add', br]);
    await run('ip', ['-n', br, 'link', 'set', 'lo', 'up']);
    await run('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge']);
    await run('ip', ['-n', br, 'link', 'set', 'br0', 'up']);
    for (const h of [...this.nodes, this.client]) {
      await run('ip', ['netns', 'add', h.ns]);
      const end = `v-${h.name}`;
      // Created inside the bridge namespace, peer moved straight into the host namespace:
      // the machine's own namespace never sees either end.
      await run('ip', ['-n', br, 'link', 'add', end, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns]);
      await run('ip', ['-n', br, 'link', 'set', end, 'master', 'br0']);
      await run('ip', ['-n', br, 'link', 'set', end, 'up']);
      await run('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']);
      await run('ip', ['-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
      await run('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
    }
    this.log(`test hosts up: bridge ${br}, ${this.nodes.map((n) => `${n.name}=${n.ip}`).join(' ')}, client=${this.client.ip}`);
  }

  /** argv prefix that runs a command inside namespace `ns` (exec, so the pid is the command's). */
  execArgs(ns, argv) {
    return ['netns', 'exec', ns, ...argv];
  }

  /** iptables inside a node namespace (never the machine's own). */
  async iptables(name, args) {
    const { ns } = this.node(name);
    await run('ip', ['netns', 'exec', ns, 'iptables', '-w', '5', ...args]);
  }

  /**
   * Cut the links between every pair in `pairs` ([['n1','n3'], ...]), dropping packets both
   * ways silently. Links already cut stay cut.
   */
  async cut(pairs) {
    for (const [a, b] of pairs) {
      const key = [a, b].sort().join('|');
      if (this.cuts.has(key)) continue;
      await this.iptables(a, ['-A', 'INPUT', '-s', this.node(b).ip, '-j', 'DROP']);
      await this.iptables(b, ['-A', 'INPUT', '-s', this.node(a).ip, '-j', 'DROP']);
      this.cuts.add(key);
    }
  }

  /** Remove every cut (flush INPUT in every node namespace). */
  async heal() {
    for (const n of this.nodes) await this.iptables(n.name, ['-F', 'INPUT']);
    this.cuts.clear();
  }

  /** The DROP rules actually installed, per node (for reports and tests of the harness). */
  async rules() {
    const out = {};
    for (const n of this.nodes) {
      const text = await run('ip', ['netns', 'exec', n.ns, 'iptables', '-w', '5', '-S', 'INPUT']);
      out[n.name] = text.split('\n').filter((l) => l.includes('DROP'));
    }
    return out;
  }

  /** Kill every process in the namespaces and delete them (bridge last). Idempotent. */
  destroySync() {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    removeNamespacesSync(this.prefix);
    if (this.janitorPid) {
      try {
        process.kill(this.janitorPid, 'SIGTERM');
      } catch {
        // gone already
      }
    }
  }

  async destroy() {
    this.destroySync();
    const left = listNamespaces().filter((n) => n.startsWith(this.prefix));
    if (left.length > 0) throw new Error(`namespaces left after cleanup: ${left.join(', ')}`);
  }
}

/** True if namespace `name` exists (for tests of the cleanup). */
export function namespaceExists(name) {
  return existsSync(`/run/netns/${name}`) || listNamespaces().includes(name);
}
