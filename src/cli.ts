#!/usr/bin/env node
/**
 * The process edge: `ringkv node [flags]` runs a node in the foreground; `ringkv get|put|
 * delete|status` are the command-line client. Signals and exit codes live here only.
 */
import { Command } from 'commander';
import { registerClientCommands } from './cli/client-commands.js';
import { ConfigError, parseNodeConfig } from './config.js';

async function runNode(argv: readonly string[]): Promise<void> {
  let config: ReturnType<typeof parseNodeConfig>;
  try {
    config = parseNodeConfig(argv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ringkv node: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // Loaded here so the client commands start fast without the server's dependencies.
  const { RingkvNode } = await import('./node.js');
  const node = new RingkvNode(config);
  node.metrics.collectProcessMetrics();
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    node.log.info({ signal }, 'shutting down');
    // A last resort: whatever hangs, the process is gone 20 s after the signal.
    setTimeout(() => {
      node.log.error('shutdown took longer than 20 s; exiting');
      process.exit(1);
    }, 20_000).unref();
    node.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        node.log.error({ err }, 'unclean shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  node.onShutdownRequest = () => shutdown('leave');
  try {
    await node.start();
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`ringkv node: failed to start: ${msg}\n`);
    await node.stop().catch(() => undefined);
    process.exit(1);
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === 'node') {
    if (args[1] === '--help' || args[1] === '-h') {
      process.stdout.write(
        'usage: ringkv node --id ID [--listen host:port] [--advertise host:port] [--seeds a,b] [--data DIR]\n' +
          '       [--zone Z] [--weight W] [--secret S] [--n N] [--r R] [--w W] [--hinted-handoff true|false]\n' +
          '       [--anti-entropy-interval-ms MS] [--gossip-interval-ms MS] [--max-value-bytes B]\n' +
          '       [--tombstone-grace-ms MS] [--object-cache-mb MB] [--version-cache-mb MB]\n' +
          '       [--anti-entropy-verify-period-ms MS]\n' +
          'Every flag can also be given as RINGKV_<NAME> (e.g. RINGKV_LISTEN).\n',
      );
      return;
    }
    await runNode(args.slice(1));
    return;
  }
  const program = new Command();
  program.name('ringkv').description('ringkv: a Dynamo-style distributed key-value store');
  program.command('node').description('run a node in the foreground (see `ringkv node --help`)');
  registerClientCommands(program);
  await program.parseAsync(process.argv);
}

main().catch((err: unknown) => {
  process.stderr.write(`ringkv: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
