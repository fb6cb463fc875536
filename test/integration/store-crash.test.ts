/**
 * kill -9 durability of LevelStore's layout: a child process writes records one by one and
 * prints each acknowledged index; the parent SIGKILLs it mid-stream, reopens the directory
 * with LevelStore and checks that every acknowledged record is there, and that each
 * cross-namespace batch is all-or-nothing.
 *
 * The child cannot import the TypeScript sources, so it drives classic-level directly with
 * the shared STORE_LAYOUT constant (the same one LevelStore uses).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LevelStore, StoreOpenError } from '../../src/storage/level-store.js';
import { STORE_LAYOUT } from '../../src/storage/layout.js';

const PROJECT_PACKAGE_JSON = fileURLToPath(new URL('../../package.json', import.meta.url));
/** Acks to wait for before the kill: enough values (~4 KB each) to fill and flush a memtable. */
const ACKS_BEFORE_KILL = 3000;
const DEADLINE_MS = 30_000;

/** Record i: key `k` + 8-digit i; odd records are also written to `hint` in the same batch. */
const keyFor = (i: number): Uint8Array => new TextEncoder().encode(`k${String(i).padStart(8, '0')}`);
/** Must match valueFor in CHILD_SOURCE. */
function valueFor(i: number): Uint8Array {
  const out = new Uint8Array(1000 + (i % 7) * 1000);
  for (let j = 0; j < out.length; j++) out[j] = (i + j) & 0xff;
  return out;
}

const CHILD_SOURCE = `
import { createRequire } from 'node:module';
const require = createRequire(${JSON.stringify(PROJECT_PACKAGE_JSON)});
const { ClassicLevel } = require('classic-level');
const layout = ${JSON.stringify(STORE_LAYOUT)};
const [location, count] = [process.argv[2], Number(process.argv[3])];
const encodings = { keyEncoding: layout.keyEncoding, valueEncoding: layout.valueEncoding };
const db = new ClassicLevel(location, encodings);
await db.open();
const sub = (ns) => db.sublevel(layout.sublevels[ns], { separator: layout.separator, ...encodings });
const obj = sub('obj');
const hint = sub('hint');
const keyFor = (i) => new TextEncoder().encode('k' + String(i).padStart(8, '0'));
function valueFor(i) {
  const out = new Uint8Array(1000 + (i % 7) * 1000);
  for (let j = 0; j < out.length; j++) out[j] = (i + j) & 0xff;
  return out;
}
for (let i = 0; i < count; i++) {
  if (i % 2 === 0) {
    await obj.put(keyFor(i), valueFor(i));
  } else {
    await db.batch([
      { type: 'put', sublevel: obj, key: keyFor(i), value: valueFor(i) },
      { type: 'put', sublevel: hint, key: keyFor(i), value: valueFor(i) },
    ]);
  }
  // Written only after LevelDB acknowledged the write (stdout to a pipe is synchronous on Linux).
  process.stdout.write('ack ' + i + '\\n');
}
process.stdout.write('done\\n');
await db.close();
`;

/** Follows a child's "ack i" lines; `until` waits for a condition with a deadline. */
class AckWatcher {
  readonly acked = new Set<number>();
  stderr = '';
  readonly #waiters = new Set<() => void>();
  readonly #exited: Promise<void>;
  readonly #drained: Promise<void>;
  #exit: string | undefined;

