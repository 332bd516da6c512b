import Docker from 'dockerode';

/** Labels that mark what Outpost created, so cleanup never touches anyone else's containers. */
export const LABEL = {
  managed: 'io.outpost.managed',
  app: 'io.outpost.app',
  service: 'io.outpost.service',
  install: 'io.outpost.install',
} as const;

export interface ContainerState {
  id: string;
  status: string;
  running: boolean;
  exitCode: number;
  restartCount: number;
  startedAt: number;
  health: string | null;
  /** The container's address on its first network (reachable from the host on Linux bridges). */
  ip: string | null;
  labels: Record<string, string>;
}

export interface ContainerSpec {
  name: string;
  image: string;
  command?: string[];
  entrypoint?: string[];
  env: string[];
  user?: string;
  labels: Record<string, string>;
  network: string;
  alias: string;
  /** "8080/tcp" → host port. */
  ports: Record<string, number>;
  bindAddress: string;
  mounts: Array<{ volume: string; path: string }>;
  healthcheck?: { command: string[]; intervalSec: number; retries: number };
}

/** The Engine's HTTP status on a dockerode error, if it carries one. */
const statusOf = (err: unknown) => (typeof err === 'object' && err !== null && 'statusCode' in err ? err.statusCode : undefined);
const isNotFound = (err: unknown) => statusOf(err) === 404;
const isConflict = (err: unknown) => statusOf(err) === 409;

