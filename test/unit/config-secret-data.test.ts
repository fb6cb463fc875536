/**
 * `ringkv node` flags and the CLI client's environment, against SPEC §1: a bad value is a
 * one-line ConfigError naming its flag (the CLI exits 2), never a node that starts and then
 * fails, nor one that runs but cannot talk to its peers.
 */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { EXIT, registerClientCommands } from '../../src/cli/client-commands.js';
import { ConfigError, parseNodeConfig } from '../../src/config.js';

/** The ConfigError `argv` raises (the test fails if it raises none). */
function configError(argv: string[], env: Record<string, string> = {}): ConfigError {
  try {
    parseNodeConfig(argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  return expect.unreachable(`${JSON.stringify(argv)} was accepted`);
}

describe('--data', () => {
  it('rejects an empty directory naming --data, given as --data= or as an empty argument', () => {
    // Before: `--data=` went through as '' and the node died in LevelStore's constructor with
    // "ringkv: LevelStore: location must be a non-empty path" and exit code 1.
    expect(configError(['--id', 'n1', '--data=']).flag).toBe('data');
    expect(configError(['--id', 'n1', '--data', '']).flag).toBe('data');
  });

  it('still defaults to ./data/<id> when the env var is set but empty', () => {
    expect(parseNodeConfig(['--id', 'n1'], { RINGKV_DATA: '' }).data).toBe('./data/n1');
  });
});

describe('--secret', () => {
  // Each of these passed the config, then no internal or admin call could ever carry it:
  // HTTP strips a header value's surrounding whitespace (the server's token never equals the
  // secret), undici refuses control characters and anything beyond Latin-1, and curl sends
  // non-ASCII as UTF-8 where the server reads Latin-1 (see review-http.test.ts).
  it.each([
    ['a trailing newline (a Kubernetes secret made with echo)', 'cluster-secret\n'],
    ['a trailing space', 'cluster-secret '],
    ['a leading space', ' cluster-secret'],
    ['a non-ASCII letter', 'clüster-secret'],
    ['a character beyond Latin-1', 'cluster-secret-€'],
  ])('rejects a secret with %s, naming --secret on one line', (_name, secret) => {
    const err = configError(['--id', 'n1', '--secret', secret]);
    expect(err.flag).toBe('secret');
    expect(err.message).not.toContain('\n');
    // The message describes the problem without echoing the secret.
    expect(err.message).not.toContain(secret.trim());
    expect(configError(['--id', 'n1'], { RINGKV_SECRET: secret }).flag).toBe('secret');
  });

  it('accepts any printable ASCII secret, e.g. base64 or hex from openssl rand', () => {
    for (const secret of ['c2VjcmV0LXNlY3JldA==', '0f1e2d3c4b5a6978', 'p@ss:w0rd/with+symbols!~', 'correct horse battery staple']) {
      expect(parseNodeConfig(['--id', 'n1', '--secret', secret]).secret).toBe(secret);
    }
  });
});

describe('RINGKV_NODE (the CLI client)', () => {
  it('treats an empty RINGKV_NODE as unset, as the node treats its own RINGKV_* vars', async () => {
    // Before: `RINGKV_NODE= ringkv status` failed with "nodes: must be a non-empty array" and
    // exit 2 instead of using the default node. Nothing listens on the default here, so the
    // command must get as far as trying it: exit 3 (unavailable), not 2 (usage).
    const program = new Command().name('ringkv');
    const stderr: string[] = [];
    let code: number | undefined;
    registerClientCommands(program, {
      stdout: { write: () => true },
      stderr: { write: (c) => stderr.push(String(c)) },
      env: { RINGKV_NODE: '' },
      setExitCode: (c) => {
        code = c;
      },
      exit: (c) => {
        throw new Error(`exit ${c}`);
      },
    });
    // The default node URL is on 127.0.0.1:8081; a short timeout keeps a stray listener from
    // stalling the test.
    await program.parseAsync(['node', 'ringkv', 'status', '--timeout', '300']);
    expect(stderr.join('')).not.toContain('non-empty');
    expect(code).not.toBe(EXIT.USAGE);
  });
});
