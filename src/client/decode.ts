/**
 * Turns v1 HTTP responses (SPEC §2) into results and typed errors (pure).
 */
import { ProtocolError, QuorumError, RequestError, ServerError } from './errors.js';
import type { HttpResponse } from './pools.js';
import type { GetResult, Sibling } from './types.js';

export const CONTEXT_HEADER = 'x-ringkv-context';
const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
const utf8 = new TextDecoder();

/** A single-valued header (the first value if repeated). */
export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * A GET's answer. `receivedAt` (epoch ms) stands in for lastModified when a 200 carries no
 * usable Last-Modified header.
 */
export function decodeGet(res: HttpResponse, node: string, receivedAt: number): GetResult {
  const context = header(res, CONTEXT_HEADER) || undefined;
  switch (res.status) {
    case 200: {
      const lm = header(res, 'last-modified');
      const parsed = lm === undefined ? Number.NaN : Date.parse(lm);
      const sibling: Sibling = {
        value: res.body,
        contentType: header(res, 'content-type') ?? DEFAULT_CONTENT_TYPE,
        lastModified: new Date(Number.isNaN(parsed) ? receivedAt : parsed),
      };
      return foundWithContext({ found: true, siblings: [sibling] }, context, node, '200');
    }
    case 300:
      return decodeSiblings(res, node, context);
    case 404:
      // A tombstone still has a context: writing with it supersedes the delete.
      return withContext({ found: false, siblings: [] }, context);
    default:
      throw unexpected(res, node);
  }
}

/** A PUT's or DELETE's answer: the new version's context. */
export function decodeWrite(res: HttpResponse, node: string, op: 'put' | 'delete'): { context: string | undefined } {
  // Deletes are idempotent: deleting a key that is already gone is a success.
  if ((res.status >= 200 && res.status < 300) || (op === 'delete' && res.status === 404)) {
    return { context: header(res, CONTEXT_HEADER) || undefined };
  }
  throw unexpected(res, node);
}

/** A JSON document (`GET /v1/cluster`). */
export function decodeJson(res: HttpResponse, node: string): unknown {
  if (res.status !== 200) throw unexpected(res, node);
  try {
    return JSON.parse(utf8.decode(res.body));
  } catch {
    throw new ProtocolError(node, 'response body is not JSON');
  }
}

/** The typed error for a 5xx: QuorumError for `QUORUM_FAILED`, ServerError otherwise. */
export function serverFailure(res: HttpResponse, node: string): QuorumError | ServerError {
  const e = errorBody(res);
  if (res.status === 503 && e.code === 'QUORUM_FAILED') {
    return new QuorumError(`${node}: ${e.message}`, node, count(e.fields.answered), count(e.fields.needed));
  }
  return new ServerError(res.status, e.code, `${node}: ${e.message}`, node);
}

/** A 4xx (or any other status the call does not expect). */
function unexpected(res: HttpResponse, node: string): RequestError | ProtocolError | QuorumError | ServerError {
  if (res.status >= 500) return serverFailure(res, node);
  if (res.status >= 400) {
    const e = errorBody(res);
    return new RequestError(res.status, e.code, e.message, node, e.fields);
  }
  return new ProtocolError(node, `unexpected HTTP status ${res.status}`);
}

function decodeSiblings(res: HttpResponse, node: string, headerContext: string | undefined): GetResult {
  let doc: unknown;
  try {
    doc = JSON.parse(utf8.decode(res.body));
  } catch {
    throw new ProtocolError(node, '300 response body is not JSON');
  }
  if (!isRecord(doc) || !Array.isArray(doc.siblings)) throw new ProtocolError(node, '300 response has no siblings array');
  const siblings = doc.siblings.map((s, i): Sibling => {
    if (!isRecord(s) || typeof s.value !== 'string') throw new ProtocolError(node, `sibling ${i} has no base64 value`);
    const lastModified = typeof s.lastModified === 'string' ? new Date(s.lastModified) : new Date(Number.NaN);
    // Buffer's decoder skips characters outside the alphabet and stops at the first '=', so
    // garbage would decode to made-up bytes: accept only text that re-encodes to itself
    // (padding aside). Copy out of Buffer's shared pool so no caller can see unrelated
    // memory through .buffer.
    const decoded = Buffer.from(s.value, 'base64');
    if (decoded.toString('base64').replace(/=+$/, '') !== s.value.replace(/=+$/, ''))
      throw new ProtocolError(node, `sibling ${i} value is not base64`);
    const value = new Uint8Array(decoded);
    return {
      value,
      contentType: typeof s.contentType === 'string' && s.contentType !== '' ? s.contentType : DEFAULT_CONTENT_TYPE,
      lastModified,
    };
  });
  // The body's context names exactly the siblings in this body; should a header disagree
  // (a proxy mixing two answers, say), writing with the header's could replace versions the
  // caller never saw.
  const bodyContext = typeof doc.context === 'string' && doc.context !== '' ? doc.context : undefined;
  if (siblings.length === 0) return withContext({ found: false, siblings }, bodyContext ?? headerContext);
  return foundWithContext({ found: true, siblings }, bodyContext ?? headerContext, node, '300');
}

/**
 * A value that exists always comes with its context. Without one, a write based on this read
 * (update() above all) would go out blind: a new sibling next to the value instead of its
 * replacement, every time. So an answer that lacks it is not one the SDK can use.
 */
function foundWithContext(result: GetResult, context: string | undefined, node: string, status: string): GetResult {
  if (context === undefined) throw new ProtocolError(node, `${status} response carries no context (X-Ringkv-Context)`);
  return withContext(result, context);
}

function withContext(result: GetResult, context: string | undefined): GetResult {
  if (context !== undefined) result.context = context;
  return result;
}

interface ErrorBody {
  code: string;
  message: string;
  fields: Record<string, unknown>;
}

/** `{"error": {"code", "message", ...}}`, or a fallback built from the status and raw text. */
function errorBody(res: HttpResponse): ErrorBody {
  const text = utf8.decode(res.body.subarray(0, 64 * 1024));
  try {
    const doc: unknown = JSON.parse(text);
    if (isRecord(doc) && isRecord(doc.error) && typeof doc.error.code === 'string') {
      const { code, message, ...fields } = doc.error;
      return { code, message: typeof message === 'string' ? message : code, fields };
    }
  } catch {
    // Not JSON (a proxy's error page, say): fall through to the generic form.
  }
  const snippet = text.trim().slice(0, 200);
  return { code: `HTTP_${res.status}`, message: snippet === '' ? `HTTP ${res.status}` : `HTTP ${res.status}: ${snippet}`, fields: {} };
}

function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