  constructor(child: ChildProcess) {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const match = /^ack (\d+)$/.exec(line);
      if (match) this.acked.add(Number(match[1]));
      this.#notify();
    });
    this.#drained = new Promise((done) => lines.once('close', done));
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.#exited = new Promise((done) => {
      child.once('exit', (code, signal) => {
        this.#exit = `exit code ${code}, signal ${signal}`;
        this.#notify();
        done();
      });
    });
  }

  /** Resolves once `ready()` holds; rejects if the child exits first or the deadline passes. */
  until(what: string, ready: () => boolean, deadlineMs = DEADLINE_MS): Promise<void> {
    return new Promise((done, fail) => {
      const check = (): void => {
        if (ready()) finish();
        else if (this.#exit !== undefined) finish(`child ended (${this.#exit}) before ${what}; stderr: ${this.stderr}`);
      };
      const finish = (problem?: string): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        if (problem === undefined) done();
        else fail(new Error(problem));
      };
      const timer = setTimeout(
        () => finish(`no ${what} within ${deadlineMs} ms (${this.acked.size} acks); stderr: ${this.stderr}`),
        deadlineMs,
      );
      this.#waiters.add(check);
      check();
    });
  }

  /** Resolves when the child has exited and everything it wrote to stdout has been read. */
  async finished(): Promise<void> {
    await this.until('exit', () => this.#exit !== undefined);
    await this.#exited;
    await this.#drained;
  }

  #notify(): void {
    for (const check of [...this.#waiters]) check();
  }
}

describe('LevelStore durability across kill -9', () => {
  let dir: string;
  let child: ChildProcess | undefined;
  let store: LevelStore | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ringkv-crash-'));
  });

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((done) => child!.once('exit', done));
      child.kill('SIGKILL');
      await gone;
    }
    child = undefined;
    await store?.close();
    store = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps every acknowledged write and never half a batch', async () => {
    const script = join(dir, 'child.mjs');
    const location = join(dir, 'db');
    await writeFile(script, CHILD_SOURCE);
    child = spawn(process.execPath, [script, location, '10000000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const watcher = new AckWatcher(child);

    await watcher.until(`${ACKS_BEFORE_KILL} acks`, () => watcher.acked.size >= ACKS_BEFORE_KILL);

    // While the child holds the directory, another process cannot open it.
    const intruder = new LevelStore({ location });
    const refused = await intruder.open().then(
      () => undefined,
      (err: unknown) => err,
    );
    await intruder.close();
    expect(refused).toBeInstanceOf(StoreOpenError);
    expect((refused as StoreOpenError).reason).toBe('locked');
    expect((refused as Error).message).toContain(location);

    child.kill('SIGKILL');
    await watcher.finished();
    expect(child.signalCode).toBe('SIGKILL');

    const acked = [...watcher.acked].sort((a, b) => a - b);
    const maxAcked = acked.at(-1)!;
    // Writes were sequential, so acks are 0..maxAcked with no gaps.
    expect(acked.length).toBe(maxAcked + 1);

    store = new LevelStore({ location });
    await store.open();

    const acknowledged = await store.getMany(
      'obj',
      acked.map((i) => keyFor(i)),
    );
    const missing = acked.filter((_, n) => acknowledged[n] === undefined);
    expect(missing, 'acknowledged records lost').toEqual([]);
    const wrong = acked.filter((i, n) => Buffer.compare(Buffer.from(acknowledged[n]!), Buffer.from(valueFor(i))) !== 0);
    expect(wrong, 'acknowledged records corrupted').toEqual([]);

    // What is on disk is a prefix of the write sequence: everything acknowledged, plus at most
    // the one write that was in flight (or done but not yet announced) at the kill.
    const objIndices: number[] = [];
    for await (const key of store.keys('obj')) objIndices.push(Number(new TextDecoder().decode(key).slice(1)));
    expect(objIndices.length).toBeGreaterThanOrEqual(maxAcked + 1);
    expect(objIndices.length).toBeLessThanOrEqual(maxAcked + 2);
    expect(objIndices).toEqual(objIndices.map((_, n) => n));

    // Each odd record was one batch across obj and hint: both halves or neither.
    const hintIndices: number[] = [];
    for await (const [key, value] of store.entries('hint')) {
      const i = Number(new TextDecoder().decode(key).slice(1));
      hintIndices.push(i);
      expect(Buffer.compare(Buffer.from(value), Buffer.from(valueFor(i)))).toBe(0);
    }
    expect(hintIndices).toEqual(objIndices.filter((i) => i % 2 === 1));
  });
});
