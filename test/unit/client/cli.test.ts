import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, formatStatus, registerClientCommands } from '../../../src/cli/client-commands.js';
import { deadUrl, errorBody, FakeV1 } from './fake-v1.js';

let fake: FakeV1;

class Exited extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

interface Run {
  code: number;
  stdout: string;
  stdoutBytes: Buffer;
  stderr: string;
}

async function cli(args: string[], opts: { stdin?: string | Buffer; env?: Record<string, string> } = {}): Promise<Run> {
  const program = new Command().name('ringkv');
  const out: Buffer[] = [];
  const err: string[] = [];
  let code = 0;
  registerClientCommands(program, {
    stdout: { write: (c) => out.push(Buffer.from(c)) },
    stderr: { write: (c) => err.push(Buffer.from(c).toString()) },
    stdin: (async function* () {
      if (opts.stdin !== undefined) yield Buffer.from(opts.stdin);
    })(),
    env: opts.env ?? { RINGKV_NODE: fake.url },
    setExitCode: (c) => {
      code = c;
    },
    exit: (c) => {
      throw new Exited(c);
    },
  });
  try {
    await program.parseAsync(['node', 'ringkv', ...args]);
  } catch (e) {
    if (!(e instanceof Exited)) throw e;
    code = e.code;
  }
  const stdoutBytes = Buffer.concat(out);
  return { code, stdout: stdoutBytes.toString(), stdoutBytes, stderr: err.join('') };
}

beforeAll(async () => {
  fake = await FakeV1.start();
});

afterEach(() => {
  fake.intercept = undefined;
});

afterAll(async () => {
  await fake.close();
});

