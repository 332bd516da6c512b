import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';

/**
 * `--trace 1`: a server runs with `--trace-gc` and an event-loop delay histogram (loop-delay-preload.mjs),
 * and the bench reads both over its measuring window: where a latency tail comes from (GC pauses or
 * other stalls) is then part of the run's own output, for Outpost and its peer alike.
 */
export const TRACE_FLAGS = ['--trace-gc', '--import', pathToFileURL(join(import.meta.dirname, 'loop-delay-preload.mjs')).href];

export interface GcSummary {
  scavenges: number;
  scavengeMs: number;
  scavengeMax: number;
  /** Mark-compacts and mark-sweeps: the old-space collections. */
  fullGcs: number;
  fullMs: number;
  fullMax: number;
}

export interface LoopDelay {
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export interface TraceWindow {
  gc: GcSummary;
  loop: LoopDelay;
}

// `[pid:0x…]   1234 ms: Scavenge 10.2 (12.3) -> 9.8 (13.3) MB, 1.23 / 0.00 ms  (…)`: the first figure is the pause.
const GC_LINE = /ms: (Scavenge|Mark-Compact|Mark-Sweep|Minor Mark-Compact|Minor Mark-Sweep)[^,]*, ([\d.]+) \/ [\d.]+ ms/;

export function gcSummary(text: string): GcSummary {
  const s: GcSummary = { scavenges: 0, scavengeMs: 0, scavengeMax: 0, fullGcs: 0, fullMs: 0, fullMax: 0 };
  for (const line of text.split('\n')) {
    const m = GC_LINE.exec(line);
    if (!m) continue;
    const pause = Number(m[2]);
    if (m[1].startsWith('Mark')) {
      s.fullGcs++;
      s.fullMs += pause;
      s.fullMax = Math.max(s.fullMax, pause);
    } else {
      s.scavenges++;
      s.scavengeMs += pause;
      s.scavengeMax = Math.max(s.scavengeMax, pause);
    }
  }
  return s;
}

/** Where loop-delay-preload.mjs in process pid serves its histogram. */
const loopDelaySocket = (pid: number) => join(tmpdir(), `outpost-loop-delay-${pid}.sock`);

/** The traced server's loop-delay histogram since the previous read, which starts it over. */
function readLoopDelay(pid: number): Promise<LoopDelay> {
  return new Promise((resolve, reject) => {
    let text = '';
    const c = connect(loopDelaySocket(pid));
    c.on('data', (d: Buffer) => (text += d.toString()));
    c.on('end', () => resolve(JSON.parse(text) as LoopDelay));
    c.on('error', (err) => reject(new Error(`server ${pid} serves no loop-delay histogram (started with TRACE_FLAGS?): ${err.message}`)));
  });
}

/** Starts a window on a traced server; end() reads its GC pauses and loop delay over the window. */
export async function traceWindow(child: ChildProcess, output: () => string): Promise<{ end(): Promise<TraceWindow> }> {
  await readLoopDelay(child.pid!);
  const from = output().length;
  return {
    async end() {
      const loop = await readLoopDelay(child.pid!);
      return { gc: gcSummary(output().slice(from)), loop };
    },
  };
}

/** Removes the socket of a traced server that was killed (a clean exit removes its own). */
export function forgetTraced(pid: number | undefined): void {
  if (pid) rmSync(loopDelaySocket(pid), { force: true });
}

export function describeGc(g: GcSummary): string {
  return `${g.scavenges} scavenges (${g.scavengeMs.toFixed(0)} ms, max ${g.scavengeMax.toFixed(1)}), ${g.fullGcs} full (${g.fullMs.toFixed(0)} ms, max ${g.fullMax.toFixed(1)})`;
}

export function describeLoop(l: LoopDelay): string {
  return `${l.p50.toFixed(1)} / ${l.p99.toFixed(1)} / ${l.p999.toFixed(1)} / ${l.max.toFixed(1)} ms`;
}

/**
 * Probes slower than limitMs grouped by send time (a gap of over gapMs starts a new burst): many slow
 * probes in few bursts point at server stalls; slow probes spread evenly point at per-message cost.
 */
export function slowBursts(lat: { rtts: number[]; sentAt: number[] }, limitMs = 20, gapMs = 1000): Array<{ at: number; count: number; max: number }> {
  const slow = lat.rtts.map((rtt, i) => ({ rtt, at: lat.sentAt[i] })).filter((s) => s.rtt > limitMs).sort((a, b) => a.at - b.at);
  const bursts: Array<{ at: number; count: number; max: number; last: number }> = [];
  for (const s of slow) {
    const b = bursts.at(-1);
    if (b && s.at - b.last <= gapMs) {
      b.count++;
      b.max = Math.max(b.max, s.rtt);
      b.last = s.at;
    } else bursts.push({ at: s.at, count: 1, max: s.rtt, last: s.at });
  }
  return bursts.map(({ at, count, max }) => ({ at, count, max }));
}

export function describeSlow(lat: { rtts: number[]; sentAt: number[] }): string {
  const bursts = slowBursts(lat);
  const n = bursts.reduce((a, b) => a + b.count, 0);
  const t0 = Math.min(...lat.sentAt);
  const biggest = [...bursts].sort((a, b) => b.count - a.count).slice(0, 3);
  return `${n} in ${bursts.length}${biggest.length ? `; largest: ${biggest.map((b) => `${b.count} at +${((b.at - t0) / 1000).toFixed(1)} s (max ${b.max.toFixed(0)} ms)`).join(', ')}` : ''}`;
}
