import { describe, expect, it } from 'vitest';
import { ConfigError, parseNodeConfig } from '../../src/config.js';

describe('parseNodeConfig', () => {
  it('applies SPEC defaults', () => {
    const c = parseNodeConfig(['--id', 'n1']);
    expect(c).toMatchObject({
      id: 'n1',
      listen: { host: '127.0.0.1', port: 8081 },
      advertise: { host: '127.0.0.1', port: 8081 },
      seeds: [],
      data: './data/n1',
      zone: 'default',
      weight: 1,
      n: 3,
      r: 2,
      w: 2,
      hintedHandoff: true,
      antiEntropyIntervalMs: 60000,
      gossipIntervalMs: 1000,
      maxValueBytes: 1048576,
      objectCacheMb: 8,
      versionCacheMb: 4,
    });
    expect(c.secret).toBeUndefined();
  });

  it('reads RINGKV_* env vars, and flags win over them', () => {
    const c = parseNodeConfig(['--zone', 'b'], { RINGKV_ID: 'n2', RINGKV_ZONE: 'a', RINGKV_HINTED_HANDOFF: 'false', RINGKV_LISTEN: '0.0.0.0:9000', RINGKV_ADVERTISE: 'n2:9000' });
    expect(c.id).toBe('n2');
    expect(c.zone).toBe('b');
    expect(c.hintedHandoff).toBe(false);
    expect(c.listen).toEqual({ host: '0.0.0.0', port: 9000 });
    expect(c.advertise).toEqual({ host: 'n2', port: 9000 });
  });

  it('accepts --flag=value, bare boolean flags and seed lists', () => {
    const c = parseNodeConfig(['--id=x', '--hinted-handoff', '--seeds', 'a:1, b:2', '--secret', 'longenough']);
    expect(c.hintedHandoff).toBe(true);
    expect(c.seeds).toEqual(['a:1', 'b:2']);
  });

  it('takes --object-cache-mb and --version-cache-mb (0 turns a cache off)', () => {
    expect(parseNodeConfig(['--id', 'n1', '--object-cache-mb', '0']).objectCacheMb).toBe(0);
    expect(parseNodeConfig(['--id', 'n1'], { RINGKV_OBJECT_CACHE_MB: '32' }).objectCacheMb).toBe(32);
    expect(parseNodeConfig(['--id', 'n1', '--version-cache-mb', '0']).versionCacheMb).toBe(0);
    expect(parseNodeConfig(['--id', 'n1'], { RINGKV_VERSION_CACHE_MB: '16' }).versionCacheMb).toBe(16);
  });

  it('takes --anti-entropy-verify-period-ms (default one day, 0 turns the sweep off)', () => {
    expect(parseNodeConfig(['--id', 'n1']).antiEntropyVerifyPeriodMs).toBe(86_400_000);
    expect(parseNodeConfig(['--id', 'n1', '--anti-entropy-verify-period-ms', '0']).antiEntropyVerifyPeriodMs).toBe(0);
    expect(parseNodeConfig(['--id', 'n1'], { RINGKV_ANTI_ENTROPY_VERIFY_PERIOD_MS: '3600000' }).antiEntropyVerifyPeriodMs).toBe(3_600_000);
  });

  it.each([
    [[], 'id'],
    [['--id', 'n1', '--bogus', '1'], 'bogus'],
    [['--id', 'n1', '--listen', 'nope'], 'listen'],
    [['--id', 'n1', '--listen', '127.0.0.1:70000'], 'listen'],
    [['--id', 'n1', '--n', '0'], 'n'],
    [['--id', 'n1', '--r', '4'], 'r'],
    [['--id', 'n1', '--w', 'x'], 'w'],
    [['--id', 'n1', '--weight', '-1'], 'weight'],
    [['--id', 'n1', '--hinted-handoff', 'maybe'], 'hinted-handoff'],
    [['--id', 'n1', '--seeds', 'a:1'], 'secret'],
    [['--id', 'n1', '--secret', 'short'], 'secret'],
    [['--id', 'bad id'], 'id'],
    [['--id', 'n1', '--gossip-interval-ms', '5'], 'gossip-interval-ms'],
    [['--id', 'n1', '--object-cache-mb', '-1'], 'object-cache-mb'],
    [['--id', 'n1', '--object-cache-mb', '1.5'], 'object-cache-mb'],
    [['--id', 'n1', '--version-cache-mb', '-1'], 'version-cache-mb'],
    [['--id', 'n1', '--anti-entropy-verify-period-ms', '-5'], 'anti-entropy-verify-period-ms'],
    [['--id', 'n1', '--anti-entropy-verify-period-ms', 'daily'], 'anti-entropy-verify-period-ms'],
    [['--id', 'n1', '--listen', '0.0.0.0:8081'], 'advertise'],
    [['--id', 'n1', 'stray'], 'stray'],
    [['--id'], 'id'],
  ])('rejects %j naming --%s', (argv, flag) => {
    try {
      parseNodeConfig(argv as string[]);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).flag).toBe(flag);
      expect((err as ConfigError).message).not.toContain('\n');
    }
  });
});
