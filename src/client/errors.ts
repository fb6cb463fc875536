/**
 * The errors the SDK throws. Every one extends RingkvClientError and carries a stable `code`,
 * so callers can branch on `err.code` or `instanceof`. A missing key is not an error
 * (`get` returns `found: false`).
 */

/** Base class of every error the SDK throws. */
export class RingkvClientError extends Error {
  /** A stable, machine-readable code (`QUORUM_FAILED`, `TIMEOUT`, `BAD_KEY`, ...). */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RingkvClientError';
    this.code = code;
  }
}

/** A bad argument caught before any network call (key, value, quorum, context, options). */
export class InvalidArgumentError extends RingkvClientError {
  /** The argument or option that was wrong. */
  readonly argument: string;

  constructor(argument: string, message: string) {
    super('INVALID_ARGUMENT', `${argument}: ${message}`);
    this.name = 'InvalidArgumentError';
    this.argument = argument;
  }
}

/**
 * The server rejected the request itself (400, 413, other 4xx). `code` is the server's code
 * (`BAD_KEY`, `BAD_QUERY`, `BAD_CONTEXT`, `VALUE_TOO_LARGE`, ...). Never retried.
 */
export class RequestError extends RingkvClientError {
  readonly status: number;
  /** The node that answered. */
  readonly node: string;
  /** Extra fields of the server's error body, if any. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(status: number, code: string, message: string, node: string, details: Record<string, unknown> = {}) {
    super(code, message);
    this.name = 'RequestError';
    this.status = status;
    this.node = node;
    this.details = details;
  }
}

/**
 * Fewer than `r`/`w` replicas answered in time (HTTP 503, `QUORUM_FAILED`). For a write the
 * value may still have been stored on some replicas: the outcome is unknown.
 */
export class QuorumError extends RingkvClientError {
  readonly status = 503;
  /** Replicas that answered in time (undefined if the server did not say). */
  readonly answered: number | undefined;
  /** Replicas that were needed (undefined if the server did not say). */
  readonly needed: number | undefined;
  /** The node that coordinated the request. */
  readonly node: string;

  constructor(message: string, node: string, answered: number | undefined, needed: number | undefined) {
    super('QUORUM_FAILED', message);
    this.name = 'QuorumError';
    this.node = node;
    this.answered = answered;
    this.needed = needed;
  }
}

/** One failed attempt: which node, and why. */
export interface NodeFailure {
  readonly node: string;
  readonly error: RingkvClientError;
}

/**
 * The call's deadline (`timeoutMs`) passed. Also the cause recorded for one attempt that
 * outlived its own budget. For a write the outcome is unknown.
 */
export class TimeoutError extends RingkvClientError {
  readonly timeoutMs: number;
  /** The attempts made before the deadline passed. */
  readonly causes: readonly NodeFailure[];

  constructor(message: string, timeoutMs: number, causes: readonly NodeFailure[] = []) {
    super('TIMEOUT', message);
    this.name = 'TimeoutError';
    this.timeoutMs = timeoutMs;
    this.causes = causes;
  }
}

/** No node could serve the call: every attempt failed. `causes` lists each attempt. */
export class UnavailableError extends RingkvClientError {
  readonly causes: readonly NodeFailure[];

  constructor(message: string, causes: readonly NodeFailure[]) {
    super('UNAVAILABLE', message);
    this.name = 'UnavailableError';
    this.causes = causes;
  }
}

/** The caller's AbortSignal fired. For a write the outcome is unknown. `cause` is the signal's reason. */
export class AbortError extends RingkvClientError {
  constructor(reason: unknown) {
    super('ABORTED', 'the call was aborted', { cause: reason });
    this.name = 'AbortError';
  }
}

/**
 * A node could not be reached or the connection broke. `sent: false` means the request
 * certainly never reached the node (connect refused, DNS failure, connect timeout).
 */
export class ConnectionError extends RingkvClientError {
  readonly node: string;
  readonly sent: boolean;

  constructor(node: string, sent: boolean, cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(sent ? 'CONNECTION_LOST' : 'CONNECTION_FAILED', `${node}: ${detail}`, { cause });
    this.name = 'ConnectionError';
    this.node = node;
    this.sent = sent;
  }
}

/** A node's circuit breaker is open, so the SDK did not try it (an attempt cause only). */
export class CircuitOpenError extends RingkvClientError {
  readonly node: string;

  constructor(node: string) {
    super('CIRCUIT_OPEN', `${node}: circuit breaker open after repeated failures`);
    this.name = 'CircuitOpenError';
    this.node = node;
  }
}

/** A 5xx other than a quorum failure (the node is unhealthy, starting or stopping). */
export class ServerError extends RingkvClientError {
  readonly status: number;
  readonly node: string;

  constructor(status: number, code: string, message: string, node: string) {
    super(code, message);
    this.name = 'ServerError';
    this.status = status;
    this.node = node;
  }
}

/** A response the SDK could not make sense of (e.g. a malformed 300 body). */
export class ProtocolError extends RingkvClientError {
  readonly node: string;

  constructor(node: string, message: string) {
    super('BAD_RESPONSE', `${node}: ${message}`);
    this.name = 'ProtocolError';
    this.node = node;
  }
}

/** A resolver could not read a sibling (e.g. `jsonSetUnion` met a value that is not a JSON array). */
export class ResolveError extends RingkvClientError {
  /** Position of the offending sibling in the list given to the resolver. */
  readonly index: number;

  constructor(index: number, message: string, cause?: unknown) {
    super('BAD_SIBLING', `sibling ${index}: ${message}`, { cause });
    this.name = 'ResolveError';
    this.index = index;
  }
}

/** The client was closed; no further calls are possible. */
export class ClientClosedError extends RingkvClientError {
  constructor() {
    super('CLOSED', 'the client is closed');
    this.name = 'ClientClosedError';
  }
}
