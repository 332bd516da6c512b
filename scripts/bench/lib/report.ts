import { availableParallelism, loadavg } from 'node:os';

/** Shared by the benchmarks: calls run c in flight, a plain-text table and the closing `name: figure` line. */

export const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;
export const ms = (v: number) => `${v.toFixed(v < 10 ? 2 : 1)} ms`;
export const pct = (v: number) => `${v.toFixed(v < 1 ? 2 : 1)} %`;

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function printTable(title: string, rows: Array<Array<string | number>>, header: string[] = ['metric', 'value']): void {
  const cells = [header, ...rows].map((r) => r.map(String));
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  process.stdout.write(`\n${title}\n${line(cells[0])}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${cells.slice(1).map(line).join('\n')}\n`);
}

export function progress(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** The last line of every benchmark, for humans and scripts alike; the machine's load goes just above it. */
export function figure(name: string, text: string): void {
  // Figures from a shared machine are only comparable with the load they were taken under.
  process.stdout.write(`\nmachine: ${availableParallelism()} cores, load average ${loadavg().map((l) => l.toFixed(1)).join(' / ')} (1 / 5 / 15 min) at the end of the run\n`);
  process.stdout.write(`\n${name}: ${text}\n`);
}

/** Runs n calls of op with c in flight: each call's latency in ms (by call number) and the wall time in s. */
export async function inFlight(n: number, c: number, op: (i: number) => Promise<unknown>): Promise<{ lat: number[]; seconds: number }> {
  const lat = new Array<number>(n);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < n) {
        const i = next++;
        const s = performance.now();
        await op(i);
        lat[i] = performance.now() - s;
      }
    }),
  );
  return { lat, seconds: (performance.now() - t0) / 1000 };
}
