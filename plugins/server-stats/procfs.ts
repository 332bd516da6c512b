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

export interface MemInfo {
  total: number;
  available: number;
  swapTotal: number;
  swapUsed: number;
}

/** Bytes from /proc/meminfo, computed the way systeminformation's mem() does (kB fields × 1024). */
export async function readMemInfo(): Promise<MemInfo> {
  const kb = new Map<string, number>();
  for (const line of (await readFile('/proc/meminfo', 'utf8')).split('\n')) {
    const m = /^(\w+):\s+(\d+)/.exec(line);
    if (m) kb.set(m[1], Number(m[2]) * 1024);
  }
  const get = (k: string) => kb.get(k) ?? 0;
  const total = get('MemTotal');
  // Kernels before 3.14 have no MemAvailable; free + buffers + page cache is what they had instead.
  const available = kb.get('MemAvailable') ?? get('MemFree') + get('Buffers') + get('Cached');
  return { total, available: Math.min(total, available), swapTotal: get('SwapTotal'), swapUsed: Math.max(0, get('SwapTotal') - get('SwapFree')) };
}

/** A mounted filesystem as /proc/mounts lists it; mount points escape blanks as octal (\040). */
export interface MountEntry {
  fs: string;
  mount: string;
  type: string;
}

const unescapeMount = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export async function readMounts(): Promise<MountEntry[]> {
  const out: MountEntry[] = [];
  for (const line of (await readFile('/proc/mounts', 'utf8')).split('\n')) {
    const [fs, mount, type] = line.split(' ');
    if (fs && mount && type) out.push({ fs: unescapeMount(fs), mount: unescapeMount(mount), type });
  }
  return out;
}
