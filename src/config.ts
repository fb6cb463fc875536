/**
 * `ringkv node` configuration: SPEC §1 flags, each also read from RINGKV_<NAME>.
 * Pure: argv and env in, a validated NodeConfig (or a ConfigError naming the flag) out.
 */

export interface NodeConfig {
  readonly id: string;
  readonly listen: HostPort;
  readonly advertise: HostPort;
  readonly seeds: readonly string[];
  readonly data: string;
  readonly zone: string;
  readonly weight: number;
  readonly secret: string | undefined;
  readonly n: number;
  readonly r: number;
  readonly w: number;
  readonly hintedHandoff: boolean;
  readonly antiEntropyIntervalMs: number;
  readonly gossipIntervalMs: number;
  readonly maxValueBytes: number;
  readonly tombstoneGraceMs: number;
  /** How long anti-entropy's verify sweep takes to read back every partition; 0 turns it off. */
  readonly antiEntropyVerifyPeriodMs: number;
  /** Memory for recently used objects (LevelStore's object cache), in MiB; 0 turns it off. */
  readonly objectCacheMb: number;
  /** Memory for the stored versions of recently written keys (LocalReplica), in MiB; 0 turns it off. */
  readonly versionCacheMb: number;
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** A bad flag or value; the CLI prints `message` on one line and exits with code 2. */
export class ConfigError extends Error {
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super(`--${flag}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Raw = Map<string, string>;

interface FlagSpec {
  readonly name: string;
  readonly boolean?: boolean;
}

/** Every flag `ringkv node` accepts. */
export const NODE_FLAGS: readonly FlagSpec[] = [
  { name: 'id' },
  { name: 'listen' },
  { name: 'advertise' },
  { name: 'seeds' },
  { name: 'data' },
  { name: 'zone' },
  { name: 'weight' },
  { name: 'secret' },
  { name: 'n' },
  { name: 'r' },
  { name: 'w' },
  { name: 'hinted-handoff', boolean: true },
  { name: 'anti-entropy-interval-ms' },
  { name: 'gossip-interval-ms' },
  { name: 'max-value-bytes' },
  // Beyond SPEC §1: how long every replica must hold a tombstone before it is reaped.
  { name: 'tombstone-grace-ms' },
  // Beyond SPEC §1: anti-entropy reads every partition back from the store once per this
  // period, so a copy that rots on disk is found without a restart.
  { name: 'anti-entropy-verify-period-ms' },
  // Beyond SPEC §1: resident memory for recently read objects (stored bytes, and as much again
  // for their decoded form).
  { name: 'object-cache-mb' },
  // Beyond SPEC §1: resident memory for the versions (no values) of recently written keys.
  { name: 'version-cache-mb' },
];

/** `hinted-handoff` -> `RINGKV_HINTED_HANDOFF`. */
export function envName(flag: string): string {
  return `RINGKV_${flag.toUpperCase().replace(/-/g, '_')}`;
}

function collect(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Raw {
  const known = new Map(NODE_FLAGS.map((f) => [f.name, f]));
  const raw: Raw = new Map();
  for (const f of NODE_FLAGS) {
    const v = env[envName(f.name)];
    if (v !== undefined && v !== '') raw.set(f.name, v);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) throw new ConfigError(arg, `unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = known.get(name);
    if (!spec) throw new ConfigError(name, 'unknown flag');
    let value: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
    if (value === undefined) {
      const next = argv[i + 1];
      if (spec.boolean && (next === undefined || next.startsWith('--'))) value = 'true';
      else if (next === undefined) throw new ConfigError(name, 'needs a value');
      else {
        value = next;
        i++;
      }
    }
    raw.set(name, value);
  }
  return raw;
}

function parseInt10(flag: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v)) throw new ConfigError(flag, `must be an integer, got "${v}"`);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new ConfigError(flag, `must be between ${min} and ${max}, got ${v}`);
  return n;
}

/** Parse `host:port` (IPv6 as `[::1]:8081`). */
export function parseHostPort(flag: string, v: string): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9_.-]+)):(\d{1,5})$/.exec(v);
  if (!m) throw new ConfigError(flag, `must be host:port, got "${v}"`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new ConfigError(flag, `port must be 1..65535, got ${m[3]}`);
  return { host: (m[1] ?? m[2]) as string, port };
}

/** Format a HostPort back to `host:port`. */
export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

function parseBool(flag: string, v: string): boolean {
  if (v === 'true' || v === '1' || v === 'yes') return true;
  if (v === 'false' || v === '0' || v === 'no') return false;
  throw new ConfigError(flag, `must be true or false, got "${v}"`);
}

/**
 * The range of `--weight` (relative capacity; 1 is the default). The ring ranks a member by
 * -ln(u) / weight with -ln(u) in about [1.2e-10, 22.9]: below ~1.3e-307 (a value such as
 * 5e-324, which a long decimal reaches) that is Infinity for some partitions, and members
 * tied at Infinity are ranked by id, not by hash, so of two such nodes in one zone the first
 * holds every replica that zone gets and the second none. Within [0.01, 1000] every score
 * is an ordinary double in about [1.2e-13, 2.3e3], and a ratio of 100 000 between the
 * largest and smallest machine in one cluster is more than any real cluster needs.
 */
