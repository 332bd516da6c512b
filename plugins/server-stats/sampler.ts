import os from 'node:os';
import { statfs } from 'node:fs/promises';
import type { Sample } from './schema.ts';
import { cpuPercentBetween, readCpuTimes, readMemInfo, readMounts, readNetBytes, type CpuTimes, type MemInfo } from './procfs.ts';

const VIRTUAL_FS = /^(tmpfs|devtmpfs|overlay|squashfs|proc|sysfs|cgroup2?|nsfs|fuse\..*|autofs|ramfs)$/i;
/** Not statted on the /proc path: like `df -l` (what systeminformation runs), a dead network mount must not hang the sampler. */
const REMOTE_FS = /^(nfs4?|cifs|smb3|smbfs|ceph|glusterfs|9p|afs|lustre|gpfs)$/i;

const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;
const pct = (part: number, whole: number) => (whole > 0 ? Math.min(100, Math.max(0, round((part / whole) * 100))) : 0);

interface FsEntry {
  fs: string;
  type: string;
  mount: string;
  size: number;
  used: number;
  available?: number;
}

/**
 * systeminformation is the fallback where there is no /proc; loaded on first use only, because importing
 * it costs an idle agent a few MB of heap for code a Linux node never runs (docs/benchmarks.md, agent-footprint).
 */
const systemInformation = async () => (await import('systeminformation')).default;

const linux = process.platform === 'linux';

/** Every mount in /proc/mounts that can hold user data, sized with statfs(2) as df does. */
async function linuxFsList(): Promise<FsEntry[]> {
  const list: FsEntry[] = [];
  for (const m of await readMounts()) {
    if (VIRTUAL_FS.test(m.type) || REMOTE_FS.test(m.type)) continue;
    try {
      const s = await statfs(m.mount);
      list.push({ fs: m.fs, type: m.type, mount: m.mount, size: s.blocks * s.bsize, used: (s.blocks - s.bfree) * s.bsize, available: s.bavail * s.bsize });
    } catch {
      // unmounted since /proc/mounts was read, or hidden from this user: not part of the total
    }
  }
  return list;
}

async function memInfo(): Promise<MemInfo> {
  if (linux) return readMemInfo();
  const mem = await (await systemInformation()).mem();
  return { total: mem.total, available: mem.available, swapTotal: mem.swaptotal, swapUsed: mem.swapused };
}

/** Samples host stats; keeps the last disk reading and network counters between calls. */
export class Sampler {
  private disk: Sample['disk'] = null;
  private lastNet: { ts: number; rx: number; tx: number } | null = null;
  private lastCpu: CpuTimes | null = null;

  /** cpu percent since the previous sample and non-loopback byte counters; /proc directly on Linux. */
  private async cpuAndNet(): Promise<{ cpu: number; rx: number; tx: number }> {
    if (linux) {
      const [times, net] = await Promise.all([readCpuTimes(), readNetBytes()]);
      const cpu = cpuPercentBetween(this.lastCpu, times);
      this.lastCpu = times;
      return { cpu, ...net };
    }
    const si = await systemInformation();
    const [load, ifaces] = await Promise.all([si.currentLoad(), si.networkStats('*')]);
    const real = ifaces.filter((i) => i.iface !== 'lo');
    return { cpu: load.currentLoad, rx: real.reduce((a, i) => a + (i.rx_bytes || 0), 0), tx: real.reduce((a, i) => a + (i.tx_bytes || 0), 0) };
  }

  async sampleDisk(): Promise<void> {
    const list: FsEntry[] = linux ? await linuxFsList() : await (await systemInformation()).fsSize();
    // One filesystem can be mounted many times (bind mounts); count each device once.
    const seen = new Set<string>();
    const mounts = list.filter((f) => !VIRTUAL_FS.test(f.type) && f.size > 0 && !seen.has(f.fs) && seen.add(f.fs));
    const total = mounts.reduce((a, f) => a + f.size, 0);
    const used = mounts.reduce((a, f) => a + f.used, 0);
    // Like df: used out of what users can have (used + available), so reserved blocks do not hide a full disk.
    const usable = mounts.reduce((a, f) => a + f.used + (f.available ?? f.size - f.used), 0);
    this.disk = { total, used, percent: pct(used, usable), mounts: mounts.map((f) => ({ mount: f.mount, fs: f.fs, size: f.size, used: f.used, percent: pct(f.used, f.used + (f.available ?? f.size - f.used)) })) };
  }

  async sample(): Promise<Sample> {
    const [{ cpu, rx, tx }, mem] = await Promise.all([this.cpuAndNet(), memInfo()]);
    const now = Date.now();
    let rxPerSec = 0;
    let txPerSec = 0;
    if (this.lastNet && now > this.lastNet.ts) {
      const dt = (now - this.lastNet.ts) / 1000;
      rxPerSec = round(Math.max(0, rx - this.lastNet.rx) / dt);
      txPerSec = round(Math.max(0, tx - this.lastNet.tx) / dt);
    }
    this.lastNet = { ts: now, rx, tx };
    const [l1, l5, l15] = os.loadavg();
    return {
      ts: now,
      cpu: { percent: Math.min(100, Math.max(0, round(cpu))), cores: os.cpus().length },
      // "available" is what free(1) and the kernel count as usable; total - available is what is really taken.
      memory: { total: mem.total, used: mem.total - mem.available, available: mem.available, percent: pct(mem.total - mem.available, mem.total), swapTotal: mem.swapTotal, swapUsed: mem.swapUsed },
      disk: this.disk,
      load: [round(l1), round(l5), round(l15)],
      network: { rxBytes: rx, txBytes: tx, rxPerSec, txPerSec },
      uptime: Math.round(os.uptime()),
    };
  }
}
