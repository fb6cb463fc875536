/**
 * The command-line client: `ringkv get|put|delete|status`, built on the SDK.
 *
 * Exit codes: 0 success (for `get`: found), 1 not found, 2 usage error (bad flags, bad key,
 * a 400/413 from the server), 3 the cluster could not serve it (quorum failure, no node
 * reachable, timeout).
 */
import type { Command } from 'commander';
import {
  Client,
  type ClusterMember,
  type ClusterView,
  InvalidArgumentError,
  QuorumError,
  type Quorum,
  RequestError,
  RingkvClientError,
  type Sibling,
} from '../client/index.js';

/** The process edges the commands use; injectable for tests. */
export interface ClientCliIo {
  readonly stdout: { write(chunk: string | Uint8Array): unknown };
  readonly stderr: { write(chunk: string | Uint8Array): unknown };
  readonly stdin: AsyncIterable<Uint8Array | string>;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Sets the exit code the process ends with once the command is done. */
  setExitCode(code: number): void;
  /** Ends the process now (commander usage errors). */
  exit(code: number): never;
}

export const EXIT = { OK: 0, NOT_FOUND: 1, USAGE: 2, UNAVAILABLE: 3 } as const;

export const DEFAULT_NODE = 'http://127.0.0.1:8081';

interface CommonFlags {
  node?: string;
  timeout?: string;
  json?: boolean;
}
interface GetFlags extends CommonFlags {
  r?: string;
}
interface PutFlags extends CommonFlags {
  w?: string;
  contentType?: string;
  context?: string;
}
interface DeleteFlags extends CommonFlags {
  w?: string;
  context?: string;
}

/** A usage problem found while reading flags (exit code 2). */
class UsageError extends Error {}

/** Adds `get`, `put`, `delete` and `status` to `program` (commander v14). */
export function registerClientCommands(program: Command, ioOverrides: Partial<ClientCliIo> = {}): void {
  const io: ClientCliIo = {
    stdout: ioOverrides.stdout ?? process.stdout,
    stderr: ioOverrides.stderr ?? process.stderr,
    stdin: ioOverrides.stdin ?? process.stdin,
    env: ioOverrides.env ?? process.env,
    setExitCode:
      ioOverrides.setExitCode ??
      ((code) => {
        process.exitCode = code;
      }),
    exit: ioOverrides.exit ?? ((code) => process.exit(code)),
  };

  const common = (cmd: Command): Command => {
    cmd
      .option('--node <url>', `node URL, or several comma-separated (default: $RINGKV_NODE, else ${DEFAULT_NODE})`)
      .option('--timeout <ms>', 'give up after this many ms, retries included')
      .showHelpAfterError('(run with --help for usage)')
      // Usage errors exit 2, not commander's 1, which means "not found" here.
      .exitOverride((err) => io.exit(err.exitCode === 0 ? 0 : EXIT.USAGE));
    if (ioOverrides.stdout || ioOverrides.stderr) {
      cmd.configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) });
    }
    return cmd;
  };

  common(
    program
      .command('get')
      .description('read a key: the value goes to stdout, the context to stderr')
      .argument('<key>', 'the key (UTF-8, 1..512 bytes)')
      .option('--r <r>', "read quorum: 1..n, 'one', 'quorum' or 'all'")
      .option('--json', 'print a JSON document (values base64, plus text when UTF-8)'),
  ).action((key: string, flags: GetFlags) => run(io, flags, (client) => getCommand(io, client, key, flags)));

  common(
    program
      .command('put')
      .description('write a key; the value comes from the argument or, if absent, from stdin')
      .argument('<key>', 'the key (UTF-8, 1..512 bytes)')
      .argument('[value]', 'the value (default: read stdin)')
      .option('--w <w>', "write quorum: 1..n, 'one', 'quorum' or 'all'")
      .option('--content-type <type>', 'stored and returned with the value')
      .option('--context <context>', 'context from an earlier read: replace what it saw instead of adding a sibling')
      .option('--json', 'print a JSON document'),
  ).action((key: string, value: string | undefined, flags: PutFlags) =>
    run(io, flags, (client) => putCommand(io, client, key, value, flags)),
  );

  common(
    program
      .command('delete')
      .description('delete a key (pass --context from a read to delete exactly what it saw)')
      .argument('<key>', 'the key (UTF-8, 1..512 bytes)')
      .option('--w <w>', "write quorum: 1..n, 'one', 'quorum' or 'all'")
      .option('--context <context>', 'context from an earlier read')
      .option('--json', 'print a JSON document'),
  ).action((key: string, flags: DeleteFlags) => run(io, flags, (client) => deleteCommand(io, client, key, flags)));

  common(
    program
      .command('status')
      .description("show the cluster's members as one node sees them")
      .option('--json', 'print the raw /v1/cluster document'),
  ).action((flags: CommonFlags) => run(io, flags, (client) => statusCommand(io, client, flags)));
}

