/**
 * Request values shared by the public-API tests (in-process and real-process), so both check
 * the same SPEC §2 rules with the same inputs. Assumes the node's configured n is 3.
 */
import { encodeReplicaWrite } from '../../src/coordinator/messages.js';
import { decodeContext } from '../../src/version/index.js';
import type { RawResponse } from './raw-http.js';

/** `r`/`w` values SPEC §2 accepts when n = 3. */
export const GOOD_QUORUMS = ['1', '2', '3', 'one', 'quorum', 'all'] as const;

/** `r`/`w` values SPEC §2 rejects when n = 3 (0, n+1, words other than one/quorum/all, junk). */
export const BAD_QUORUMS = ['0', '4', '17', 'two', 'ONE', '', '-1', '1.5', ' 1', '1 ', '0x1', '1e0', 'one,all'] as const;

/** `timeout` values that are not a positive integer number of milliseconds. */
export const BAD_TIMEOUTS = ['0', '-1', 'abc', '1.5', '', '1e3', ' 100'] as const;

/**
 * Keys that must round-trip as percent-encoded UTF-8 path segments, each a distinct key:
 * reserved URL characters, '%', spaces, emoji, dot segments, and near-collisions.
 */
export const ODD_KEYS = [
  'a/b',
  'a%2Fb',
  'a',
  'a/',
  '/',
  '//',
  '/a',
  '.',
  '..',
  './a',
  'q?x=1&y=2',
  '?',
  '100%',
  '%',
  '%25',
  'with space',
  ' ',
  '+plus+',
  '#hash',
  'semi;colon,comma',
  'emoji 😀🎉',
  'ünïcödé/日本語',
  'tab\there',
  'nul\u0000byte',
] as const;

/** Clearly malformed X-Ringkv-Context values (whatever the encoding of real contexts). */
export function badContexts(real: string): string[] {
  return ['!!!', 'not a context', '{"json":true}', '%%%', `${real}!`, `${real} ${real}`, `${real},${real}`];
}

/** A byte string containing every byte value, then some pseudo-random ones. */
export function binaryValue(size = 4096): Buffer {
  const out = Buffer.alloc(size);
  let x = 0x9e3779b9;
  for (let i = 0; i < size; i++) {
    if (i < 256) out[i] = i;
    else {
      x = (x * 1103515245 + 12345) >>> 0;
      out[i] = x >>> 24;
    }
  }
  return out;
}

/** ISO-8601 as JSON.stringify(Date) writes it (UTC, with milliseconds optional). */
export const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** What a GET answered, in a form that compares with toEqual (to check "nothing changed"). */
export interface Snapshot {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly context: string | undefined;
  readonly body: string;
}

export function snapshotOf(res: RawResponse): Snapshot {
  return {
    status: res.status,
    contentType: res.header('content-type'),
    context: res.header('x-ringkv-context'),
    body: res.body.toString('base64'),
  };
}

/**
 * A well-formed replica-write message that, if applied, replaces every version the context
 * `seen` covers with `value` under a made-up actor. Used to check that internal routes
 * refuse it without the cluster secret (and, as a control, apply it with the secret).
 */
export function forgedReplicaWrite(key: string, seen: string, value: string): Uint8Array {
  const dot = { actor: 'mallory.forged', counter: 7 };
  const clock = { ...decodeContext(seen), [dot.actor]: dot.counter };
  return encodeReplicaWrite({
    key,
    hintsFor: [],
    object: {
      clock,
      siblings: [{ dot, value: new TextEncoder().encode(value), contentType: 'text/x-forged', lastModified: 0, deleted: false }],
    },
  });
}

/** Authorization headers that do not carry the cluster secret `secret`. */
export function wrongAuthorizations(secret: string): (string | undefined)[] {
  return [
    undefined,
    '',
    'Bearer',
    'Bearer ',
    'Bearer wrong-secret-value',
    `Bearer ${secret}x`,
    `Bearer ${secret.slice(0, -1)}`,
    `Bearer ${secret.toUpperCase() === secret ? secret.toLowerCase() : secret.toUpperCase()}`,
    `Basic ${Buffer.from(`admin:${secret}`).toString('base64')}`,
    `Bearer${secret}`,
    secret,
  ];
}
