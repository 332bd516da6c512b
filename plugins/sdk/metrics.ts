/**
 * A small Prometheus registry: counters and gauges with labels, rendered in text exposition format.
 * Hand-written because the needs are tiny and the output must stay `promtool check metrics` clean.
 */
export type Labels = Record<string, string>;

export interface Counter {
  inc(labels?: Labels, by?: number): void;
}
export interface Gauge {
  set(labels: Labels, value: number): void;
  /** Removes one series, e.g. when a node is deleted. */
  remove(labels: Labels): void;
  /** Removes every series. */
  reset(): void;
}

/** Observations counted into cumulative buckets (`_bucket{le}`, `_sum`, `_count`): latencies, lateness. */
export interface Histogram {
  observe(labels: Labels, value: number): void;
}

/** Seconds from 1 ms to 10 s, for latencies of requests and timers. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface Metrics {
  counter(name: string, help: string): Counter;
  gauge(name: string, help: string): Gauge;
  /** Upper bounds ascending (default LATENCY_BUCKETS); `+Inf` is added. */
  histogram(name: string, help: string, buckets?: number[]): Histogram;
  /** A gauge whose value is read when scraped. */
  gaugeFn(name: string, help: string, read: () => Array<[Labels, number]> | number): void;
  /**
   * A computation shared by the gauges of one scrape: several per-node families read from one pass
   * over thousands of nodes instead of one pass each. Outside a scrape it computes on every call.
   */
  perScrape<T>(compute: () => T): () => T;
}

interface Family {
  type: 'counter' | 'gauge' | 'histogram';
  help: string;
  series: Map<string, { labels: Labels; value: number }>;
  read?: () => Array<[Labels, number]> | number;
  /** Histograms: bounds, and per label set the count in each bucket (not cumulative), sum and count. */
  buckets?: number[];
  hist?: Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** Also the label check: a value that is not a string (a Secret above all) is refused, not shown as text. */
function key(labels: Labels, family: string): string {
  return Object.keys(labels)
    .sort()
    .map((k) => {
      if (typeof labels[k] !== 'string') throw new TypeError(`label "${k}" of ${family} must be a string; a Secret is never a label`);
      return `${k}=${labels[k]}`;
    })
    .join('\u0000');
}

const NEEDS_ESCAPE = /[\\\n"]/;

function escapeLabel(v: string): string {
  // Most values need nothing: testing once is much cheaper than three replaces (a scrape may render
  // 100,000 series: four per node at 30,000 nodes).
  return NEEDS_ESCAPE.test(v) ? v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') : v;
}

/** `{a="1",b="2"}`, names sorted: one text per label set, so it is also the series' identity. */
function labelText(labels: Labels, family: string): string {
  const names = Object.keys(labels);
  if (names.length === 0) return '';
  // Two names (node, node_id: every per-node series) are put in order by hand: sort() allocates a work
  // array, which at 30,000 nodes × 15 families was ~90 MB of garbage per scrape.
  if (names.length === 2) {
    if (names[0] > names[1]) names.reverse();
  } else if (names.length > 2) names.sort();
  let out = '{';
  for (let i = 0; i < names.length; i++) {
    const v = labels[names[i]];
    if (typeof v !== 'string') throw new TypeError(`label "${names[i]}" of ${family} must be a string; a Secret is never a label`);
    out += `${i ? ',' : ''}${names[i]}="${escapeLabel(v)}"`;
  }
  return out + '}';
}

function renderHistogram(name: string, bounds: number[], hist: NonNullable<Family['hist']>): string[] {
  const out: string[] = [];
  for (const h of hist.values()) {
    let cumulative = 0;
    for (let i = 0; i <= bounds.length; i++) {
      cumulative += h.counts[i];
      out.push(`${name}_bucket${labelText({ ...h.labels, le: i < bounds.length ? String(bounds[i]) : '+Inf' }, name)} ${cumulative}`);
    }
    out.push(`${name}_sum${labelText(h.labels, name)} ${formatValue(h.sum)}`);
    out.push(`${name}_count${labelText(h.labels, name)} ${h.count}`);
  }
  return out;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export class MetricsRegistry implements Metrics {
  private readonly families = new Map<string, Family>();
  /** Scrapes started; the one in progress while `rendering` > 0 (renderAsync can overlap another). */
  private scrapes = 0;
  private rendering = 0;

  private family(name: string, help: string, type: Family['type']): Family {
    if (!NAME.test(name)) throw new Error(`invalid metric name "${name}"`);
    let f = this.families.get(name);
    if (!f) {
      f = { type, help, series: new Map() };
      this.families.set(name, f);
    } else if (f.type !== type) {
      throw new Error(`metric "${name}" already registered as ${f.type}`);
    }
    return f;
  }

  counter(name: string, help: string): Counter {
    const full = name.endsWith('_total') ? name : `${name}_total`;
    const f = this.family(full, help, 'counter');
    return {
      inc(labels = {}, by = 1) {
        const k = key(labels, full);
        const s = f.series.get(k);
        if (s) s.value += by;
        else f.series.set(k, { labels, value: by });
      },
    };
  }

  gauge(name: string, help: string): Gauge {
    const f = this.family(name, help, 'gauge');
    return {
      set(labels, value) {
        f.series.set(key(labels, name), { labels, value });
      },
      remove(labels) {
        f.series.delete(key(labels, name));
      },
      reset() {
        f.series.clear();
      },
    };
  }

  gaugeFn(name: string, help: string, read: () => Array<[Labels, number]> | number): void {
    this.family(name, help, 'gauge').read = read;
  }

  histogram(name: string, help: string, buckets: number[] = LATENCY_BUCKETS): Histogram {
    if (!buckets.length || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]))) throw new Error(`histogram "${name}": buckets must be finite and ascending`);
    const f = this.family(name, help, 'histogram');
    f.buckets ??= [...buckets];
    const hist = (f.hist ??= new Map());
    const bounds = f.buckets;
    return {
      observe(labels, value) {
        const k = key(labels, name);
        let h = hist.get(k);
        if (!h) hist.set(k, (h = { labels, counts: new Array(bounds.length + 1).fill(0), sum: 0, count: 0 }));
        let i = 0;
        while (i < bounds.length && value > bounds[i]) i++;
        h.counts[i]++;
        h.sum += value;
        h.count++;
      },
    };
  }

