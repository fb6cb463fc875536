/**
 * Node processes on test hosts (netns.mjs): one `node dist/cli.js node ...` per node
 * namespace, started with `ip netns exec` (which execs, so the child's pid is the node's own
 * pid and signals reach it directly: SIGKILL, SIGSTOP, SIGCONT), plus the handle of the
 * workload runner in the client namespace, through which every HTTP probe is made.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const RUNNER = fileURLToPath(new URL('./client-runner.mjs', import.meta.url));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll `check` until it returns a truthy value or `timeoutMs` passes (then throw `what`). */
export async function waitFor(what, check, timeoutMs = 20_000, everyMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${lastErr.message ?? lastErr}` : ''}`);
    await sleep(everyMs);
  }
}

function tail(path, bytes) {
  try {
    const s = readFileSync(path, 'utf8');
    return s.slice(-bytes);
  } catch {
    return '';
  }
}

/** The workload process in the client namespace, spoken to over stdin/stdout JSON lines. */
export class Runner {
  /** `distDir`: the build whose SDK (`<distDir>/client`) the workloads use. */
  static start({ hosts, dir, seed, distDir }) {
    const r = new Runner(hosts, dir, seed, distDir);
    r.spawn();
    return r;
  }

  constructor(hosts, dir, seed, distDir) {
    this.hosts = hosts;
    this.distDir = distDir;
    this.historyPath = join(dir, 'history.jsonl');
    this.logPath = join(dir, 'runner.log');
    this.seed = seed;
    this.nextId = 1;
    this.pending = new Map();
  }

  spawn() {
    const fd = openSync(this.logPath, 'a');
    const argv = this.hosts.execArgs(this.hosts.client.ns, [process.execPath, RUNNER, this.historyPath, String(this.seed), this.distDir]);
    this.proc = spawn('ip', argv, { stdio: ['pipe', 'pipe', fd] });
    closeSync(fd);
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
    this.exited.then(({ code, signal }) => {
      for (const { reject } of this.pending.values()) reject(new Error(`workload runner exited (${code ?? signal}): ${tail(this.logPath, 2000)}`));
      this.pending.clear();
    });
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg);
      else p.reject(new Error(`runner ${p.cmd}: ${msg.error}`));
    });
  }

  /** Send one command; resolves with the reply. */
  call(cmd, fields = {}, timeoutMs = 120_000) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`runner ${cmd}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        cmd,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.stdin.write(`${JSON.stringify({ id, cmd, ...fields })}\n`);
    });
  }

  /** An HTTP request from inside the client namespace: { status, body } (status 0 = no answer). */
  http(url, { method = 'GET', timeoutMs = 2000 } = {}) {
    return this.call('http', { url, method, timeoutMs }, timeoutMs + 5000);
  }

  async json(url, timeoutMs) {
    const r = await this.http(url, { timeoutMs });
    if (r.status !== 200) throw new Error(`GET ${url} -> ${r.status || r.error}`);
    return JSON.parse(r.body);
  }

  async exit() {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    await this.call('exit', {}, 10_000).catch(() => {});
    const done = await Promise.race([this.exited, sleep(5000).then(() => undefined)]);
    if (!done) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** One ringkv node in its namespace. */
export class NsNode {
  constructor({ hosts, host, cli, argv, logPath }) {
    this.hosts = hosts;
    this.cli = cli;
    this.host = host;
    this.id = host.name;
    this.url = host.url;
    this.argv = argv;
    this.logPath = logPath;
    this.proc = undefined;
    this.paused = false;
    this.starts = 0;
  }

  get running() {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get pid() {
    return this.proc?.pid;
  }

  start() {
    if (this.running) return;
    const fd = openSync(this.logPath, 'a');
    writeSync(fd, `\n===== ${new Date().toISOString()} start #${++this.starts}\n`);
    const argv = this.hosts.execArgs(this.host.ns, [process.execPath, this.cli, 'node', ...this.argv]);
    const proc = spawn('ip', argv, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    this.proc = proc;
    this.paused = false;
  }

  /** Send `signal` (default SIGKILL) and wait for the process to end (SIGKILL after 15 s). */
  async kill(signal = 'SIGKILL') {
    if (!this.running) return;
    this.proc.kill(signal);
    if (this.paused && signal !== 'SIGKILL') this.proc.kill('SIGCONT');
    const ended = await Promise.race([this.exited, sleep(15_000).then(() => undefined)]);
    if (!ended) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
    this.paused = false;
  }

  pause() {
    if (!this.running) return;
    this.proc.kill('SIGSTOP');
    this.paused = true;
  }

  resume() {
    if (!this.running || !this.paused) return;
    this.proc.kill('SIGCONT');
    this.paused = false;
  }

  logTail(bytes = 3000) {
    return tail(this.logPath, bytes);
  }
}

