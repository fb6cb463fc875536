/**
 * A tiny binary framing for node-to-node messages: unsigned LEB128 varints, length-prefixed
 * byte strings and UTF-8 strings. Used instead of JSON on the replication hot path.
 */
import { allocBytes } from './alloc.js';
import { RingkvError } from './errors.js';
import { utf8Length, writeUtf8 } from './utf8.js';

const enc = new TextEncoder();
// ignoreBOM: a string (a key) that starts with U+FEFF must keep it; by default the decoder
// drops it, and a key "\uFEFFx" would reach the replicas as "x".
const dec = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export class Writer {
  private buf: Uint8Array;
  private len = 0;

  constructor(initial = 256) {
    this.buf = allocBytes(initial);
  }

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + extra) size *= 2;
    const next = allocBytes(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  uint(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint out of range: ${v}`);
    this.ensure(10);
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.uint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  str(s: string): this {
    const n = utf8Length(s);
    // A lone surrogate is written as U+FFFD, as TextEncoder does.
    if (n < 0) return this.bytes(enc.encode(s));
    this.uint(n);
    this.ensure(n);
    this.len = writeUtf8(this.buf, this.len, s, n);
    return this;
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

export class Reader {
  private pos = 0;

  constructor(private readonly buf: Uint8Array) {}

  private fail(what: string): never {
    throw new RingkvError('BAD_REQUEST', `malformed internal message: ${what}`);
  }

  /**
   * Exactly what Writer.uint writes: minimal LEB128, at most 2^53 - 1. Anything else fails
   * rather than decoding: an 8-byte varint can hold up to 2^56 - 1, which a double would
   * silently round (2^53 + 1 read as 2^53).
   */
  uint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.buf.length) this.fail('truncated varint');
      const b = this.buf[this.pos++] as number;
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (b === 0 && i > 0) this.fail('non-minimal varint');
        // Only an 8-byte varint can pass 2^53 - 1; shorter ones skip the check.
        if (i === 7 && !Number.isSafeInteger(result)) this.fail('varint out of range');
        return result;
      }
      mul *= 0x80;
    }
    return this.fail('varint too long');
  }

  bytes(): Uint8Array {
    const n = this.uint();
    if (this.pos + n > this.buf.length) this.fail('truncated bytes');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  str(): string {
    try {
      return dec.decode(this.bytes());
    } catch (err) {
      if (err instanceof RingkvError) throw err;
      return this.fail('invalid UTF-8');
    }
  }

  done(): boolean {
    return this.pos === this.buf.length;
  }
}