export const WEIGHT_RANGE = { min: 0.01, max: 1000 } as const;

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const ZONE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/**
 * Printable ASCII, no space at either end (spaces inside are fine): what survives an HTTP
 * header byte for byte, whoever sends it.
 */
const SECRET_RE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/** Parse and validate `ringkv node` flags and RINGKV_* env vars (flags win). */
export function parseNodeConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): NodeConfig {
  const raw = collect(argv, env);
  const get = (k: string): string | undefined => raw.get(k);

  const id = get('id');
  if (id === undefined) throw new ConfigError('id', 'is required (a stable node id, e.g. --id n1)');
  if (!ID_RE.test(id)) throw new ConfigError('id', `must be 1-64 characters of [A-Za-z0-9_.-], got "${id}"`);

  const listen = parseHostPort('listen', get('listen') ?? '127.0.0.1:8081');
  const advertiseRaw = get('advertise');
  const advertise = advertiseRaw === undefined ? listen : parseHostPort('advertise', advertiseRaw);
  if (advertise.host === '0.0.0.0' || advertise.host === '::')
    throw new ConfigError('advertise', `must be an address other nodes can reach, not ${advertise.host}`);

  const seedsRaw = get('seeds');
  const seeds =
    seedsRaw === undefined
      ? []
      : seedsRaw
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '')
          .map((s) => formatHostPort(parseHostPort('seeds', s)));

  const zone = get('zone') ?? 'default';
  if (!ZONE_RE.test(zone)) throw new ConfigError('zone', `must be 1-64 characters of [A-Za-z0-9_.-], got "${zone}"`);

  const weightRaw = get('weight') ?? '1';
  const weight = Number(weightRaw);
  if (!/^\d+(\.\d+)?$/.test(weightRaw) || !(weight >= WEIGHT_RANGE.min) || !(weight <= WEIGHT_RANGE.max))
    throw new ConfigError(
      'weight',
      `must be a decimal number from ${WEIGHT_RANGE.min} to ${WEIGHT_RANGE.max} (relative capacity, default 1), got "${weightRaw}"`,
    );

  const secret = get('secret');
  if (secret !== undefined && secret.length < 8) throw new ConfigError('secret', 'must be at least 8 characters');
  // It travels as `Authorization: Bearer <secret>`: HTTP strips a header value's surrounding
  // whitespace, undici refuses control characters and anything beyond Latin-1, and curl sends
  // UTF-8 where the server reads Latin-1. A secret with any of those would pass here and then
  // never authenticate a single internal or admin call. (The secret is not echoed.)
  if (secret !== undefined && !SECRET_RE.test(secret))
    throw new ConfigError('secret', 'must be printable ASCII, with no space at either end and no tab or newline (e.g. from `openssl rand -base64 24`)');
  if (seeds.length > 0 && secret === undefined)
    throw new ConfigError('secret', 'is required when --seeds is set (every internal call carries it)');

  const n = parseInt10('n', get('n') ?? '3', 1, 16);
  const r = parseInt10('r', get('r') ?? String(Math.min(2, n)), 1, 16);
  const w = parseInt10('w', get('w') ?? String(Math.min(2, n)), 1, 16);
  if (r > n) throw new ConfigError('r', `must be <= n (${n}), got ${r}`);
  if (w > n) throw new ConfigError('w', `must be <= n (${n}), got ${w}`);

  const data = get('data') ?? `./data/${id}`;
  if (data === '') throw new ConfigError('data', 'must be a directory path, got ""');

  return {
    id,
    listen,
    advertise,
    seeds,
    data,
    zone,
    weight,
    secret,
    n,
    r,
    w,
    hintedHandoff: parseBool('hinted-handoff', get('hinted-handoff') ?? 'true'),
    antiEntropyIntervalMs: parseInt10('anti-entropy-interval-ms', get('anti-entropy-interval-ms') ?? '60000', 100, 86_400_000),
    gossipIntervalMs: parseInt10('gossip-interval-ms', get('gossip-interval-ms') ?? '1000', 10, 600_000),
    maxValueBytes: parseInt10('max-value-bytes', get('max-value-bytes') ?? '1048576', 1, 64 * 1024 * 1024),
    tombstoneGraceMs: parseInt10('tombstone-grace-ms', get('tombstone-grace-ms') ?? '86400000', 0, 365 * 86_400_000),
    antiEntropyVerifyPeriodMs: parseInt10(
      'anti-entropy-verify-period-ms',
      get('anti-entropy-verify-period-ms') ?? '86400000',
      0,
      365 * 86_400_000,
    ),
    objectCacheMb: parseInt10('object-cache-mb', get('object-cache-mb') ?? '8', 0, 64 * 1024),
    versionCacheMb: parseInt10('version-cache-mb', get('version-cache-mb') ?? '4', 0, 64 * 1024),
  };
}
