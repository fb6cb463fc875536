/**
 * Canonical JSON straight from JSON text (pure), for jsonSetUnion. It reads the text rather
 * than JSON.parse's values because JSON.parse rounds every number to a double: two different
 * big integers (64-bit ids, say) would become one element of the set, and both would lose
 * their digits. Here a number keeps its exact decimal value.
 *
 * Canonical form: object keys sorted (UTF-16 code units, as `Object.keys().sort()`), the last
 * of duplicate keys wins (as in JSON.parse), strings as `JSON.stringify` writes them, no
 * whitespace. A number a double holds exactly is written as `JSON.stringify` writes it (so the
 * text is what canonicalJson gives for such values); any other number is written from its
 * exact decimal value, so equal numbers always have equal text.
 */

const WHITESPACE = /[ \t\n\r]*/y;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
/** Exact forms longer than this many zeros use an exponent instead of spelling them out. */
const MAX_SPELLED_ZEROS = 100;

/**
 * The canonical text of each element of `text`, which must be JSON holding an array (the
 * caller has checked it with JSON.parse, so the reader here need not report errors).
 */
export function canonicalArrayElements(text: string): string[] {
  const reader = new Reader(text);
  reader.skipWhitespace();
  return reader.arrayElements();
}

class Reader {
  private i = 0;

  constructor(private readonly s: string) {}

  skipWhitespace(): void {
    WHITESPACE.lastIndex = this.i;
    WHITESPACE.exec(this.s);
    this.i = WHITESPACE.lastIndex;
  }

  /** At `[`: the canonical text of each element, leaving the reader after `]`. */
  arrayElements(): string[] {
    const out: string[] = [];
    this.i++; // [
    this.skipWhitespace();
    if (this.s[this.i] === ']') {
      this.i++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.skipWhitespace();
      if (this.s[this.i++] === ']') return out; // otherwise it was ','
    }
  }

  private value(): string {
    this.skipWhitespace();
    const c = this.s[this.i];
    if (c === '[') return `[${this.arrayElements().join(',')}]`;
    if (c === '{') return this.object();
    if (c === '"') return JSON.stringify(this.string());
    for (const literal of ['true', 'false', 'null']) {
      if (this.s.startsWith(literal, this.i)) {
        this.i += literal.length;
        return literal;
      }
    }
    NUMBER.lastIndex = this.i;
    const token = NUMBER.exec(this.s)?.[0] ?? '';
    this.i += token.length;
    return canonicalNumber(token);
  }

  private object(): string {
    const members = new Map<string, string>();
    this.i++; // {
    this.skipWhitespace();
    if (this.s[this.i] === '}') {
      this.i++;
      return '{}';
    }
    for (;;) {
      this.skipWhitespace();
      const key = this.string();
      this.skipWhitespace();
      this.i++; // :
      members.set(key, this.value());
      this.skipWhitespace();
      if (this.s[this.i++] === '}') break; // otherwise it was ','
    }
    const keys = [...members.keys()].sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${members.get(k)}`).join(',')}}`;
  }

  /** At `"`: the string's value, leaving the reader after the closing quote. */
  private string(): string {
    const start = this.i++;
    while (this.s[this.i] !== '"') this.i += this.s[this.i] === '\\' ? 2 : 1;
    this.i++;
    return JSON.parse(this.s.slice(start, this.i)) as string;
  }
}

/** A JSON number token in canonical form (see the file comment). */
function canonicalNumber(token: string): string {
  const exact = Decimal.parse(token);
  const n = Number(token);
  if (Number.isFinite(n) && Decimal.parse(String(n)).equals(exact)) return JSON.stringify(n);
  return exact.toJson();
}

/** A decimal number as sign, significant digits (no leading or trailing zeros) and exponent. */
class Decimal {
  private constructor(
    readonly negative: boolean,
    readonly digits: string,
    readonly exponent: bigint,
  ) {}

  /** From a JSON number token, or from what String(number) gives for a finite number. */
  static parse(text: string): Decimal {
    const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
    if (!m) throw new Error(`not a number: ${text}`);
    const [, sign = '', whole = '', fraction = '', exp = '0'] = m;
    const all = `${whole}${fraction}`.replace(/^0+/, '');
    if (all === '') return new Decimal(false, '0', 0n);
    const digits = all.replace(/0+$/, '');
    const exponent = BigInt(exp) - BigInt(fraction.length) + BigInt(all.length - digits.length);
    return new Decimal(sign === '-', digits, exponent);
  }

  equals(other: Decimal): boolean {
    return this.negative === other.negative && this.digits === other.digits && this.exponent === other.exponent;
  }

  /** Valid JSON for this exact value; a function of the value alone. */
  toJson(): string {
    const sign = this.negative ? '-' : '';
    const { digits, exponent } = this;
    if (exponent >= 0n && exponent <= BigInt(MAX_SPELLED_ZEROS)) return `${sign}${digits}${'0'.repeat(Number(exponent))}`;
    if (exponent < 0n) {
      const point = digits.length + Number(exponent);
      if (point > 0) return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
      if (-point <= MAX_SPELLED_ZEROS) return `${sign}0.${'0'.repeat(-point)}${digits}`;
    }
    return `${sign}${digits}e${exponent}`;
  }
}
