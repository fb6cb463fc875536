/**
 * The container setup matches the CLI: Dockerfile + docker-compose.yml + .env.example.
 *
 * No Docker engine is assumed. What runs everywhere: a structural read of the Dockerfile and
 * of docker-compose.yml (through the small YAML-subset reader below), every service's flags +
 * environment fed to the real `parseNodeConfig`, and the health probe run against a local
 * HTTP server. Where a compose tool is installed (CI installs Debian's docker-compose), its
 * own `config` rendering gets the same checks and must agree with the reader; with CI set
 * and no compose tool, that part fails instead of skipping.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, formatHostPort, parseHostPort, parseNodeConfig } from '../../src/config.js';

const ROOT = resolve(import.meta.dirname, '../..');
const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');

const SERVICES = ['n1', 'n2', 'n3', 'n4', 'n5'];
const PUBLISHED = [8081, 8082, 8083, 8084, 8085];

// ---------------------------------------------------------------------------------------
// A reader for the YAML subset docker-compose.yml is written in: block mappings and
// sequences, one-line flow sequences of scalars, quoted and plain scalars, comments,
// anchors, aliases and `<<` merge keys. Anything else throws, naming the line, so the
// file can't silently drift beyond what this reader understands (extend the reader, or ask
// for a YAML parser dependency). Scalars stay strings; an empty value is null.
// ---------------------------------------------------------------------------------------

type Yaml = string | null | Yaml[] | { [key: string]: Yaml };
type YamlMap = { [key: string]: Yaml };

interface Line {
  readonly no: number;
  readonly indent: number;
  readonly text: string;
}

class YamlSubsetError extends Error {
  constructor(line: number, message: string) {
    super(`docker-compose.yml line ${line}: ${message} (outside the YAML subset compose.test.ts reads)`);
  }
}

function stripComment(s: string): string {
  let quote: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(s[i - 1] as string))) return s.slice(0, i);
  }
  return s;
}

/** Index of the `:` that separates a mapping key from its value, or -1. */
function keySeparator(s: string): number {
  let quote: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[' || c === '{') return -1;
    else if (c === ':' && (i + 1 === s.length || s[i + 1] === ' ')) return i;
  }
  return -1;
}

function readYamlSubset(source: string): Yaml {
  const lines: Line[] = [];
  source.split('\n').forEach((raw, i) => {
    const no = i + 1;
    const body = stripComment(raw.replace(/\r$/, '')).trimEnd();
    if (body.trim() === '') return;
    const indent = body.length - body.trimStart().length;
    if (body.slice(0, indent).includes('\t')) throw new YamlSubsetError(no, 'tab in indentation');
    const text = body.trimStart();
    if (/^(---|\.\.\.|%)/.test(text)) throw new YamlSubsetError(no, 'document markers and directives');
    lines.push({ no, indent, text });
  });
  const anchors = new Map<string, Yaml>();
  let pos = 0;

  const isItem = (l: Line): boolean => l.text === '-' || l.text.startsWith('- ');

  function scalar(s: string, no: number): Yaml {
    if (s.startsWith('*')) {
      const name = s.slice(1);
      if (!anchors.has(name)) throw new YamlSubsetError(no, `unknown alias *${name}`);
      return anchors.get(name) as Yaml;
    }
    if (s.startsWith('[')) return flowSequence(s, no);
    if (s.startsWith('"')) {
      const m = /^"((?:[^"\\]|\\["\\/nt])*)"$/.exec(s);
      if (!m) throw new YamlSubsetError(no, `double-quoted scalar ${s}`);
      return (m[1] as string).replace(/\\(["\\/nt])/g, (_, c: string) => ({ n: '\n', t: '\t' })[c] ?? c);
    }
    if (s.startsWith("'")) {
      const m = /^'((?:[^']|'')*)'$/.exec(s);
      if (!m) throw new YamlSubsetError(no, `single-quoted scalar ${s}`);
      return (m[1] as string).replace(/''/g, "'");
    }
    if (/^[{|>!%@`&?]/.test(s) || / #|: /.test(s) || s.endsWith(':'))
      throw new YamlSubsetError(no, `value ${s}`);
    return s;
  }

  function flowSequence(s: string, no: number): Yaml[] {
    if (!s.endsWith(']')) throw new YamlSubsetError(no, 'flow sequence must close on its line');
    const inner = s.slice(1, -1).trim();
    if (inner === '') return [];
    const items: string[] = [];
    let quote: string | null = null;
    let start = 0;
    for (let i = 0; i < inner.length; i++) {
      const c = inner[i];
      if (quote) {
        if (c === '\\' && quote === '"') i++;
        else if (c === quote) quote = null;
      } else if (c === '"' || c === "'") quote = c;
      else if (c === '[' || c === ']' || c === '{' || c === '}') throw new YamlSubsetError(no, 'nested flow collection');
      else if (c === ',') {
        items.push(inner.slice(start, i).trim());
        start = i + 1;
      }
    }
    items.push(inner.slice(start).trim());
    return items.map((item) => scalar(item, no));
  }

  function block(indent: number): Yaml {
    const first = lines[pos];
    if (!first || first.indent < indent) return null;
    return isItem(first) ? sequence(first.indent) : mapping(first.indent);
  }

  /** The value after `key:`, or after `- `, when it is nested on the following lines. */
  function nested(parentIndent: number, allowSameIndentSequence: boolean): Yaml {
    const next = lines[pos];
    if (next && next.indent > parentIndent) return block(next.indent);
    if (next && allowSameIndentSequence && next.indent === parentIndent && isItem(next))
      return sequence(parentIndent);
    return null;
  }

  function sequence(indent: number): Yaml[] {
    const out: Yaml[] = [];
    for (let l = lines[pos]; l && l.indent === indent && isItem(l); l = lines[pos]) {
      pos++;
      const rest = l.text.slice(1).trim();
      if (rest === '') out.push(nested(indent, false));
      else if (keySeparator(rest) !== -1) throw new YamlSubsetError(l.no, 'mapping inside a block sequence');
      else out.push(scalar(rest, l.no));
    }
    return out;
  }

  function mapping(indent: number): YamlMap {
    const own: YamlMap = {};
    const merged: YamlMap = {};
    for (let l = lines[pos]; l && l.indent === indent && !isItem(l); l = lines[pos]) {
      pos++;
      const sep = keySeparator(l.text);
      if (sep === -1) throw new YamlSubsetError(l.no, `expected "key: value", got ${l.text}`);
      const rawKey = l.text.slice(0, sep).trim();
      const key = rawKey.startsWith('"') || rawKey.startsWith("'") ? scalar(rawKey, l.no) : rawKey;
      if (typeof key !== 'string' || key === '' || /^[[{&*!?|>]/.test(key))
        throw new YamlSubsetError(l.no, `key ${rawKey}`);
      let rest = l.text.slice(sep + 1).trim();
      let anchor: string | undefined;
      const a = /^&([A-Za-z0-9_-]+)(?:\s+|$)/.exec(rest);
      if (a) {
        anchor = a[1];
        rest = rest.slice(a[0].length);
      }
      const value = rest === '' ? nested(indent, true) : scalar(rest, l.no);
      if (anchor !== undefined) anchors.set(anchor, value);
      if (key === '<<') {
        if (value === null || typeof value !== 'object' || Array.isArray(value))
          throw new YamlSubsetError(l.no, '<< must merge a mapping alias');
        for (const [k, v] of Object.entries(value)) if (!(k in merged)) merged[k] = v;
        continue;
      }
      if (Object.hasOwn(own, key)) throw new YamlSubsetError(l.no, `duplicate key ${key}`);
      own[key] = value;
    }
    // YAML merge semantics: the mapping's own keys win over merged ones, wherever they appear.
    return { ...merged, ...own };
  }

  const doc = block(0);
  const stray = lines[pos];
  if (stray) throw new YamlSubsetError(stray.no, `unexpected indentation: ${stray.text}`);
  return doc;
}

/** Compose variable interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`. */
function interpolate(s: string, env: Readonly<Record<string, string | undefined>>): string {
  return s.replace(
    /\$(?:(\$)|([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\})/g,
    (_m, dollar: string | undefined, bare: string | undefined, name: string | undefined, op, dflt: string) => {
      if (dollar) return '$';
      const v = env[(bare ?? name) as string];
      if (op === ':-') return v === undefined || v === '' ? dflt : v;
      if (op === '-') return v === undefined ? dflt : v;
      return v ?? '';
    },
  );
}

function interpolateAll(y: Yaml, env: Readonly<Record<string, string | undefined>>): Yaml {
  if (typeof y === 'string') return interpolate(y, env);
  if (Array.isArray(y)) return y.map((v) => interpolateAll(v, env));
  if (y === null) return null;
  return Object.fromEntries(Object.entries(y).map(([k, v]) => [k, interpolateAll(v, env)]));
}

// ---------------------------------------------------------------------------------------
// One normalised view of a compose file, whether it came from the reader above (short
// syntax, as written) or from `docker-compose config` (v1 short syntax, v2 long syntax).
// ---------------------------------------------------------------------------------------

interface PortView {
  readonly hostIp: string;
  readonly published: number;
  readonly target: number;
}

interface ServiceView {
  readonly name: string;
  readonly image: string | undefined;
  readonly command: readonly string[];
  readonly environment: Readonly<Record<string, string>>;
  readonly ports: readonly PortView[];
  readonly volumes: readonly { readonly source: string; readonly target: string }[];
  readonly healthcheck: readonly string[] | undefined;
  readonly restart: string | undefined;
}

interface ComposeView {
  readonly services: readonly ServiceView[];
  readonly volumes: readonly string[];
}

const isMap = (y: unknown): y is Record<string, unknown> => typeof y === 'object' && y !== null && !Array.isArray(y);
const str = (y: unknown): string | undefined => (y === null || y === undefined ? undefined : String(y));
const list = (y: unknown): unknown[] => (Array.isArray(y) ? y : y === null || y === undefined ? [] : [y]);

function toPort(p: unknown): PortView {
  if (isMap(p))
    return { hostIp: str(p.host_ip) ?? '', published: Number(p.published), target: Number(p.target) };
  const m = /^(?:(.+):)?(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(String(p));
  if (!m) throw new Error(`port mapping ${String(p)}: expected [ip:]published:target`);
  return { hostIp: m[1] ?? '', published: Number(m[2]), target: Number(m[3]) };
}

function toVolume(v: unknown): { source: string; target: string } {
  if (isMap(v)) return { source: str(v.source) ?? '', target: str(v.target) ?? '' };
  const [source = '', target = ''] = String(v).split(':');
  return { source, target };
}

function toEnvironment(e: unknown): Record<string, string> {
  if (isMap(e)) return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, str(v) ?? '']));
  return Object.fromEntries(
    list(e).map((kv) => {
      const s = String(kv);
      const eq = s.indexOf('=');
      return eq === -1 ? [s, ''] : [s.slice(0, eq), s.slice(eq + 1)];
    }),
  );
}

function toCommand(c: unknown): string[] {
  if (typeof c === 'string') {
    if (/["'\\]/.test(c)) throw new Error(`command ${c}: write it as a list, not a quoted string`);
    return c.split(/\s+/).filter((s) => s !== '');
  }
  return list(c).map(String);
}

function composeView(doc: unknown): ComposeView {
  if (!isMap(doc) || !isMap(doc.services)) throw new Error('compose file has no services mapping');
  const services = Object.entries(doc.services).map(([name, s]): ServiceView => {
    if (!isMap(s)) throw new Error(`service ${name} is not a mapping`);
    const hc = isMap(s.healthcheck) ? s.healthcheck : undefined;
    const disabled = hc?.disable === true || hc?.disable === 'true';
    return {
      name,
      image: str(s.image),
      command: toCommand(s.command),
      environment: toEnvironment(s.environment),
      ports: list(s.ports).map(toPort),
      volumes: list(s.volumes).map(toVolume),
      healthcheck: hc && !disabled ? list(hc.test).map(String) : undefined,
      restart: str(s.restart),
    };
  });
  return { services, volumes: isMap(doc.volumes) ? Object.keys(doc.volumes) : [] };
}

// ---------------------------------------------------------------------------------------
// A reader for the Dockerfile: instructions per stage, continuation lines joined.
// ---------------------------------------------------------------------------------------

interface Instruction {
  readonly op: string;
  readonly args: string;
}

interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly body: Instruction[];
}

function readDockerfile(source: string): { args: Map<string, string>; stages: Stage[] } {
  const logical: string[] = [];
  let acc = '';
  for (const raw of source.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (/^\s*#/.test(line)) continue;
    if (line.endsWith('\\')) {
      acc += `${line.slice(0, -1)} `;
      continue;
    }
    acc += line;
    if (acc.trim() !== '') logical.push(acc.trim());
    acc = '';
  }
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  const expand = (s: string): string => s.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (m, k) => args.get(k) ?? m);
  for (const l of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(l) as RegExpExecArray;
    const op = (m[1] as string).toUpperCase();
    const rest = (m[2] as string).replace(/\s+/g, ' ');
    if (op === 'FROM') {
      const f = /^(?:--platform=\S+ )?(\S+)(?: AS (\S+))?$/i.exec(rest);
      if (!f) throw new Error(`Dockerfile: FROM ${rest}`);
      stages.push({ from: expand(f[1] as string), name: f[2], body: [] });
    } else if (op === 'ARG' && stages.length === 0) {
      const [k, v = ''] = rest.split('=');
      args.set(k as string, v);
    } else {
      const stage = stages.at(-1);
      if (!stage) throw new Error(`Dockerfile: ${op} before the first FROM`);
      stage.body.push({ op, args: rest });
    }
  }
  return { args, stages };
}

/** `ENV A=1 B="two"` (and legacy `ENV A 1`) to a record. */
function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { op, args } of stage.body) {
    if (op !== 'ENV') continue;
    if (!args.includes('=')) {
      const [k, ...v] = args.split(' ');
      env[k as string] = v.join(' ');
      continue;
    }
    for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g)) {
      const v = m[2] as string;
      env[m[1] as string] = /^["']/.test(v) ? v.slice(1, -1) : v;
    }
  }
  return env;
}

/** The JSON (exec) form of an instruction's arguments, e.g. ENTRYPOINT ["node", ...]. */
function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string'))
    throw new Error(`not an exec-form list: ${args}`);
  return parsed;
}

/** `.dockerignore` for top-level names: last matching pattern wins; `!` re-includes. */
function dockerignored(patterns: readonly string[], path: string): boolean {
  const top = path.replace(/^\.\//, '').split('/')[0] as string;
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const pattern = (negate ? raw.slice(1) : raw).replace(/^\//, '').replace(/\/$/, '');
    if (pattern.includes('/') || pattern.includes('**'))
      throw new Error(`.dockerignore pattern ${raw}: only top-level patterns are checked here`);
    const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
    if (re.test(top)) ignored = !negate;
  }
  return ignored;
}

// ---------------------------------------------------------------------------------------
// The compose tool, if any: v2 (`docker compose`, or a v2 `docker-compose`) renders JSON;
// Debian's docker-compose 1.29 renders YAML only, which is converted with the PyYAML that
// it runs on (a hard dependency of the Debian package).
// ---------------------------------------------------------------------------------------

interface ComposeTool {
  readonly argv: readonly string[];
  readonly version: string;
  readonly json: boolean;
}

function findComposeTool(): ComposeTool | undefined {
  const probe = (argv: string[]): string | undefined => {
    try {
      return execFileSync(argv[0] as string, [...argv.slice(1), 'version', '--short'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 30_000,
      }).trim();
    } catch {
      return undefined;
    }
  };
  for (const argv of [['docker', 'compose'], ['docker-compose']]) {
    const version = probe(argv);
    if (version) return { argv, version, json: !/^v?1\./.test(version) };
  }
  return undefined;
}

const TOOL = findComposeTool();
const MUST_RUN_COMPOSE = Boolean(process.env.CI);

/** Env for a compose run: the caller's, minus RINGKV_* (a developer's shell must not leak in). */
function composeEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RINGKV_')));
  return { ...env, ...extra };
}

function renderWithCompose(tool: ComposeTool, envFile: string, extra: Record<string, string> = {}): unknown {
  const [cmd, ...pre] = tool.argv as [string, ...string[]];
  const args = [...pre, '-f', join(ROOT, 'docker-compose.yml'), '--env-file', envFile, 'config'];
  const opts = { cwd: ROOT, encoding: 'utf8' as const, env: composeEnv(extra), timeout: 60_000 };
  if (tool.json) return JSON.parse(execFileSync(cmd, [...args, '--format', 'json'], opts));
  const yaml = execFileSync(cmd, args, opts);
  const json = execFileSync(
    'python3',
    ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'],
    { ...opts, input: yaml },
  );
  return JSON.parse(json);
}

// ---------------------------------------------------------------------------------------
// The files under test.
// ---------------------------------------------------------------------------------------

const dockerfile = readDockerfile(read('Dockerfile'));
const runtime = dockerfile.stages.at(-1) as Stage;
const imageEnv = envOf(runtime);
const composeText = read('docker-compose.yml');
const composeRaw = readYamlSubset(composeText);
const exampleSecret = /^RINGKV_SECRET=(.*)$/m.exec(read('.env.example'))?.[1]?.trim();
const ops = (stage: Stage, op: string): Instruction[] => stage.body.filter((i) => i.op === op);
const last = (stage: Stage, op: string): Instruction | undefined => ops(stage, op).at(-1);

/** `RINGKV_SECRET: ${RINGKV_SECRET:-<default>}` -> the default, as written in the file. */
function secretDefault(): string {
  const raw = composeView(composeRaw).services[0]?.environment.RINGKV_SECRET ?? '';
  const m = /^\$\{RINGKV_SECRET:-([^}]+)\}$/.exec(raw);
  if (!m) throw new Error(`RINGKV_SECRET must be "\${RINGKV_SECRET:-<local dev default>}", got "${raw}"`);
  return m[1] as string;
}

/**
 * Every check on a compose view, so the file as read and compose's own rendering are held
 * to the same standard. `secret` is the value every node must end up with.
 */
function checkCluster(view: ComposeView, secret: string): void {
  expect(view.services.map((s) => s.name).sort()).toEqual(SERVICES);
  const listen = parseHostPort('listen', imageEnv.RINGKV_LISTEN ?? '');
  const dataDir = imageEnv.RINGKV_DATA;
  const zones = new Set<string>();
  const advertised = new Map<string, string>();

  for (const s of view.services) {
    const where = `service ${s.name}`;
    // What the container runs: ENTRYPOINT `node dist/cli.js node` + command, under the
    // image's ENV overlaid with the service's environment. The real parser must accept it.
    let config: ReturnType<typeof parseNodeConfig>;
    try {
      config = parseNodeConfig(s.command, { ...imageEnv, ...s.environment });
    } catch (err) {
      if (err instanceof ConfigError) throw new Error(`${where}: ringkv node rejects its config: ${err.message}`);
      throw err;
    }
    expect(config.id, where).toBe(s.name);
    expect(config.advertise, `${where}: --advertise must be its compose DNS name`).toEqual({
      host: s.name,
      port: listen.port,
    });
    expect(config.listen, `${where}: listens on all interfaces`).toEqual({ host: '0.0.0.0', port: listen.port });
    expect(config.data, where).toBe(dataDir);
    expect(config.secret, `${where}: cluster secret`).toBe(secret);
    expect(config.seeds.length, `${where}: seeds`).toBeGreaterThanOrEqual(3);
    expect(s.command.join(' '), `${where}: the secret goes in the environment, not argv`).not.toMatch(/--secret/);
    zones.add(config.zone);
    advertised.set(s.name, formatHostPort(config.advertise));
    for (const seed of config.seeds) {
      const host = seed.slice(0, seed.lastIndexOf(':'));
      expect(SERVICES, `${where}: seed ${seed} must be a service`).toContain(host);
      expect(seed, `${where}: seed ${seed} must use that service's advertised address`).toBe(
        formatHostPort({ host, port: listen.port }),
      );
    }

    expect(s.image, `${where}: all nodes run one image`).toBe(view.services[0]?.image);
    expect(s.restart, where).toBe('unless-stopped');
    expect(s.healthcheck, `${where}: has a healthcheck`).toBeDefined();
    expect(s.healthcheck?.length, `${where}: healthcheck`).toBeGreaterThan(0);
    expect(s.healthcheck?.[0], `${where}: healthcheck`).toMatch(/^CMD(-SHELL)?$/);
    expect(s.healthcheck?.join(' '), `${where}: healthcheck`).toContain('/v1/health');

    const data = s.volumes.filter((v) => v.target === dataDir);
    expect(data.length, `${where}: one volume at ${dataDir}`).toBe(1);
    expect(view.volumes, `${where}: ${data[0]?.source} is a declared named volume`).toContain(data[0]?.source);

    expect(s.ports.length, `${where}: one published port`).toBe(1);
    expect(s.ports[0]?.target, `${where}: publishes the listen port`).toBe(listen.port);
  }

  expect([...zones].sort(), 'three zones').toEqual(['a', 'b', 'c']);
  expect(new Set(view.services.map((s) => s.volumes[0]?.source)).size, 'a volume per node').toBe(5);
  expect(view.services.flatMap((s) => s.ports.map((p) => p.published)).sort((a, b) => a - b), 'published ports').toEqual(PUBLISHED);
  expect(new Set(advertised.values()).size, 'distinct advertised addresses').toBe(5);
}

describe('Dockerfile', () => {
  it('builds in one stage and runs production dependencies in another, on a Node LTS slim image', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of dockerfile.stages) {
      const m = /^node:(\d+)(?:\.\d+)*-(bookworm|trixie)-slim(?:@sha256:[0-9a-f]{64})?$/.exec(stage.from);
      expect(m, `FROM ${stage.from}: a Debian slim Node image (glibc, for classic-level's prebuilds)`).not.toBeNull();
      const major = Number(m?.[1]);
      // Even majors are LTS up to 26; from 27 on every line becomes LTS. 20 is end-of-life.
      expect(major >= 22 && (major % 2 === 0 || major >= 27), `Node ${major} is a supported LTS line`).toBe(true);
    }
    const [build] = dockerfile.stages as [Stage];
    const buildRuns = ops(build, 'RUN').map((r) => r.args);
    expect(buildRuns.some((r) => /\bnpm ci\b/.test(r) && !/--omit=dev/.test(r)), 'build: npm ci').toBe(true);
    expect(buildRuns.some((r) => /\bnpm run build\b/.test(r)), 'build: npm run build').toBe(true);

    const runtimeRuns = ops(runtime, 'RUN').map((r) => r.args);
    expect(runtimeRuns.some((r) => /\bnpm ci\b.*--omit=dev/.test(r)), 'runtime: npm ci --omit=dev').toBe(true);
    expect(runtimeRuns.some((r) => /npm run build|\btsc\b/.test(r)), 'runtime compiles nothing').toBe(false);
    const copies = ops(runtime, 'COPY').map((c) => c.args);
    expect(copies.some((c) => new RegExp(`--from=${build.name}\\b.*\\bdist\\b`).test(c)), 'runtime: dist/ from build').toBe(
      true,
    );
  });

  it('runs `ringkv node` from dist/cli.js as a non-root user, with its data in a volume', () => {
    const entrypoint = execForm(last(runtime, 'ENTRYPOINT')?.args ?? 'null');
    const bin = (JSON.parse(read('package.json')) as { bin: Record<string, string> }).bin.ringkv;
    // node [V8 flags] dist/cli.js node: the flags are the runtime settings bench.mjs uses too.
    const flags = entrypoint.slice(1, -2);
    expect(entrypoint).toEqual(['node', ...flags, bin?.replace(/^\.\//, ''), 'node']);
    expect(entrypoint).toEqual(['node', ...flags, 'dist/cli.js', 'node']);
    for (const f of flags) expect(f, 'only --flags between node and the script').toMatch(/^--[a-z-]+(=\S+)?$/);
    const settings = JSON.parse(read('scripts/runtime.json')) as {
      nodeFlags: string[];
      env: Record<string, string>;
      packages?: string[];
    };
    expect(flags, 'the image runs nodes as the benchmark does').toEqual(settings.nodeFlags);
    for (const [k, v] of Object.entries(settings.env)) expect(imageEnv[k], k).toBe(v);
    // What the settings need (the preloaded allocator) is installed in the image itself.
    const installs = ops(runtime, 'RUN').filter((r) => /\bapt-get install\b/.test(r.args));
    for (const pkg of settings.packages ?? []) {
      expect(installs.some((r) => new RegExp(`\\s${pkg}(\\s|$)`).test(r.args)), `runtime: apt-get install ${pkg}`).toBe(true);
    }

    const user = last(runtime, 'USER')?.args;
    expect(user, 'USER').toBeDefined();
    expect(user?.split(':')[0], 'USER is not root').not.toMatch(/^(root|0)$/);
    // USER must come after the last RUN that needs root (chown), or the image runs as root.
    const body = runtime.body;
    expect(body.findLastIndex((i) => i.op === 'USER')).toBeGreaterThan(body.findLastIndex((i) => i.op === 'RUN'));

    expect(imageEnv.RINGKV_DATA).toBe('/data');
    expect(imageEnv.RINGKV_LISTEN).toBe('0.0.0.0:8081');
    const volume = last(runtime, 'VOLUME')?.args ?? '';
    const volumes = volume.startsWith('[') ? execForm(volume) : volume.split(' ');
    expect(volumes).toContain(imageEnv.RINGKV_DATA);
    expect(ops(runtime, 'EXPOSE').flatMap((e) => e.args.split(' '))).toContain('8081');
    expect(last(runtime, 'STOPSIGNAL')?.args).toBe('SIGTERM');
  });

  it('has a HEALTHCHECK on /v1/health that needs only node', () => {
    const hc = last(runtime, 'HEALTHCHECK')?.args ?? '';
    expect(hc).not.toMatch(/^NONE/);
    const cmd = /(?:^|\s)CMD\s+(\[.*\])$/.exec(hc)?.[1];
    expect(cmd, 'HEALTHCHECK ... CMD ["node", ...] (exec form)').toBeDefined();
    const argv = execForm(cmd as string);
    expect(argv[0]).toBe('node');
    expect(argv.join(' ')).toContain('/v1/health');
  });

  it('runs a one-node cluster with the flags its header documents (the ENV defaults parse)', () => {
    const usage = /docker run .* ringkv (--id .*)$/m.exec(read('Dockerfile'))?.[1];
    expect(usage, 'the Dockerfile header shows a `docker run` line').toBeDefined();
    const config = parseNodeConfig((usage as string).split(' '), imageEnv);
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 8081 });
    expect(config.data).toBe('/data');
    expect(config.seeds).toEqual([]);
  });

  it('.dockerignore lets in what the build copies and keeps out secrets, data and build output', () => {
    const patterns = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    const sources = dockerfile.stages
      .flatMap((s) => ops(s, 'COPY'))
      .filter((c) => !c.args.startsWith('--from'))
      .flatMap((c) => c.args.split(' ').slice(0, -1))
      .filter((a) => !a.startsWith('--'));
    expect(sources.length).toBeGreaterThan(0);
    for (const src of sources) expect(dockerignored(patterns, src), `${src} is in the build context`).toBe(false);
    for (const kept of ['.env', 'node_modules', 'dist', 'data', '.git', 'docker-compose.yml'])
      expect(dockerignored(patterns, kept), `${kept} stays out of the build context`).toBe(true);
  });
});

