import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Compare two secrets in constant time. Both sides are hashed first so the comparison is
 * always over 32 bytes: neither the content nor the length of the expected secret leaks
 * through timing (timingSafeEqual itself throws on unequal lengths).
 */
export function secretsEqual(a: string, b: string): boolean {
  return secretMatcher(b)(a);
}

/**
 * `secretsEqual(token, expected)` with the expected secret's digest computed once: the
 * internal routes check every node-to-node request, so this saves a hash per request.
 */
export function secretMatcher(expected: string): (token: string) => boolean {
  const de = digest(expected);
  return (token) => timingSafeEqual(digest(token), de);
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const space = header.indexOf(' ');
  if (space < 0 || header.slice(0, space).toLowerCase() !== 'bearer') return undefined;
  const token = header.slice(space + 1).trim();
  return token === '' ? undefined : token;
}
