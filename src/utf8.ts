/**
 * UTF-8 without an allocation per string. TextEncoder.encode() returns a fresh ArrayBuffer
 * whose memory is malloc'd outside V8's heap and later freed by the garbage collector's
 * backing-store sweeper, however short the string; on the request path (keys, routes, node
 * ids, actors) that bookkeeping costs more than the encoding. These measure a string and
 * write it into a buffer the caller already has.
 */

const encoder = new TextEncoder();

/**
 * UTF-8 byte length of `s`, or -1 if it has a lone surrogate (such a string would not
 * survive a UTF-8 round trip). A JS loop: cheaper than encoding just to measure.
 */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c < 0xd800 || c > 0xdfff) n += 3;
    else if (c < 0xdc00 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else return -1;
  }
  return n;
}

/**
 * Write `s` as UTF-8 at `pos`, given its `utf8Length` (not -1); returns the position after
 * it. ASCII (actors, content types, routes and most keys in practice) is copied by a loop,
 * which beats TextEncoder's per-call cost on short strings.
 */
export function writeUtf8(buf: Uint8Array, pos: number, s: string, length: number): number {
  if (length === s.length) {
    for (let i = 0; i < length; i++) buf[pos + i] = s.charCodeAt(i);
  } else {
    encoder.encodeInto(s, buf.subarray(pos, pos + length));
  }
  return pos + length;
}
