/** HTTP dates for response headers. */

/** Slots of the Last-Modified cache (a power of two). */
const HTTP_DATE_SLOTS = 256;
/** The largest time a Date can hold, in ms either side of 1970. */
const MAX_TIME_MS = 8.64e15;
const httpDateSeconds = new Float64Array(HTTP_DATE_SLOTS).fill(Number.NaN);
const httpDateTexts: string[] = new Array<string>(HTTP_DATE_SLOTS).fill('');

/**
 * `new Date(ms).toUTCString()`, the HTTP date of a Last-Modified header (whole seconds), from a
 * small direct-mapped cache by second: formatting took ~670 ns per GET, and the versions read
 * in any one stretch of time were mostly written within the same few seconds.
 */
export function httpDate(ms: number): string {
  // As Date does: fractions of a millisecond are dropped toward zero (-0.5 is 1970-01-01
  // 00:00:00, not the second before), and times beyond ±8.64e15 ms are invalid (not cached:
  // the last valid millisecond shares its second with invalid ones).
  const t = Math.trunc(ms);
  if (!(Math.abs(t) <= MAX_TIME_MS)) return new Date(ms).toUTCString();
  const second = Math.floor(t / 1000);
  const slot = second & (HTTP_DATE_SLOTS - 1);
  if (httpDateSeconds[slot] === second) return httpDateTexts[slot] as string;
  const text = new Date(ms).toUTCString();
  httpDateSeconds[slot] = second;
  httpDateTexts[slot] = text;
  return text;
}
