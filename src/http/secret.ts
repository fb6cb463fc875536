import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Compare two secrets in constant time. Both sides are hashed first so the comparison is
 * always over 32 bytes: neither the content nor the length of the expected secret leaks
 * through timing (timingSafeEqual itself throws on unequal lengths).
 */
export function secretsEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a, 'utf8').digest();
  const db = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(da, db);
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const space = header.indexOf(' ');
  if (space < 0 || header.slice(0, space).toLowerCase() !== 'bearer') return undefined;
  const token = header.slice(space + 1).trim();
  return token === '' ? undefined : token;
}
