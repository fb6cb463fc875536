/**
 * A tiny HTTP client for black-box API tests, on node:http rather than fetch: the path is sent
 * byte for byte (fetch's URL parser would normalise `.`/`..` segments and re-encode some
 * characters), headers may be repeated, and every request uses its own connection
 * (`agent: false`) so no keep-alive socket outlives a test.
 */
import { type IncomingHttpHeaders, type OutgoingHttpHeaders, request as httpRequest } from 'node:http';

export interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The body as UTF-8 text. */
  text(): string;
  /** The body parsed as JSON. */
  json<T = unknown>(): T;
  /** A single header value (first one if repeated). */
  header(name: string): string | undefined;
}

export interface RawRequestOptions {
  readonly headers?: OutgoingHttpHeaders;
  readonly body?: Uint8Array | string;
  /** Abort the request after this long (default 30 s). */
  readonly timeoutMs?: number;
}

/** Send `method path` to `base` (`http://host:port`) and read the whole answer. */
export function raw(base: string, method: string, path: string, opts: RawRequestOptions = {}): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        agent: false,
        headers: { connection: 'close', ...(opts.headers ?? {}) },
        timeout: opts.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text: () => body.toString('utf8'),
            json: <T>() => JSON.parse(body.toString('utf8')) as T,
            header: (name: string) => {
              const v = res.headers[name.toLowerCase()];
              return Array.isArray(v) ? v[0] : v;
            },
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${opts.timeoutMs ?? 30_000} ms`)));
    req.on('error', reject);
    if (opts.body !== undefined) req.end(opts.body);
    else req.end();
  });
}

/** `/v1/kv/<percent-encoded key>` plus an optional raw query string. */
export function kvPath(key: string, query = ''): string {
  return `/v1/kv/${encodeURIComponent(key)}${query === '' ? '' : `?${query}`}`;
}

/** SPEC §2 error body. */
export interface ErrorBody {
  error: { code: string; message: string; answered?: number; needed?: number; [k: string]: unknown };
}

/**
 * A comparable summary of an error answer: compare it with `errorShape(status, code)` via
 * toEqual, so a failure prints what actually came back (status, content type, body).
 */
export function errorOf(res: RawResponse): { status: number; json: boolean; code: unknown; message: unknown; body?: string } {
  const json = /^application\/json(;|$)/.test(res.header('content-type') ?? '');
  let code: unknown;
  let message: unknown;
  try {
    const body = res.json<ErrorBody>();
    code = body.error?.code;
    message = typeof body.error?.message === 'string' && body.error.message !== '' ? 'non-empty' : body.error?.message;
  } catch {
    return { status: res.status, json, code: undefined, message: undefined, body: res.text().slice(0, 300) };
  }
  return { status: res.status, json, code, message };
}

/** What errorOf gives for a SPEC §2 error with this status and code. */
export function errorShape(status: number, code: string): ReturnType<typeof errorOf> {
  return { status, json: true, code, message: 'non-empty' };
}