/** Builds a client from the flags, runs `body`, maps errors to exit codes, always closes. */
async function run(io: ClientCliIo, flags: CommonFlags, body: (client: Client) => Promise<number>): Promise<void> {
  let client: Client | undefined;
  let code: number;
  try {
    // An empty RINGKV_NODE is unset, as the node's own RINGKV_* variables are.
    const nodes = (flags.node ?? (io.env.RINGKV_NODE || DEFAULT_NODE))
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const timeoutMs = flags.timeout === undefined ? undefined : parseTimeout(flags.timeout);
    client = new Client({ nodes, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    code = await body(client);
  } catch (err) {
    code = report(io, err);
  } finally {
    await client?.close();
  }
  io.setExitCode(code);
}

async function getCommand(io: ClientCliIo, client: Client, key: string, flags: GetFlags): Promise<number> {
  const r = parseQuorum('--r', flags.r);
  const got = await client.get(key, r === undefined ? {} : { r });
  if (flags.json) {
    const doc = { found: got.found, context: got.context ?? null, siblings: got.siblings.map(siblingJson) };
    io.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
    return got.found ? EXIT.OK : EXIT.NOT_FOUND;
  }
  if (!got.found) {
    io.stderr.write(got.context === undefined ? 'not found\n' : `not found (deleted)\ncontext: ${got.context}\n`);
    return EXIT.NOT_FOUND;
  }
  const [only] = got.siblings;
  if (got.siblings.length === 1 && only) {
    // A single value goes out byte for byte, so `ringkv get k > file` round-trips binaries.
    io.stdout.write(only.value);
  } else {
    got.siblings.forEach((s, i) => {
      io.stdout.write(`--- sibling ${i + 1}/${got.siblings.length} (${s.contentType}, ${isoOrDash(s.lastModified)}) ---\n`);
      io.stdout.write(s.value);
      if (s.value.length > 0 && s.value[s.value.length - 1] !== 0x0a) io.stdout.write('\n');
    });
  }
  if (got.context !== undefined) io.stderr.write(`context: ${got.context}\n`);
  return EXIT.OK;
}

async function putCommand(
  io: ClientCliIo,
  client: Client,
  key: string,
  value: string | undefined,
  flags: PutFlags,
): Promise<number> {
  const w = parseQuorum('--w', flags.w);
  const bytes = value ?? (await readAll(io.stdin));
  const res = await client.put(key, bytes, {
    ...(w === undefined ? {} : { w }),
    ...(flags.contentType === undefined ? {} : { contentType: flags.contentType }),
    ...(flags.context === undefined ? {} : { context: flags.context }),
  });
  // The new context is the command's result: `ctx=$(ringkv put k v)` works in scripts.
  io.stdout.write(flags.json ? `${JSON.stringify({ context: res.context })}\n` : `${res.context}\n`);
  return EXIT.OK;
}

async function deleteCommand(io: ClientCliIo, client: Client, key: string, flags: DeleteFlags): Promise<number> {
  const w = parseQuorum('--w', flags.w);
  const res = await client.delete(key, {
    ...(w === undefined ? {} : { w }),
    ...(flags.context === undefined ? {} : { context: flags.context }),
  });
  if (flags.json) io.stdout.write(`${JSON.stringify({ context: res.context ?? null })}\n`);
  else if (res.context !== undefined) io.stderr.write(`context: ${res.context}\n`);
  return EXIT.OK;
}

async function statusCommand(io: ClientCliIo, client: Client, flags: CommonFlags): Promise<number> {
  const view = await client.cluster();
  if (flags.json) {
    io.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
    return EXIT.OK;
  }
  io.stdout.write(formatStatus(view));
  return EXIT.OK;
}

/**
 * The `status` table. Fields the server does not send show as `-`. Pending hints and
 * transfers are per node: the answering node's own counts go in its row unless members
 * carry their own.
 */
export function formatStatus(view: ClusterView): string {
  const ring = isRecord(view.ring) ? view.ring : {};
  const lines: string[] = [];
  const ringBits = [`partitions ${cell(ring.partitions)}`, `checksum ${cell(ring.checksum)}`];
  lines.push(`node ${cell(view.node)}   ring: ${ringBits.join(', ')}`);
  lines.push('');
  const header = ['ID', 'ADDRESS', 'ZONE', 'STATUS', 'OWNERSHIP', 'HINTS', 'TRANSFERS'];
  const rows = view.members.map((m) => memberRow(view, ring, m));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]): string =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  lines.push(fmt(header));
  for (const r of rows) lines.push(fmt(r));
  return `${lines.join('\n')}\n`;
}

