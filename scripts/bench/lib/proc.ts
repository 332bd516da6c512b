import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { setPriority } from 'node:os';

/** Clock ticks per second for /proc/<pid>/stat times (100 on every Linux we run on, asked anyway). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcReading {
  ts: number;
  /** utime + stime, plus cutime + cstime of reaped children (the df or shell a sampler spawns is its cost too), in seconds. */
  cpuSeconds: number;
  rssBytes: number;
}

/** Reads CPU time and resident memory of a process from /proc, the same numbers top and ps show. */
export function readProc(pid: number): ProcReading {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may hold spaces and parentheses; fields are counted after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? 0);
  return { ts: performance.now(), cpuSeconds: ticks / CLK_TCK, rssBytes: kb * 1024 };
}

export interface Usage {
  /** Percent of one core over the window. */
  cpuPercent: number;
  rssAvg: number;
  rssMax: number;
  rssLast: number;
  seconds: number;
}

/** Samples one process every `everyMs` between start() and stop(): CPU as utime+stime delta over wall time. */
export class ProcMonitor {
  private first: ProcReading | undefined;
  private last: ProcReading | undefined;
  private rss: number[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly pid: number,
    private readonly everyMs = 1000,
  ) {}

  start(): this {
    this.first = this.last = readProc(this.pid);
    this.rss = [this.first.rssBytes];
    this.timer = setInterval(() => this.sample(), this.everyMs);
    return this;
  }

  private sample(): void {
    try {
      this.last = readProc(this.pid);
      this.rss.push(this.last.rssBytes);
    } catch {
      clearInterval(this.timer);
    }
  }

  stop(): Usage {
    clearInterval(this.timer);
    this.sample();
    const a = this.first!;
    const b = this.last!;
    const seconds = (b.ts - a.ts) / 1000;
    return {
      cpuPercent: seconds > 0 ? ((b.cpuSeconds - a.cpuSeconds) / seconds) * 100 : 0,
      rssAvg: this.rss.reduce((x, y) => x + y, 0) / this.rss.length,
      rssMax: Math.max(...this.rss),
      rssLast: b.rssBytes,
      seconds,
    };
  }
}

/** Measures several processes over the same window. */
export async function measure(pids: Record<string, number>, seconds: number, everyMs = 1000): Promise<Record<string, Usage>> {
  const mons = Object.entries(pids).map(([k, pid]) => [k, new ProcMonitor(pid, everyMs).start()] as const);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return Object.fromEntries(mons.map(([k, m]) => [k, m.stop()]));
}

/**
 * On a machine shared with other work, the processes under test run at a higher priority (`nice`
 * lowers their nice value by that much; 0 leaves it), so figures describe Outpost rather than its
 * neighbours' load. Benchmarks apply it equally to Outpost and to its peer. Every thread gets it:
 * on Linux a pid's priority is its main thread's only, and V8's GC helpers left at nice 0 made the
 * main thread wait for a preempted helper in the middle of a parallel scavenge.
 */
export function raisePriority(pid: number | undefined, nice: number): void {
  if (!pid || !nice) return;
  let tids: number[];
  try {
    tids = readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    tids = [pid];
  }
  for (const tid of tids) {
    try {
      setPriority(tid, -Math.min(19, nice));
    } catch (err) {
      // A thread may have ended since the listing; the main thread failing is worth saying.
      if (tid === pid) process.stderr.write(`cannot raise the priority of ${pid}: ${(err as Error).message}\n`);
    }
  }
}

export function parentPid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Pids whose parent is `pid` (PostgreSQL's backends under its postmaster). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (parentPid(Number(e)) === pid) out.push(Number(e));
    } catch {
      // ended since the listing
    }
  }
  return out;
}

/**
 * CPU seconds of a process and its live children. A child reaped in between moves into the parent's
 * cutime/cstime (readProc counts those), and one born in between used all its CPU in between: the
 * difference of two readings is the tree's CPU over that time.
 */
export function treeCpuSeconds(pid: number): number {
  let total = readProc(pid).cpuSeconds;
  for (const c of childPids(pid)) {
    try {
      total += readProc(c).cpuSeconds;
    } catch {
      // ended since the listing; its time is now in the parent's
    }
  }
  return total;
}
