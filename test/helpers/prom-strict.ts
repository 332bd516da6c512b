/**
 * A strict reader of Prometheus text exposition (0.0.4) for tests: it throws, naming the line, on
 * anything `promtool check metrics` would reject (syntax, families split or typed twice, duplicate
 * series) and on what its linter complains about (no HELP, counters without `_total`, gauges with it,
 * non-base or abbreviated units, type names or camelCase or colons in names, reserved suffixes).
 */

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromFamily {
  name: string;
  type: string;
  help: string | undefined;
  samples: PromSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const NON_BASE = ['minutes', 'hours', 'days', 'weeks', 'kelvins', 'fahrenheit', 'rankine', 'inches', 'yards', 'miles', 'bits', 'calories', 'pounds', 'ounces'];
const BASE = ['amperes', 'bytes', 'celsius', 'grams', 'joules', 'kelvin', 'meters', 'metres', 'seconds', 'volts'];
const PREFIXES = ['pico', 'nano', 'micro', 'milli', 'centi', 'deci', 'deca', 'hecto', 'kilo', 'kibi', 'mega', 'mibi', 'giga', 'gibi', 'tera', 'tebi', 'peta', 'pebi'];
const ABBREVIATIONS = ['s', 'ms', 'us', 'ns', 'sec', 'b', 'kb', 'mb', 'gb', 'tb', 'pb', 'm', 'h', 'd'];
const TYPE_WORDS = ['counter', 'gauge', 'histogram', 'summary', 'gaugehistogram'];

class PromError extends Error {}

function fail(n: number, line: string, why: string): never {
  throw new PromError(`line ${n}: ${why}: ${JSON.stringify(line.slice(0, 200))}`);
}

function parseNumber(s: string): number | undefined {
  if (s === 'NaN') return NaN;
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return undefined;
  return Number(s);
}

/** Reads `{a="x",b="y"}` starting at text[i] === '{'; returns the labels and the index after '}'. */
function parseLabels(text: string, i: number, n: number, line: string): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  i += 1;
  for (;;) {
    if (text[i] === '}') return [labels, i + 1];
    const m = /^([^=\s{}",]+)="/.exec(text.slice(i));
    if (!m) fail(n, line, 'malformed label');
    const key = m[1];
    if (!LABEL.test(key)) fail(n, line, `invalid label name ${key}`);
    if (key.startsWith('__')) fail(n, line, `label name ${key} is reserved`);
    if (key in labels) fail(n, line, `label ${key} given twice`);
    i += m[0].length;
    let value = '';
    for (;;) {
      const c = text[i];
      if (c === undefined) fail(n, line, 'unterminated label value');
      if (c === '"') break;
      if (c === '\\') {
        const e = text[i + 1];
        if (e === 'n') value += '\n';
        else if (e === '\\' || e === '"') value += e;
        else fail(n, line, `invalid escape \\${e ?? ''} in label value`);
        i += 2;
      } else {
        value += c;
        i += 1;
      }
    }
    labels[key] = value;
    i += 1;
    if (text[i] === ',') i += 1;
    else if (text[i] !== '}') fail(n, line, 'expected , or } after a label value');
  }
}

function lintName(name: string, type: string): string | undefined {
  const parts = name.toLowerCase().split('_');
  if (type === 'counter' && !name.endsWith('_total')) return 'counter metrics should have "_total" suffix';
  if (type !== 'counter' && type !== 'untyped' && name.endsWith('_total')) return 'non-counter metrics should not have "_total" suffix';
  if (name.includes(':')) return 'metric names should not contain ":"';
  if (/[a-z][A-Z]/.test(name)) return "metric names should be written in 'snake_case' not 'camelCase'";
  for (const p of parts) {
    if (NON_BASE.includes(p)) return `use a base unit instead of "${p}"`;
    const prefixed = PREFIXES.find((x) => p.startsWith(x) && BASE.concat(NON_BASE).includes(p.slice(x.length)));
    if (prefixed && !BASE.includes(p)) return `use a base unit instead of "${p}"`;
  }
  if (ABBREVIATIONS.some((a) => parts.slice(1).includes(a))) return 'metric names should not contain abbreviated units';
  if (TYPE_WORDS.some((t) => parts.slice(1).includes(t))) return 'metric name should not include its type';
  if (type !== 'histogram' && type !== 'summary' && /_(bucket|count|sum)$/.test(name)) return `non-histogram and non-summary metrics should not have a _bucket, _count or _sum suffix`;
  return undefined;
}

/** Parses and lints; throws on the first problem. */
export function parsePromStrict(text: string): Map<string, PromFamily> {
  if (text !== '' && !text.endsWith('\n')) throw new PromError('exposition must end with a newline');
  const families = new Map<string, PromFamily>();
  const closed = new Set<string>();
  const seen = new Set<string>();
  let current: PromFamily | undefined;
  const open = (name: string, n: number, line: string): PromFamily => {
    if (current?.name === name) return current;
    if (closed.has(name) || families.has(name)) fail(n, line, `metric family ${name} appears in two places`);
    if (current) closed.add(current.name);
    current = { name, type: 'untyped', help: undefined, samples: [] };
    families.set(name, current);
    return current;
  };
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((line, idx) => {
    const n = idx + 1;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!m) return; // plain comment
      const [, kind, name, rest = ''] = m;
      if (!NAME.test(name)) fail(n, line, `invalid metric name ${name}`);
      const f = open(name, n, line);
      if (kind === 'HELP') {
        if (f.help !== undefined) fail(n, line, `second HELP for ${name}`);
        if (/\\[^n\\]/.test(rest.replace(/\\\\/g, ''))) fail(n, line, 'invalid escape in HELP');
        f.help = rest;
      } else {
        if (f.type !== 'untyped' || f.samples.length) fail(n, line, `TYPE for ${name} must come once, before its samples`);
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest.trim())) fail(n, line, `unknown type ${rest}`);
        f.type = rest.trim();
      }
      return;
    }
    const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nm) fail(n, line, 'a sample must start with a metric name');
    const name = nm[0];
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === '{') [labels, i] = parseLabels(line, i, n, line);
    const tail = line.slice(i);
    const vm = /^ +(\S+)(?: +(-?\d+))? *$/.exec(tail);
    if (!vm) fail(n, line, 'expected " <value> [timestamp]" after the name and labels');
    const value = parseNumber(vm[1]);
    if (value === undefined) fail(n, line, `value ${vm[1]} is not a number`);
    const family = current && (name === current.name || (['histogram', 'summary'].includes(current.type) && /_(bucket|count|sum)$/.test(name) && name.replace(/_(bucket|count|sum)$/, '') === current.name)) ? current : open(name, n, line);
    if (family.type === 'counter' && (Number.isNaN(value) || value < 0)) fail(n, line, 'a counter must be a non-negative number');
    const id = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(id)) fail(n, line, 'duplicate series');
    seen.add(id);
    family.samples.push({ name, labels, value });
  });
  for (const f of families.values()) {
    if (f.help === undefined || f.help.trim() === '') throw new PromError(`${f.name}: no help text`);
    if (f.type === 'untyped') throw new PromError(`${f.name}: no TYPE line`);
    const problem = lintName(f.name, f.type);
    if (problem) throw new PromError(`${f.name}: ${problem}`);
  }
  return families;
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when none matches. */
export function promValue(families: Map<string, PromFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  const f = families.get(name);
  const s = f?.samples.find((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}