describe('health probe (Dockerfile HEALTHCHECK and compose healthcheck, run for real)', () => {
  let server: Server;
  let status = 200;
  let port = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      res.writeHead(req.url === '/v1/health' ? status : 404, { 'content-type': 'application/json' });
      res.end('{"status":"ok","node":"n1"}');
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise<void>((done) => server.close(() => done()));
  });

  /** Run a probe's argv (minus the CMD marker) as the container would, with RINGKV_LISTEN set. */
  const probe = (argv: readonly string[], listen: string): Promise<number> =>
    new Promise((done) => {
      const [cmd, ...args] = argv as [string, ...string[]];
      // `node` in the image is this machine's node here.
      execFile(cmd === 'node' ? process.execPath : cmd, args, { env: { RINGKV_LISTEN: listen }, timeout: 10_000 }, (err) =>
        done(err ? ((err as { code?: number }).code ?? -1) : 0),
      );
    });

  const probes = (): [string, string[]][] => {
    const hc = last(runtime, 'HEALTHCHECK')?.args ?? '';
    const fromDockerfile = execForm(/CMD\s+(\[.*\])$/.exec(hc)?.[1] ?? '[]');
    const fromCompose = composeView(composeRaw).services.map((s): [string, string[]] => [
      `compose ${s.name}`,
      (s.healthcheck ?? []).slice(1),
    ]);
    return [['Dockerfile', fromDockerfile], ...fromCompose];
  };

  it('exits 0 when /v1/health answers 200 on the RINGKV_LISTEN port, 1 otherwise', async () => {
    const seen = new Set<string>();
    for (const [where, argv] of probes()) {
      expect(argv.length, `${where}: has a health probe`).toBeGreaterThan(0);
      if (seen.has(argv.join('\0'))) continue;
      seen.add(argv.join('\0'));
      status = 200;
      expect(await probe(argv, `0.0.0.0:${port}`), `${where}: healthy`).toBe(0);
      status = 503;
      expect(await probe(argv, `0.0.0.0:${port}`), `${where}: 503 is unhealthy`).toBe(1);
      const closed = createServer();
      await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
      const dead = (closed.address() as { port: number }).port;
      await new Promise<void>((done) => closed.close(() => done()));
      expect(await probe(argv, `0.0.0.0:${dead}`), `${where}: nothing listening is unhealthy`).toBe(1);
    }
  });
});