/** Resolves whether an inspect found its object: 404 is "no", other errors propagate. */
async function exists(inspect: Promise<unknown>): Promise<boolean> {
  try {
    await inspect;
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_r, reject) => (t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}

/** Docker's log stream of a non-TTY container interleaves 8-byte frame headers; this strips them. */
export function demuxLogs(buf: Buffer): string {
  let out = '';
  let i = 0;
  while (i + 8 <= buf.length && (buf[i] === 1 || buf[i] === 2 || buf[i] === 0) && buf[i + 1] === 0) {
    const len = buf.readUInt32BE(i + 4);
    out += buf.subarray(i + 8, i + 8 + len).toString('utf8');
    i += 8 + len;
  }
  return i === 0 ? buf.toString('utf8') : out;
}

export interface PullEvent {
  id?: string;
  status?: string;
  progressDetail?: { current?: number; total?: number };
}

/**
 * Percent of an image pull from the Engine's event stream: bytes over all layers seen so far, where
 * a layer that is complete or already present counts whole. Layers appear as the pull goes, so the
 * figure may step back a little when a new one shows up; it never passes 100.
 */
export class PullProgress {
  private readonly layers = new Map<string, { current: number; total: number }>();

  add(e: PullEvent): number {
    if (e.id && e.progressDetail?.total) {
      // Extraction restarts the counter at 0 after the download: keep the larger of the two.
      const prev = this.layers.get(e.id);
      const current = e.progressDetail.current ?? 0;
      this.layers.set(e.id, { total: e.progressDetail.total, current: prev && prev.total === e.progressDetail.total ? Math.max(prev.current, current) : current });
    }
    if (e.id && /complete|already exists/i.test(e.status ?? '')) {
      const l = this.layers.get(e.id);
      if (l) l.current = l.total;
    }
    let total = 0;
    let current = 0;
    for (const l of this.layers.values()) {
      total += l.total;
      current += Math.min(l.current, l.total);
    }
    return total ? Math.floor((current / total) * 100) : 0;
  }
}

/** The Docker Engine operations app-store needs, through dockerode on the local socket. */
export class DockerOps {
  readonly docker: Docker;

  constructor(readonly socketPath: string) {
    this.docker = new Docker({ socketPath });
  }

  async ping(): Promise<void> {
    try {
      await withTimeout(this.docker.ping(), 5000, 'ping');
    } catch (err) {
      throw new Error(`Docker Engine unreachable at ${this.socketPath}: ${(err as Error).message}`);
    }
  }

  /**
   * Host ports any container publishes, stopped ones included: a stopped container gets its ports
   * back when started, so handing them out would break it (its bindings are only in HostConfig).
   */
  async hostPortsInUse(): Promise<Set<number>> {
    const out = new Set<number>();
    const list = await this.docker.listContainers({ all: true });
    await Promise.all(
      list.map(async (c) => {
        for (const p of c.Ports ?? []) if (p.PublicPort) out.add(p.PublicPort);
        if (c.State === 'running') return;
        try {
          const info = await this.docker.getContainer(c.Id).inspect();
          for (const bindings of Object.values(info.HostConfig?.PortBindings ?? {}) as Array<Array<{ HostPort?: string }> | null>) {
            for (const b of bindings ?? []) if (b.HostPort) out.add(Number(b.HostPort));
          }
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }),
    );
    return out;
  }

  hasImage(ref: string): Promise<boolean> {
    return exists(this.docker.getImage(ref).inspect());
  }

  /** Pulls an image, calling onProgress with 0–100 over the bytes of all layers seen so far. */
  async pull(ref: string, onProgress: (percent: number, status: string) => void, timeoutMs: number): Promise<void> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.docker.pull(ref);
    } catch (err) {
      throw new Error(`pull of ${ref} failed: ${(err as Error).message.trim()}`);
    }
    const tally = new PullProgress();
    const done = new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (err: Error | null, events: Array<{ error?: string }>) => {
          const failed = err?.message ?? events?.find((e) => e.error)?.error;
          if (failed) reject(new Error(`pull of ${ref} failed: ${failed}`));
          else resolve();
        },
        (e: PullEvent) => onProgress(tally.add(e), e.status ?? ''),
      );
    });
    try {
      await withTimeout(done, timeoutMs, `pull of ${ref}`);
    } catch (err) {
      if ('destroy' in stream && typeof stream.destroy === 'function') stream.destroy();
      throw err;
    }
  }

  /** Creates the network unless it exists; says whether this call created it. */
  async ensureNetwork(name: string, labels: Record<string, string>): Promise<boolean> {
    const existing = await this.docker.listNetworks({ filters: { name: [name] } });
    if (existing.some((n) => n.Name === name)) return false;
    await this.docker.createNetwork({ Name: name, Driver: 'bridge', CheckDuplicate: true, Labels: labels });
    return true;
  }

  volumeExists(name: string): Promise<boolean> {
    return exists(this.docker.getVolume(name).inspect());
  }

  async createVolume(name: string, labels: Record<string, string>): Promise<void> {
    await this.docker.createVolume({ Name: name, Labels: labels });
  }

  async createContainer(s: ContainerSpec): Promise<void> {
    const exposed: Record<string, object> = {};
    const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
    for (const [key, host] of Object.entries(s.ports)) {
      exposed[key] = {};
      bindings[key] = [{ HostIp: s.bindAddress, HostPort: String(host) }];
    }
    await this.docker.createContainer({
      name: s.name,
      Image: s.image,
      ...(s.command ? { Cmd: s.command } : {}),
      ...(s.entrypoint ? { Entrypoint: s.entrypoint } : {}),
      ...(s.user ? { User: s.user } : {}),
      Env: s.env,
      Labels: s.labels,
      ExposedPorts: exposed,
      ...(s.healthcheck
        ? { Healthcheck: { Test: ['CMD', ...s.healthcheck.command], Interval: s.healthcheck.intervalSec * 1e9, Timeout: 5e9, Retries: s.healthcheck.retries, StartPeriod: 0 } }
        : {}),
      HostConfig: {
        PortBindings: bindings,
        Mounts: s.mounts.map((m) => ({ Type: 'volume' as const, Source: m.volume, Target: m.path })),
        RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 },
        NetworkMode: s.network,
      },
      NetworkingConfig: { EndpointsConfig: { [s.network]: { Aliases: [s.alias] } } },
    });
  }

  async start(name: string): Promise<void> {
    await this.docker.getContainer(name).start();
  }

  async state(name: string): Promise<ContainerState | null> {
    try {
      const i = await this.docker.getContainer(name).inspect();
      return {
        id: i.Id,
        status: i.State.Status,
        running: i.State.Running,
        exitCode: i.State.ExitCode,
        restartCount: i.RestartCount ?? 0,
        startedAt: Date.parse(i.State.StartedAt) || 0,
        health: i.State.Health?.Status ?? null,
        ip: Object.values(i.NetworkSettings?.Networks ?? {}).map((n) => n.IPAddress).find(Boolean) ?? null,
        labels: i.Config.Labels ?? {},
      };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async logsTail(name: string, lines = 5): Promise<string> {
    try {
      const buf = await this.docker.getContainer(name).logs({ stdout: true, stderr: true, tail: lines, follow: false });
      return demuxLogs(Buffer.from(buf)).trim().slice(-500);
    } catch {
      return '';
    }
  }

  /** Names of containers carrying a label value (all states). */
  async containersLabelled(label: string, value: string): Promise<Array<{ name: string; state: string; labels: Record<string, string> }>> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [`${label}=${value}`] } });
    return list.map((c) => ({ name: (c.Names?.[0] ?? c.Id).replace(/^\//, ''), state: c.State, labels: c.Labels ?? {} }));
  }

  /** Stops (giving the app stopTimeoutSec to shut down cleanly) and removes; a missing container is fine. */
  async removeContainer(name: string, stopTimeoutSec: number): Promise<void> {
    const c = this.docker.getContainer(name);
    try {
      await c.stop({ t: stopTimeoutSec });
    } catch (err) {
      if (isNotFound(err)) return;
      // 304: already stopped; anything else still gets the forced remove below.
    }
    try {
      await c.remove({ force: true, v: false });
    } catch (err) {
      if (!isNotFound(err) && !isConflict(err)) throw err;
    }
  }

  async removeNetwork(name: string): Promise<void> {
    try {
      await this.docker.getNetwork(name).remove();
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async removeVolume(name: string): Promise<void> {
    try {
      await this.docker.getVolume(name).remove();
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async volumesLabelled(label: string, value: string): Promise<string[]> {
    const r = await this.docker.listVolumes({ filters: { label: [`${label}=${value}`] } });
    return (r.Volumes ?? []).map((v) => v.Name);
  }
}
