import { readFile } from 'node:fs/promises';

/**
 * Linux counters read straight from /proc. systeminformation's currentLoad() runs a blocking shell
 * pipeline and networkStats('*') spawns dozens of `ip`/`cat` processes per call: on an idle node that
 * was most of the agent's CPU (see docs/benchmarks.md, agent-footprint). One file read each here.
 */

export interface CpuTimes {
  busy: number;
  total: number;
}

/** Aggregate jiffies from the first line of /proc/stat; idle and iowait count as not busy. */
export async function readCpuTimes(): Promise<CpuTimes> {
  const text = await readFile('/proc/stat', 'utf8');
  const line = text.slice(0, text.indexOf('\n'));
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest is already inside user)
  const total = v.slice(0, 8).reduce((a, b) => a + (b || 0), 0);
  const idle = (v[3] || 0) + (v[4] || 0);
  return { busy: total - idle, total };
}

/** Percent busy between two readings (since boot when there is no previous one). */
export function cpuPercentBetween(prev: CpuTimes | null, now: CpuTimes): number {
  const busy = now.busy - (prev?.busy ?? 0);
  const total = now.total - (prev?.total ?? 0);
  return total > 0 ? (busy / total) * 100 : 0;
}

/** Received and sent bytes summed over every interface but loopback, from /proc/net/dev. */
export async function readNetBytes(): Promise<{ rx: number; tx: number }> {
  const lines = (await readFile('/proc/net/dev', 'utf8')).split('\n').slice(2);
  let rx = 0;
  let tx = 0;
  for (const l of lines) {
    const colon = l.indexOf(':');
    if (colon < 0 || l.slice(0, colon).trim() === 'lo') continue;
    const f = l.slice(colon + 1).trim().split(/\s+/).map(Number);
    rx += f[0] || 0;
    tx += f[8] || 0;
  }
  return { rx, tx };
}
