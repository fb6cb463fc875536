/**
 * Real-process test clusters: spawns `node dist/cli.js node ...` per member on loopback with
 * free ports and temp data dirs, waits until every node sees every other as up on the same
 * ring, and cleans up every process and directory in stop().
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, waitFor } from './ports.js';

export const CLI = resolve(import.meta.dirname, '../../dist/cli.js');

export interface TestNode {
  readonly id: string;
  readonly url: string;
  readonly address: string;
  readonly dataDir: string;
  /** stdout+stderr so far (for debugging failures). */
  output(): string;
  /** Send a signal and wait for the process to exit (default SIGKILL). */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start the process again with the same flags and data dir; waits for /v1/health. */
  restart(): Promise<void>;
  readonly running: boolean;
  readonly pid: number | undefined;
}

export interface TestCluster {
  readonly urls: string[];
  readonly nodes: TestNode[];
  readonly secret: string;
  readonly root: string;
  /** Start one more node that joins through the existing ones (waits for /v1/health only). */
  addNode(opts?: { zone?: string; args?: string[] }): Promise<TestNode>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  readonly nodes?: number;
  /** Extra flags for every node. */
  readonly args?: string[];
  /** Extra flags per node index. */
  readonly nodeArgs?: (i: number) => string[];
  readonly zones?: string[];
  /** Wait for full convergence (default true). */
  readonly waitConverged?: boolean;
}

interface ClusterView {
  members: { id: string; status: string }[];
  ring: { checksum: string };
}

export async function clusterView(url: string): Promise<ClusterView> {
  const res = await fetch(`${url}/v1/cluster`);
  if (res.status !== 200) throw new Error(`GET /v1/cluster -> ${res.status}`);
  return (await res.json()) as ClusterView;
}

/** Every URL sees exactly `ids` as up and all agree on the ring checksum. */
export async function converged(urls: string[], ids: string[]): Promise<boolean> {
  const views = await Promise.all(urls.map(clusterView));
  const sums = new Set(views.map((v) => v.ring.checksum));
  if (sums.size !== 1) return false;
  return views.every((v) => ids.every((id) => v.members.some((m) => m.id === id && m.status === 'up')));
}

class ProcNode implements TestNode {
  private proc: ChildProcess | undefined;
  private out: string[] = [];
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly id: string,
    readonly address: string,
    readonly dataDir: string,
    private readonly argv: string[],
    private readonly env: Record<string, string>,
  ) {}

  get url(): string {
    return `http://${this.address}`;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  output(): string {
    return this.out.join('');
  }

  spawn(): void {
    const proc = spawn(process.execPath, [CLI, 'node', ...this.argv], {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (b: Buffer): void => {
      this.out.push(b.toString());
      if (this.out.length > 2000) this.out.splice(0, 1000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    this.exited = new Promise((r) => proc.once('exit', () => r()));
    this.proc = proc;
  }

  async waitHealthy(timeoutMs = 20_000): Promise<void> {
    await waitFor(
      `${this.id} /v1/health`,
      async () => {
        if (!this.running) throw new Error(`${this.id} exited: ${this.output().slice(-2000)}`);
        const r = await fetch(`${this.url}/v1/health`);
        return r.status === 200;
      },
      timeoutMs,
    );
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.proc?.kill(signal);
    await this.exited;
  }

  async restart(): Promise<void> {
    await this.kill('SIGKILL');
    this.spawn();
    await this.waitHealthy();
  }
}

export async function startCluster(opts: ClusterOptions = {}): Promise<TestCluster> {
  const count = opts.nodes ?? 3;
  const zones = opts.zones ?? ['a', 'b', 'c'];
  const root = await mkdtemp(join(tmpdir(), 'ringkv-test-'));
  const secret = randomBytes(16).toString('hex');
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  const addresses = ports.map((p) => `127.0.0.1:${p}`);
  const seeds = addresses.slice(0, Math.min(2, count)).join(',');
  const nodes: ProcNode[] = [];
  for (let i = 0; i < count; i++) {
    const id = `n${i + 1}`;
    const dataDir = join(root, id);
    const argv = [
      '--id', id,
      '--listen', addresses[i] as string,
      '--data', dataDir,
      '--zone', zones[i % zones.length] as string,
      '--gossip-interval-ms', '200',
      ...(count > 1 ? ['--seeds', seeds] : []),
      ...(opts.args ?? []),
      ...(opts.nodeArgs?.(i) ?? []),
    ];
    nodes.push(new ProcNode(id, addresses[i] as string, dataDir, argv, { RINGKV_SECRET: secret }));
  }
  const baseArgs = (i: number, address: string, dataDir: string): string[] => [
    '--id', `n${i + 1}`,
    '--listen', address,
    '--data', dataDir,
    '--zone', zones[i % zones.length] as string,
    '--gossip-interval-ms', '200',
  ];
  const cluster: TestCluster = {
    urls: nodes.map((n) => n.url),
    nodes,
    secret,
    root,
    async addNode(extra = {}) {
      const i = nodes.length;
      const address = `127.0.0.1:${await freePort()}`;
      const dataDir = join(root, `n${i + 1}`);
      const argv = [
        ...baseArgs(i, address, dataDir),
        ...(extra.zone ? ['--zone', extra.zone] : []),
        '--seeds', seeds,
        ...(opts.args ?? []),
        ...(extra.args ?? []),
      ];
      const node = new ProcNode(`n${i + 1}`, address, dataDir, argv, { RINGKV_SECRET: secret });
      nodes.push(node);
      cluster.urls.push(node.url);
      node.spawn();
      await node.waitHealthy();
      return node;
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      await rm(root, { recursive: true, force: true });
    },
  };
  try {
    for (const n of nodes) n.spawn();
    for (const n of nodes) await n.waitHealthy();
    if (opts.waitConverged !== false)
      await waitFor('cluster convergence', () => converged(cluster.urls, nodes.map((n) => n.id)), 30_000, 200);
  } catch (err) {
    const logs = nodes.map((n) => `--- ${n.id}\n${n.output().slice(-3000)}`).join('\n');
    await cluster.stop();
    throw new Error(`${String(err)}\n${logs}`);
  }
  return cluster;
}