/**
 * A ringkv cluster on test hosts. Every probe goes through `runner` (the client namespace);
 * the machine's own namespace has no route to the nodes.
 */
export class NsCluster {
  /**
   * @param {{ hosts: import('./netns.mjs').TestHosts, runner: Runner, dir: string, cli: string, secret: string,
   *   gossipIntervalMs: number, antiEntropyIntervalMs: number, hintedHandoff: boolean,
   *   extraArgs?: string[], log?: (m: string) => void }} opts
   */
  constructor(opts) {
    const { hosts, dir, secret } = opts;
    this.hosts = hosts;
    this.runner = opts.runner;
    this.log = opts.log ?? (() => {});
    const zones = ['a', 'b', 'c'];
    const seeds = hosts.nodes
      .slice(0, Math.min(2, hosts.nodes.length))
      .map((n) => n.address)
      .join(',');
    this.nodes = hosts.nodes.map(
      (host, i) =>
        new NsNode({
          hosts,
          host,
          cli: opts.cli,
          logPath: join(dir, `${host.name}.log`),
          argv: [
            '--id', host.name,
            '--listen', host.address,
            '--advertise', host.address,
            '--seeds', seeds,
            '--secret', secret,
            '--data', join(dir, 'data', host.name),
            '--zone', zones[i % zones.length],
            '--gossip-interval-ms', String(opts.gossipIntervalMs),
            '--anti-entropy-interval-ms', String(opts.antiEntropyIntervalMs),
            '--hinted-handoff', String(opts.hintedHandoff),
            ...(opts.extraArgs ?? []),
          ],
        }),
    );
  }

  node(id) {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  get urls() {
    return this.nodes.map((n) => n.url);
  }

  async start() {
    for (const n of this.nodes) n.start();
    for (const n of this.nodes) await this.waitHealthy(n);
    await this.waitConverged(30_000);
  }

  async waitHealthy(n, timeoutMs = 20_000) {
    await waitFor(
      `${n.id} /v1/health`,
      async () => {
        if (!n.running) throw new Error(`${n.id} exited: ${n.logTail(2000)}`);
        return (await this.runner.http(`${n.url}/v1/health`, { timeoutMs: 1000 })).status === 200;
      },
      timeoutMs,
    );
  }

  /** Each node's /v1/cluster: { id: view | undefined }. */
  async views(timeoutMs = 1500) {
    const out = {};
    await Promise.all(
      this.nodes.map(async (n) => {
        out[n.id] = await this.runner.json(`${n.url}/v1/cluster`, timeoutMs).catch(() => undefined);
      }),
    );
    return out;
  }

  /** True when every node sees every node up, on the same ring. */
  async converged() {
    const views = Object.values(await this.views());
    if (views.some((v) => !v)) return false;
    if (new Set(views.map((v) => v.ring?.checksum)).size !== 1) return false;
    const ids = this.nodes.map((n) => n.id);
    return views.every((v) => ids.every((id) => v.members?.some((m) => m.id === id && m.status === 'up')));
  }

  async waitConverged(timeoutMs) {
    try {
      await waitFor('every node to see every node up on one ring', () => this.converged(), timeoutMs, 250);
    } catch (err) {
      throw new Error(`${err.message}; views: ${await this.describeViews()}`);
    }
  }

  /** Each node's view in one line: `n1: ring ab12 n1=up n2=down ... hints 3`. */
  async describeViews() {
    const views = await this.views();
    return Object.entries(views)
      .map(([id, v]) =>
        v
          ? `${id}: ring ${String(v.ring?.checksum ?? '?').slice(0, 8)} ${(v.members ?? []).map((m) => `${m.id}=${m.status}`).join(' ')} hints ${v.hints?.pending ?? '?'} transfers ${v.transfers?.pending ?? '?'}`
          : `${id}: no answer`,
      )
      .join('; ');
  }

  /** Pending hints summed over the nodes (undefined if a node did not answer). */
  async pendingHints() {
    const views = Object.values(await this.views());
    if (views.some((v) => !v)) return undefined;
    return views.reduce((s, v) => s + (v.hints?.pending ?? 0), 0);
  }

  async stop() {
    await Promise.all(this.nodes.map((n) => n.kill('SIGKILL')));
  }
}
