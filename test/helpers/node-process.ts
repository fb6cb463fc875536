/**
 * One `ringkv node` process with full control over argv, env and cwd, and access to its exit
 * code (the cluster helper's TestNode hides it). For CLI tests: bad flags, signals, restarts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { CLI } from './cluster.js';
import { waitFor } from './ports.js';

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  /** Extra env vars (merged over a copy of process.env without any RINGKV_* vars). */
  readonly env?: Record<string, string>;
  readonly cwd?: string;
  /** Flags for node itself, before the script (e.g. the image's runtime flags). */
  readonly nodeFlags?: readonly string[];
}

/** process.env minus RINGKV_*, so the caller's environment cannot change a test. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RINGKV_') && v !== undefined) out[k] = v;
  return { ...out, ...extra };
}

export class NodeProcess {
  readonly proc: ChildProcess;
  readonly exited: Promise<Exit>;
  private readonly out: string[] = [];
  private readonly err: string[] = [];
  private exit: Exit | undefined;

  constructor(argv: readonly string[], opts: SpawnOptions = {}) {
    this.proc = spawn(process.execPath, [...(opts.nodeFlags ?? []), CLI, 'node', ...argv], {
      env: cleanEnv(opts.env),
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout?.on('data', (b: Buffer) => this.out.push(b.toString()));
    this.proc.stderr?.on('data', (b: Buffer) => this.err.push(b.toString()));
    // 'close' (not 'exit') so stdout/stderr are fully read when it resolves.
    this.exited = new Promise((resolve) => {
      this.proc.once('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  get stdout(): string {
    return this.out.join('');
  }

  get stderr(): string {
    return this.err.join('');
  }

  output(): string {
    return this.stdout + this.stderr;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** Wait until GET /v1/health answers 200 (fails early if the process exits). */
  async waitHealthy(url: string, timeoutMs = 20_000): Promise<void> {
    await waitFor(
      `${url}/v1/health`,
      async () => {
        if (!this.running) throw new Error(`node exited ${JSON.stringify(this.exit)}: ${this.output().slice(-2000)}`);
        const r = await fetch(`${url}/v1/health`);
        return r.status === 200;
      },
      timeoutMs,
    );
  }

  /** Send `signal` to this process (by pid) and wait for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<Exit> {
    if (this.running) this.proc.kill(signal);
    return this.exited;
  }

  /** Wait for exit, SIGKILLing the process if it has not exited within `timeoutMs`. */
  async exitWithin(timeoutMs: number): Promise<Exit & { timedOut: boolean }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), timeoutMs);
    });
    const first = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (first !== 'timeout') return { ...first, timedOut: false };
    return { ...(await this.kill('SIGKILL')), timedOut: true };
  }
}

/** Run `ringkv node argv` and wait for it to exit on its own (for flag errors). */
export async function runNodeToExit(
  argv: readonly string[],
  opts: SpawnOptions & { timeoutMs?: number } = {},
): Promise<Exit & { stdout: string; stderr: string; timedOut: boolean }> {
  const p = new NodeProcess(argv, opts);
  const exit = await p.exitWithin(opts.timeoutMs ?? 15_000);
  return { ...exit, stdout: p.stdout, stderr: p.stderr };
}