describe('ringkv get/put/delete', () => {
  it('puts a value and gets it back raw, with the context on stderr', async () => {
    const put = await cli(['put', 'c1', 'hello', '--content-type', 'text/x-greeting']);
    expect(put.code).toBe(EXIT.OK);
    expect(put.stdout).toMatch(/^c1\.\S+\n$/);
    const got = await cli(['get', 'c1']);
    expect(got).toMatchObject({ code: EXIT.OK, stdout: 'hello' });
    expect(got.stderr).toMatch(/^context: c1\.\S+\n$/);
    expect(fake.data.get('c1')![0]!.contentType).toBe('text/x-greeting');
  });

  it('reads the value from stdin when no value argument is given (bytes intact)', async () => {
    const bytes = Buffer.from([0, 1, 2, 255, 10]);
    expect((await cli(['put', 'c2', '--w', '2'], { stdin: bytes })).code).toBe(EXIT.OK);
    expect(fake.hitsFor('PUT').at(-1)!.query.get('w')).toBe('2');
    const got = await cli(['get', 'c2', '--r', 'all']);
    expect(got.stdoutBytes.equals(bytes)).toBe(true);
    expect(fake.hitsFor('GET').at(-1)!.query.get('r')).toBe('all');
  });

  it('prints each sibling under a header line, and resolves them with --context', async () => {
    await cli(['put', 'c3', 'left']);
    await cli(['put', 'c3', 'right']);
    const got = await cli(['get', 'c3']);
    expect(got.code).toBe(EXIT.OK);
    const lines = got.stdout.split('\n');
    expect(lines[0]).toMatch(/^--- sibling 1\/2 \(text\/plain; charset=utf-8, \d{4}-\d\d-\d\dT[\d:.]+Z\) ---$/);
    expect(lines[1]).toBe('left');
    expect(lines[2]).toMatch(/^--- sibling 2\/2 \(/);
    expect(lines[3]).toBe('right');
    const context = got.stderr.replace(/^context: /, '').trim();
    expect((await cli(['put', 'c3', 'both', '--context', context])).code).toBe(EXIT.OK);
    expect(fake.values('c3')).toEqual(['both']);
  });

  it('prints a JSON document with --json', async () => {
    await cli(['put', 'c4', 'text']);
    const got = await cli(['get', 'c4', '--json']);
    const doc = JSON.parse(got.stdout) as { found: boolean; context: string; siblings: Record<string, string>[] };
    expect(doc.found).toBe(true);
    expect(doc.context).toMatch(/^c1\./);
    expect(doc.siblings[0]).toMatchObject({ value: Buffer.from('text').toString('base64'), text: 'text' });
    const missing = await cli(['get', 'nothing-here', '--json']);
    expect(missing.code).toBe(EXIT.NOT_FOUND);
    expect(JSON.parse(missing.stdout)).toEqual({ found: false, context: null, siblings: [] });
  });

  it('exits 1 for a missing key and after a delete', async () => {
    expect(await cli(['get', 'absent'])).toMatchObject({ code: EXIT.NOT_FOUND, stdout: '', stderr: 'not found\n' });
    await cli(['put', 'c5', 'v']);
    const ctx = (await cli(['get', 'c5'])).stderr.replace(/^context: /, '').trim();
    expect((await cli(['delete', 'c5', '--context', ctx])).code).toBe(EXIT.OK);
    const gone = await cli(['get', 'c5']);
    expect(gone.code).toBe(EXIT.NOT_FOUND);
    expect(gone.stderr).toMatch(/^not found \(deleted\)\ncontext: c1\./);
  });

  it.each([
    ['a bad --r', ['get', 'k', '--r', 'most']],
    ['a bad --timeout', ['get', 'k', '--timeout', 'soon']],
    ['a missing key argument', ['get']],
    ['an unknown flag', ['get', 'k', '--bogus']],
    ['an empty key', ['get', '']],
    ['a bad --node', ['get', 'k', '--node', 'not a url']],
  ])('exits 2 for %s', async (_name, args) => {
    const before = fake.hits.length;
    const run = await cli(args);
    expect(run.code).toBe(EXIT.USAGE);
    expect(run.stderr).not.toBe('');
    expect(fake.hits.length).toBe(before);
  });

  it('exits 2 when the server rejects the request (413)', async () => {
    fake.maxValueBytes = 3;
    try {
      const run = await cli(['put', 'k', 'too big']);
      expect(run.code).toBe(EXIT.USAGE);
      expect(run.stderr).toContain('VALUE_TOO_LARGE');
    } finally {
      fake.maxValueBytes = 1024 * 1024;
    }
  });

  it('exits 3 on a quorum failure, saying how many replicas answered', async () => {
    fake.intercept = (_hit, reply) => {
      void reply.code(503).type('application/json').send(errorBody('QUORUM_FAILED', 'no', { answered: 1, needed: 2 }));
      return true;
    };
    const run = await cli(['get', 'k', '--timeout', '2000']);
    expect(run.code).toBe(EXIT.UNAVAILABLE);
    expect(run.stderr).toContain('1 of 2 replicas answered');
  });

  it('exits 3 when no node is reachable; --node beats RINGKV_NODE', async () => {
    const dead = await deadUrl();
    const run = await cli(['get', 'k', '--node', dead], { env: { RINGKV_NODE: fake.url } });
    expect(run.code).toBe(EXIT.UNAVAILABLE);
    expect(run.stderr).toContain('UNAVAILABLE');
    const viaEnv = await cli(['get', 'k'], { env: { RINGKV_NODE: dead } });
    expect(viaEnv.code).toBe(EXIT.UNAVAILABLE);
  });
});

describe('ringkv status', () => {
  it('prints a member table, with - for fields the server does not send', async () => {
    fake.cluster = {
      node: 'n1',
      members: [
        { id: 'n1', address: '127.0.0.1:8081', zone: 'a', status: 'up', ownership: 0.3333 },
        { id: 'n2', address: '127.0.0.1:8082', status: 'down' },
      ],
      ring: { partitions: 64, checksum: 'abc123' },
      hints: { pending: 7 },
      transfers: { pending: 2 },
    };
    const run = await cli(['status']);
    expect(run.code).toBe(EXIT.OK);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('node n1   ring: partitions 64, checksum abc123');
    expect(lines[2]!.split(/\s+/)).toEqual(['ID', 'ADDRESS', 'ZONE', 'STATUS', 'OWNERSHIP', 'HINTS', 'TRANSFERS']);
    expect(lines[3]!.split(/\s+/)).toEqual(['n1*', '127.0.0.1:8081', 'a', 'up', '33.3%', '7', '2']);
    expect(lines[4]!.split(/\s+/)).toEqual(['n2', '127.0.0.1:8082', '-', 'down', '-', '-', '-']);
    const json = await cli(['status', '--json']);
    expect(JSON.parse(json.stdout)).toEqual(fake.cluster);
  });

  it('formats a bare document', () => {
    expect(formatStatus({ members: [] })).toBe('node -   ring: partitions -, checksum -\n\nID  ADDRESS  ZONE  STATUS  OWNERSHIP  HINTS  TRANSFERS\n');
  });
});
