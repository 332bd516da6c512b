/**
 * A strict parser for the Prometheus text exposition format (0.0.4), for tests. It throws on
 * anything `promtool check metrics` rejects or lints: malformed lines, bad names or label syntax,
 * unparsable values, duplicate series, HELP/TYPE out of place, missing HELP, counters without _total.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help?: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
// promtool's lint: units should be base units (seconds, bytes), not these.
const NON_BASE_UNITS = ['milliseconds', 'microseconds', 'nanoseconds', 'minutes', 'hours', 'days', 'kilobytes', 'megabytes', 'gigabytes', 'terabytes', 'kilobits', 'megabits'];

function fail(lineNo: number, line: string, why: string): never {
  throw new Error(`line ${lineNo}: ${why}: ${JSON.stringify(line)}`);
}

function parseValue(text: string): number | undefined {
  if (text === 'NaN') return NaN;
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return undefined;
  return Number(text);
}

/** Parses `{a="x",b="y"}` starting at text[0] === '{'; returns labels and the rest after '}'. */
function parseLabels(text: string, lineNo: number, line: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1;
  const skipSpace = () => {
    while (text[i] === ' ' || text[i] === '\t') i++;
  };
  skipSpace();
  while (text[i] !== '}') {
    const m = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(text.slice(i));
    if (!m) fail(lineNo, line, 'bad label name');
    const name = m[0];
    if (!LABEL_NAME.test(name) || name.startsWith('__')) fail(lineNo, line, `invalid label name "${name}"`);
    if (name in labels) fail(lineNo, line, `duplicate label "${name}"`);
    i += name.length;
    skipSpace();
    if (text[i] !== '=') fail(lineNo, line, `expected "=" after label ${name}`);
    i++;
    skipSpace();
    if (text[i] !== '"') fail(lineNo, line, `label ${name} value must be quoted`);
    i++;
    let value = '';
    for (;;) {
      const c = text[i];
      if (c === undefined) fail(lineNo, line, `unterminated value of label ${name}`);
      if (c === '"') break;
      if (c === '\n') fail(lineNo, line, 'raw newline in label value');
      if (c === '\\') {
        const n = text[i + 1];
        if (n === '\\') value += '\\';
        else if (n === '"') value += '"';
        else if (n === 'n') value += '\n';
        else fail(lineNo, line, `invalid escape "\\${n}" in label ${name}`);
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    i++;
    labels[name] = value;
    skipSpace();
    if (text[i] === ',') {
      i++;
      skipSpace();
      continue;
    }
    if (text[i] !== '}') fail(lineNo, line, 'expected "," or "}" in labels');
  }
  return { labels, rest: text.slice(i + 1) };
}

/** The family a sample name belongs to (histogram and summary samples carry suffixes). */
function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  const direct = families.get(name);
  if (direct) return direct;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix)) {
      const f = families.get(name.slice(0, -suffix.length));
      if (f && (f.type === 'histogram' || f.type === 'summary')) return f;
    }
  }
  return undefined;
}

export function parsePrometheus(text: string): Map<string, Family> {
  if (text !== '' && !text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const families = new Map<string, Family>();
  const seenSeries = new Set<string>();
  const closed = new Set<string>();
  const typed = new Set<string>();
  let current: Family | undefined;
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((line, idx) => {
    const lineNo = idx + 1;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest = ''] = m;
      if (!METRIC_NAME.test(name)) fail(lineNo, line, `invalid metric name "${name}"`);
      if (closed.has(name)) fail(lineNo, line, `metric ${name} appears in two separate groups`);
      let f = families.get(name);
      if (f && current !== f) fail(lineNo, line, `metric ${name} appears in two separate groups`);
      if (!f) {
        f = { name, type: 'untyped', samples: [] };
        families.set(name, f);
      }
      if (current && current !== f) closed.add(current.name);
      current = f;
      if (kind === 'HELP') {
        if (f.help !== undefined) fail(lineNo, line, `second HELP line for ${name}`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) fail(lineNo, line, 'invalid escape in HELP');
        f.help = rest;
      } else {
        if (f.samples.length) fail(lineNo, line, `TYPE for ${name} after its samples`);
        if (typed.has(name)) fail(lineNo, line, `second TYPE line for ${name}`);
        if (!TYPES.has(rest.trim())) fail(lineNo, line, `unknown type "${rest}"`);
        f.type = rest.trim() as Family['type'];
        typed.add(name);
      }
      return;
    }
    const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nm) fail(lineNo, line, 'sample line must start with a metric name');
    const name = nm[0];
    let rest = line.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, lineNo, line));
    if (!/^[ \t]/.test(rest)) fail(lineNo, line, 'expected whitespace before the value');
    const parts = rest.trim().split(/[ \t]+/);
    if (parts.length < 1 || parts.length > 2) fail(lineNo, line, 'expected a value and an optional timestamp');
    const value = parseValue(parts[0]);
    if (value === undefined) fail(lineNo, line, `invalid value "${parts[0]}"`);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) fail(lineNo, line, `invalid timestamp "${parts[1]}"`);
    let f = familyOf(name, families);
    if (!f) {
      f = { name, type: 'untyped', samples: [] };
      families.set(name, f);
    }
    if (closed.has(f.name)) fail(lineNo, line, `metric ${f.name} appears in two separate groups`);
    if (current && current !== f) closed.add(current.name);
    current = f;
    const id = `${name}{${Object.keys(labels)
      .sort()
      .map((k) => `${k}=${JSON.stringify(labels[k])}`)
      .join(',')}}`;
    if (seenSeries.has(id)) fail(lineNo, line, `duplicate series ${id}`);
    seenSeries.add(id);
    if (f.type === 'counter' && value < 0) fail(lineNo, line, 'counter with a negative value');
    f.samples.push({ name, labels, value });
  });
  for (const f of families.values()) lint(f);
  return families;
}

/** The subset of `promtool check metrics` lint rules that apply to what we export. */
function lint(f: Family): void {
  if (f.help === undefined || f.help.trim() === '') throw new Error(`${f.name}: no help text`);
  if (/[A-Z]/.test(f.name.replace(/^[^_]*:/, ''))) throw new Error(`${f.name}: metric names should be written in snake_case, not camelCase`);
  if (f.type === 'counter' && !f.name.endsWith('_total')) throw new Error(`${f.name}: counter metrics should have "_total" suffix`);
  if (f.type !== 'counter' && f.name.endsWith('_total')) throw new Error(`${f.name}: non-counter metrics should not have "_total" suffix`);
  for (const unit of NON_BASE_UNITS) if (f.name.split('_').includes(unit)) throw new Error(`${f.name}: use base unit instead of "${unit}"`);
}

/** Value of the one series of name whose labels include want; undefined when absent. */
export function valueOf(families: Map<string, Family>, name: string, want: Record<string, string> = {}): number | undefined {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v)) return s.value;
    }
  }
  return undefined;
}
