import { readFile } from 'node:fs/promises';
import net from 'node:net';
import type { PortRange } from './schema.ts';

export class PortsExhaustedError extends Error {
  constructor(range: PortRange, wanted: number, free: number) {
    super(`port range ${range.from}-${range.to} exhausted: ${wanted} port${wanted === 1 ? '' : 's'} needed, ${free} free`);
  }
}

/** The lowest `count` ports of the range not in `taken`; throws naming the range when too few are left. */
export function pickPorts(range: PortRange, count: number, taken: ReadonlySet<number>): number[] {
  const out: number[] = [];
  for (let p = range.from; p <= range.to && out.length < count; p++) if (!taken.has(p)) out.push(p);
  if (out.length < count) throw new PortsExhaustedError(range, count, out.length);
  return out;
}

export interface AllocatorDeps {
  /** Ports already taken by others: container bindings (even stopped), installed apps, host sockets. */
  taken(): Promise<Set<number>>;
  /** Last check on a candidate, e.g. trying to bind it; false skips the port. */
  canBind?(port: number): Promise<boolean>;
}

interface Request {
  owner: string;
  count: number;
  resolve(ports: number[]): void;
  reject(err: unknown): void;
}

/**
 * Hands out host ports. Allocations run one at a time so two installs in flight never get the same
 * port, and each install's ports stay reserved until it releases them (installed or rolled back).
 * Requests that queue up while a scan runs share the next scan: 20 installs asked for at once cost
 * two looks at the Engine, not twenty.
 */
export class PortAllocator {
  private readonly reservations = new Map<string, number[]>();
  private readonly queue: Request[] = [];
  private draining = false;

  constructor(
    private range: PortRange,
    private readonly deps: AllocatorDeps,
  ) {}

  setRange(range: PortRange): void {
    this.range = range;
  }

  reserved(): Set<number> {
    return new Set([...this.reservations.values()].flat());
  }

  reservationOf(owner: string): number[] | undefined {
    return this.reservations.get(owner);
  }

  allocate(owner: string, count: number): Promise<number[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ owner, count, resolve, reject });
      void this.drain();
    });
  }

  release(owner: string): void {
    this.reservations.delete(owner);
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0);
        let taken: Set<number>;
        try {
          taken = await this.deps.taken();
        } catch (err) {
          for (const r of batch) r.reject(err);
          continue;
        }
        for (const r of batch) {
          try {
            r.resolve(await this.allocateFrom(r.owner, r.count, taken));
          } catch (err) {
            r.reject(err);
          }
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private async allocateFrom(owner: string, count: number, scanned: ReadonlySet<number>): Promise<number[]> {
    if (this.reservations.has(owner)) throw new Error(`${owner} already holds reserved ports`);
    const taken = new Set([...scanned, ...this.reserved()]);
    const chosen: number[] = [];
    // Re-pick past ports that fail the bind check, so a socket opened since the scan is still avoided.
    while (chosen.length < count) {
      const candidates = pickPorts(this.range, count - chosen.length, new Set([...taken, ...chosen]));
      for (const p of candidates) {
        if (!this.deps.canBind || (await this.deps.canBind(p))) chosen.push(p);
        else taken.add(p);
      }
    }
    chosen.sort((a, b) => a - b);
    this.reservations.set(owner, chosen);
    return chosen;
  }
}

/** Local ports some socket listens on (tcp LISTEN, bound udp), from /proc/net; empty where /proc is missing. */
export async function listeningPorts(procNet = '/proc/net'): Promise<Set<number>> {
  const out = new Set<number>();
  for (const [file, state] of [['tcp', '0A'], ['tcp6', '0A'], ['udp', '07'], ['udp6', '07']] as const) {
    let text: string;
    try {
      text = await readFile(`${procNet}/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4 || cols[3] !== state) continue;
      const port = parseInt(cols[1].split(':').pop()!, 16);
      if (Number.isFinite(port)) out.add(port);
    }
  }
  return out;
}

/** True when a TCP listener can be opened on the port right now (closed again at once). */
export function canBindTcp(port: number, host = '0.0.0.0'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}