function memberRow(view: ClusterView, ring: Record<string, unknown>, m: ClusterMember): string[] {
  const self = view.node !== undefined && m.id === view.node;
  const ringOwnership = isRecord(ring.ownership) ? ring.ownership[m.id] : undefined;
  const hints = pending(m.hints) ?? m.pendingHints ?? (self ? view.hints?.pending : undefined);
  const transfers = pending(m.transfers) ?? m.pendingTransfers ?? (self ? view.transfers?.pending : undefined);
  return [
    self ? `${cell(m.id)}*` : cell(m.id),
    cell(m.address),
    cell(m.zone),
    cell(m.status),
    share(m.ownership ?? ringOwnership),
    cell(hints),
    cell(transfers),
  ];
}

function pending(v: unknown): unknown {
  return isRecord(v) ? v.pending : undefined;
}

/** An ownership fraction (0..1) as a percentage; other numbers as they are. */
function share(v: unknown): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return cell(v);
  return v >= 0 && v <= 1 ? `${(v * 100).toFixed(1)}%` : String(v);
}

function cell(v: unknown): string {
  if (v === undefined || v === null || v === '') return '-';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

function siblingJson(s: Sibling): Record<string, string> {
  const out: Record<string, string> = {
    value: Buffer.from(s.value.buffer, s.value.byteOffset, s.value.byteLength).toString('base64'),
    contentType: s.contentType,
    lastModified: isoOrDash(s.lastModified),
  };
  const text = utf8OrUndefined(s.value);
  if (text !== undefined) out.text = text;
  return out;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function utf8OrUndefined(b: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(b);
  } catch {
    return undefined;
  }
}

function isoOrDash(d: Date): string {
  return Number.isNaN(d.getTime()) ? '-' : d.toISOString();
}

function parseQuorum(flag: string, v: string | undefined): Quorum | undefined {
  if (v === undefined) return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  if (v === 'one' || v === 'quorum' || v === 'all') return v;
  throw new UsageError(`${flag} must be an integer >= 1 or one|quorum|all, got "${v}"`);
}

function parseTimeout(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n <= 0) throw new UsageError(`--timeout must be a positive integer number of ms, got "${v}"`);
  return n;
}

async function readAll(stream: AsyncIterable<Uint8Array | string>): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  const all = Buffer.concat(chunks);
  return new Uint8Array(all.buffer, all.byteOffset, all.byteLength);
}

/** Prints an error and returns its exit code. */
function report(io: ClientCliIo, err: unknown): number {
  if (err instanceof UsageError || err instanceof InvalidArgumentError) {
    io.stderr.write(`error: ${err.message}\n`);
    return EXIT.USAGE;
  }
  if (err instanceof RequestError) {
    io.stderr.write(`error: ${err.code}: ${err.message}\n`);
    return EXIT.USAGE;
  }
  if (err instanceof QuorumError) {
    const counts =
      err.answered !== undefined && err.needed !== undefined ? ` (${err.answered} of ${err.needed} replicas answered)` : '';
    io.stderr.write(`error: ${err.code}${counts}: ${err.message}\n`);
    return EXIT.UNAVAILABLE;
  }
  if (err instanceof RingkvClientError) {
    io.stderr.write(`error: ${err.code}: ${err.message}\n`);
    return EXIT.UNAVAILABLE;
  }
  throw err;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
