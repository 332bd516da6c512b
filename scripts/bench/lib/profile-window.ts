import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Reads a server's `--cpu-prof` profile back over the bench's measuring window only (a whole-run
 * profile is mostly enrollment and connect): where the CPU went, and the longest stretches the event
 * loop stayed busy, with what ran in them. A stall is what a latency tail is made of.
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Now on the clock V8 stamps profiles with (CLOCK_MONOTONIC), in microseconds. */
export const monotonicMicros = (): number => Number(process.hrtime.bigint() / 1000n);

const IDLE = new Set(['(idle)']);

function frameName(f: CallFrame): string {
  const file = f.url ? f.url.slice(f.url.lastIndexOf('/') + 1) : '';
  return `${f.functionName || '(anonymous)'}${file ? ` ${file}:${f.lineNumber + 1}` : ''}`;
}

/** The main thread's profile in dir (`CPU.<date>.<time>.<pid>.0.<seq>.cpuprofile`; tsx's loader thread writes its own). */
export function mainThreadProfile(dir: string): string | undefined {
  const f = readdirSync(dir).find((n) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(n));
  return f && join(dir, f);
}

export interface WindowProfile {
  busyPercent: number;
  top: Array<{ frame: string; ms: number }>;
  stalls: Array<{ ms: number; top: string[]; through: string[] }>;
}

/** Self time per frame and busy stretches of at least stallMs between from and to (monotonic µs). */
export function profileWindow(file: string, from: number, to: number, stallMs = 30): WindowProfile {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stackOf = (id: number): string[] => {
    const out: string[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) out.push(frameName(byId.get(cur)!.callFrame));
    return out;
  };
  const self = new Map<string, number>();
  const stalls: WindowProfile['stalls'] = [];
  let busy = 0;
  let total = 0;
  let run: Array<{ id: number; dt: number }> = [];
  const closeRun = () => {
    const ms = run.reduce((a, s) => a + s.dt, 0) / 1000;
    if (ms >= stallMs) stalls.push({ ms, top: topSelf(run.map((s) => [frameName(byId.get(s.id)!.callFrame), s.dt]), 3), through: common(run.map((s) => stackOf(s.id))) });
    run = [];
  };
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i];
    if (t < from || t > to) continue;
    // A sample's delta is the time since the previous one: it belongs to this sample's frame.
    const dt = p.timeDeltas[i];
    const frame = byId.get(p.samples[i])!.callFrame;
    total += dt;
    if (IDLE.has(frame.functionName)) {
      closeRun();
      continue;
    }
    busy += dt;
    run.push({ id: p.samples[i], dt });
    const name = frameName(frame);
    self.set(name, (self.get(name) ?? 0) + dt);
  }
  closeRun();
  stalls.sort((a, b) => b.ms - a.ms);
  return {
    busyPercent: total ? (busy / total) * 100 : 0,
    top: [...self].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([frame, us]) => ({ frame, ms: us / 1000 })),
    stalls: stalls.slice(0, 10),
  };
}

function topSelf(entries: Array<[string, number]>, n: number): string[] {
  const m = new Map<string, number>();
  for (const [k, dt] of entries) m.set(k, (m.get(k) ?? 0) + dt);
  const total = entries.reduce((a, [, dt]) => a + dt, 0);
  return [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, dt]) => `${k} ${((dt / total) * 100).toFixed(0)} %`);
}

/** Frames on the stack of at least half the samples, outermost first: what the stretch ran through. */
function common(stacks: string[][]): string[] {
  const count = new Map<string, number>();
  for (const s of stacks) for (const f of new Set(s)) count.set(f, (count.get(f) ?? 0) + 1);
  const longest = stacks.reduce((a, s) => (s.length > a.length ? s : a), [] as string[]);
  return [...longest].reverse().filter((f) => (count.get(f) ?? 0) >= stacks.length / 2 && !f.startsWith('(root)')).slice(-6);
}

export function printWindowProfile(w: WindowProfile, write: (s: string) => void): void {
  write(`busy ${w.busyPercent.toFixed(1)} % of the window; self time, top frames:\n`);
  for (const t of w.top) write(`  ${t.ms.toFixed(1).padStart(8)} ms  ${t.frame}\n`);
  write(`longest busy stretches (${w.stalls.length} of at least 30 ms):\n`);
  for (const s of w.stalls) write(`  ${s.ms.toFixed(1).padStart(7)} ms  self: ${s.top.join(', ')}\n             through: ${s.through.join(' > ') || '(no common frame)'}\n`);
}
