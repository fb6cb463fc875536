import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * One pino logger per node (never a module global), so several nodes can share a test
 * process. Authorization headers and anything named `secret` are redacted at the source:
 * the cluster secret must never reach a log line.
 */
export function createLogger(opts: {
  nodeId: string;
  level?: string;
  destination?: pino.DestinationStream;
}): Logger {
  const options: pino.LoggerOptions = {
    level: opts.level ?? 'info',
    base: { node: opts.nodeId },
    redact: {
      paths: ['secret', '*.secret', 'req.headers.authorization', 'headers.authorization', 'config.secret'],
      censor: '[redacted]',
    },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** A logger that drops everything (tests, simulations). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
