/**
 * A strict-enough reader of the Prometheus text exposition format (version 0.0.4) for tests:
 * every line must be a comment (# HELP / # TYPE / other #), blank, or a sample.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  /** Metric family name -> declared type. */
  readonly types: ReadonlyMap<string, string>;
  readonly samples: readonly Sample[];
  /** Lines that are neither comments, blank, nor well-formed samples. */
  readonly badLines: readonly string[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE_RE = new RegExp(`^(${NAME})(?:\\{(.*)\\})?\\s+(\\S+)(?:\\s+-?\\d+)?$`);
const LABEL_RE = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/y;

function parseLabels(s: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  LABEL_RE.lastIndex = 0;
  let pos = 0;
  while (pos < s.length) {
    LABEL_RE.lastIndex = pos;
    const m = LABEL_RE.exec(s);
    if (!m) return undefined;
    out[m[1] as string] = (m[2] as string).replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    pos = LABEL_RE.lastIndex;
  }
  return out;
}

function parseValue(s: string): number | undefined {
  if (s === '+Inf') return Number.POSITIVE_INFINITY;
  if (s === '-Inf') return Number.NEGATIVE_INFINITY;
  if (s === 'NaN') return Number.NaN;
  const v = Number(s);
  return Number.isNaN(v) ? undefined : v;
}

export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const badLines: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const t = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line);
      if (t) types.set(t[1] as string, t[2] as string);
      else if (line.startsWith('# TYPE')) badLines.push(line);
      continue;
    }
    const m = SAMPLE_RE.exec(line);
    const labels = m ? parseLabels(m[2] ?? '') : undefined;
    const value = m ? parseValue(m[3] as string) : undefined;
    if (!m || !labels || value === undefined) {
      badLines.push(line);
      continue;
    }
    samples.push({ name: m[1] as string, labels, value });
  }
  return { types, samples, badLines };
}

/** The family a sample belongs to (strips histogram/summary suffixes when that family exists). */
export function familyOf(sampleName: string, types: ReadonlyMap<string, string>): string {
  if (types.has(sampleName)) return sampleName;
  for (const suffix of ['_bucket', '_sum', '_count', '_total', '_created']) {
    if (sampleName.endsWith(suffix)) {
      const base = sampleName.slice(0, -suffix.length);
      if (types.has(base)) return base;
    }
  }
  return sampleName;
}