describe('docker-compose.yml, as written', () => {
  it('is a five-node, three-zone cluster whose every node config the CLI accepts', () => {
    const secret = secretDefault();
    checkCluster(composeView(interpolateAll(composeRaw, {})), secret);
  });

  it('takes the secret from RINGKV_SECRET, with a marked local-only default that .env.example matches', () => {
    const secret = secretDefault();
    expect(secret.length).toBeGreaterThanOrEqual(8);
    expect(secret, 'the default says it is not a real secret').toMatch(/insecure|local|dev/i);
    expect(composeText).toMatch(/LOCAL DEVELOPMENT ONLY/);
    expect(read('.env.example')).toMatch(/LOCAL-DEVELOPMENT-ONLY|local development only/i);
    expect(exampleSecret, '.env.example documents the same default').toBe(secret);
    const own = composeView(interpolateAll(composeRaw, { RINGKV_SECRET: 'a-real-secret-0123456789' }));
    checkCluster(own, 'a-real-secret-0123456789');
  });

  it('publishes the dev cluster on loopback only (its default secret is public)', () => {
    for (const s of composeView(composeRaw).services) expect(s.ports[0]?.hostIp, s.name).toBe('127.0.0.1');
  });
});

describe('docker-compose config (the compose tool renders the file)', () => {
  const missing = !TOOL && !MUST_RUN_COMPOSE;
  const title = missing
    ? 'SKIPPED: no compose tool here (apt-get install -y docker-compose); CI must run it'
    : `renders the same cluster with ${TOOL?.argv.join(' ') ?? 'docker-compose'} ${TOOL?.version ?? ''}`.trim();
  // The default reporter shows only "1 skipped": say why, once, where a developer looks.
  if (missing) console.warn(`compose.test.ts: ${title}`);
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ringkv-compose-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.skipIf(missing)(title, () => {
    if (!TOOL)
      throw new Error('CI is set but neither `docker compose` nor `docker-compose` is installed: apt-get install -y docker-compose');
    const empty = join(dir, 'empty.env');
    writeFileSync(empty, '');
    const byDefault = composeView(renderWithCompose(TOOL, empty));
    checkCluster(byDefault, secretDefault());
    // The reader and the compose tool must see the same file, or the other checks mean little.
    const asRead = composeView(interpolateAll(composeRaw, {}));
    expect(byDefault).toEqual(asRead);

    checkCluster(composeView(renderWithCompose(TOOL, join(ROOT, '.env.example'))), exampleSecret as string);
    const own = 'secret-from-the-environment-42';
    checkCluster(composeView(renderWithCompose(TOOL, empty, { RINGKV_SECRET: own })), own);
  });
});