  /** A counter whose cumulative value lives elsewhere (e.g. process CPU time) and is read when scraped. */
  counterFn(name: string, help: string, read: () => Array<[Labels, number]> | number): void {
    this.family(name.endsWith('_total') ? name : `${name}_total`, help, 'counter').read = read;
  }

  perScrape<T>(compute: () => T): () => T {
    let at = -1;
    let value: T;
    return () => {
      if (this.rendering === 0) return compute();
      if (at !== this.scrapes) {
        value = compute();
        at = this.scrapes;
      }
      return value;
    };
  }

  /** Whether a family of that exact name exists (counters by their `_total` name). */
  has(name: string): boolean {
    return this.families.has(name);
  }

  /** Drops a family and its series (a stopped plugin's metrics leave the exposition). */
  remove(name: string): void {
    this.families.delete(name);
  }

  render(): string {
    const out: string[] = [];
    for (const line of this.lines()) out.push(line);
    return out.join('\n') + '\n';
  }

  /**
   * The same text, giving the event loop back every `every` lines: at tens of thousands of nodes the
   * per-node series take long enough to hold up heartbeats (a scrape of 120,000 series took ~1 s).
   * Each family is read at once, so its series stay consistent with each other. `skip`: name
   * prefixes of families to leave out unread (a scraper that takes per-node series from one
   * controller of several spares the others their pass over every node).
   */
  async renderAsync({ every = 2000, skip = [] }: { every?: number; skip?: readonly string[] } = {}): Promise<string> {
    // Each slice is joined as it is done: one join of the whole text at the end was itself a stall.
    const slices: string[] = [];
    let slice: string[] = [];
    for (const line of this.lines(skip)) {
      slice.push(line);
      if (slice.length === every) {
        slices.push(slice.join('\n'));
        slice = [];
        await new Promise((r) => setImmediate(r));
      }
    }
    slices.push(slice.join('\n'));
    return slices.join('\n') + '\n';
  }

  private *lines(skip: readonly string[] = []): Generator<string> {
    this.scrapes++;
    this.rendering++;
    try {
      yield* this.families_(skip);
    } finally {
      this.rendering--;
    }
  }

  /** Families whose name starts with a `skip` prefix are left out without reading them. */
  private *families_(skip: readonly string[]): Generator<string> {
    for (const [name, f] of [...this.families].sort(([a], [b]) => a.localeCompare(b))) {
      if (skip.some((prefix) => name.startsWith(prefix))) continue;
      yield `# HELP ${name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`;
      yield `# TYPE ${name} ${f.type}`;
      if (f.hist) {
        yield* renderHistogram(name, f.buckets!, f.hist);
        continue;
      }
      if (f.read) {
        const r = f.read();
        if (typeof r === 'number') {
          yield `${name} ${formatValue(r)}`;
          continue;
        }
        // A reader may list the same label set twice (two records naming one node); promtool rejects
        // duplicate series. The label text is the identity; the first is shown. Checked as the lines
        // go, so a family of 30,000 series is not one pass before its first line.
        const seen = new Set<string>();
        for (const [labels, value] of r) {
          const text = labelText(labels, name);
          if (seen.has(text)) continue;
          seen.add(text);
          yield `${name}${text} ${formatValue(value)}`;
        }
        continue;
      }
      for (const s of f.series.values()) yield `${name}${labelText(s.labels, name)} ${formatValue(s.value)}`;
    }
  }
}
