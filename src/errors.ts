/**
 * The single registry of ringkv error codes. Every error a client can see has a stable
 * code here, and the HTTP status for each code is decided here and nowhere else.
 */
export const ERROR_CODES = {
  BAD_KEY: 400,
  BAD_QUERY: 400,
  BAD_CONTEXT: 400,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  VALUE_TOO_LARGE: 413,
  QUORUM_FAILED: 503,
  UNAVAILABLE: 503,
  NOT_IMPLEMENTED: 501,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Extra fields an error carries to the client (e.g. quorum counts). */
export type ErrorDetails = Record<string, unknown>;

export class RingkvError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails | undefined;

  constructor(code: ErrorCode, message: string, details?: ErrorDetails) {
    super(message);
    this.name = 'RingkvError';
    this.code = code;
    this.details = details;
  }

  get status(): number {
    return ERROR_CODES[this.code];
  }

  /** The JSON body of SPEC §2: `{"error": {"code", "message", ...details}}`. */
  toJSON(): { error: { code: ErrorCode; message: string } & ErrorDetails } {
    return { error: { code: this.code, message: this.message, ...(this.details ?? {}) } };
  }
}

/** Raised when fewer than the required replicas answered in time. */
export function quorumFailed(op: 'read' | 'write', answered: number, needed: number): RingkvError {
  return new RingkvError(
    'QUORUM_FAILED',
    `${op} quorum not met: ${answered} of ${needed} required replicas answered in time` +
      (op === 'write' ? '; the write may still have been stored on some replicas' : ''),
    { answered, needed },
  );
}
