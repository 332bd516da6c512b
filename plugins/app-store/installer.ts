import net from 'node:net';
import { LABEL, type ContainerState, type DockerOps } from './docker.ts';
import { networkName, renderEnv, servicesOf, volumeName, type Manifest, type Service } from './manifest.ts';
import type { AppSnapshot, NodeSettings } from './schema.ts';

export interface InstallHooks {
  /** Records a step (persisted and reported by the caller). */
  step(step: string, progress: number, info?: string): Promise<void>;
  /** Throttled progress inside a step (pull), not persisted each time. */
  progress(progress: number, info: string): void;
  /** True once the plugin is stopping: the install gives up and rolls back. */
  aborted(): boolean;
}

export interface InstallTimeouts {
  pullMs: number;
  healthMs: number;
  stopSec: number;
}

/** What one install created, so a failure removes exactly that and nothing that was there before. */
interface Created {
  containers: string[];
  network: string | null;
  volumes: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function outpostLabels(app: string, installId: string, service?: string): Record<string, string> {
  return { [LABEL.managed]: 'true', [LABEL.app]: app, [LABEL.install]: installId, ...(service ? { [LABEL.service]: service } : {}) };
}

/**
 * One app install: images, network, volumes, containers, start, health. Throws with the reason after
 * rolling back what it created; resolves once the app is healthy.
 */
export async function runInstall(docker: DockerOps, settings: NodeSettings, m: Manifest, rec: AppSnapshot, secrets: Record<string, string>, hooks: InstallHooks, t: InstallTimeouts): Promise<void> {
  const created: Created = { containers: [], network: null, volumes: [] };
  const check = () => {
    if (hooks.aborted()) throw new Error('install interrupted: the app-store plugin stopped');
  };
  try {
    const services = servicesOf(m);
    const images = [...new Set(services.map((s) => s.spec.image))];
    await hooks.step('image', 2);
    for (const [i, image] of images.entries()) {
      check();
      // Pull progress fills 2–40% of the install, shared between the app's images.
      const base = 2 + (38 * i) / images.length;
      const span = 38 / images.length;
      if (await docker.hasImage(image)) continue;
      await hooks.step('pull', Math.floor(base), `pulling ${image}`);
      await docker.pull(image, (pct, status) => hooks.progress(Math.floor(base + (span * pct) / 100), `pulling ${image}: ${status} ${pct}%`), t.pullMs);
    }
    check();
    await hooks.step('network', 42);
    const network = networkName(m.name);
    if (await docker.ensureNetwork(network, outpostLabels(m.name, rec.installId))) created.network = network;

    check();
    await hooks.step('volumes', 48);
    for (const s of services) {
      for (const v of s.spec.volumes) {
        const name = volumeName(m.name, v.name);
        if (await docker.volumeExists(name)) continue;
        await docker.createVolume(name, outpostLabels(m.name, rec.installId, s.service));
        created.volumes.push(name);
      }
    }

    check();
    await hooks.step('containers', 55);
    for (const s of services) {
      const ports: Record<string, number> = {};
      for (const p of rec.ports.filter((x) => x.service === s.service)) ports[`${p.container}/${p.protocol}`] = p.host;
      const h = s.spec.health;
      await docker.createContainer({
        name: s.container,
        image: s.spec.image,
        command: s.spec.command,
        entrypoint: s.spec.entrypoint,
        user: s.spec.user,
        env: renderEnv(s.spec.env, m.name, secrets),
        labels: outpostLabels(m.name, rec.installId, s.service),
        network,
        alias: s.service === 'main' ? m.name : s.service,
        ports,
        bindAddress: settings.bindAddress,
        mounts: s.spec.volumes.map((v) => ({ volume: volumeName(m.name, v.name), path: v.path })),
        healthcheck: h?.type === 'cmd' ? { command: h.command, intervalSec: h.intervalSec, retries: h.retries } : undefined,
      });
      created.containers.push(s.container);
    }

    // Sidecars (databases) first and healthy before the app starts, so the app finds them ready.
    const sidecars = services.filter((s) => s.service !== 'main');
    const main = services.filter((s) => s.service === 'main');
    for (const [group, progress] of [[sidecars, 65], [main, 80]] as const) {
      if (!group.length) continue;
      check();
      await hooks.step(group === main ? 'start' : 'start-sidecars', progress);
      for (const s of group) await docker.start(s.container);
      await hooks.step(group === main ? 'health' : 'health-sidecars', progress + 5);
      await waitHealthy(docker, settings, rec, group, t.healthMs, check);
    }
  } catch (err) {
    await rollback(docker, m.name, rec.installId, created, t.stopSec);
    throw err;
  }
}

/** Removes what the install created: its containers (by name and by install label), network, new volumes. */
export async function rollback(docker: DockerOps, app: string, installId: string, created: Created, stopSec: number): Promise<void> {
  const labelled = await docker.containersLabelled(LABEL.install, installId).catch(() => []);
  const names = new Set([...created.containers, ...labelled.map((c) => c.name)]);
  for (const name of names) await docker.removeContainer(name, Math.min(stopSec, 2)).catch(() => undefined);
  if (created.network) await docker.removeNetwork(created.network).catch(() => undefined);
  for (const v of created.volumes) await docker.removeVolume(v).catch(() => undefined);
  // An install interrupted by a restart does not know what it created: fall back to the labels.
  if (!created.network) {
    const net = networkName(app);
    const found = await docker.docker.listNetworks({ filters: { label: [`${LABEL.install}=${installId}`] } }).catch(() => []);
    if (found.some((n) => n.Name === net)) await docker.removeNetwork(net).catch(() => undefined);
  }
  if (!created.volumes.length) for (const v of await docker.volumesLabelled(LABEL.install, installId).catch(() => [])) await docker.removeVolume(v).catch(() => undefined);
}

function hostFor(settings: NodeSettings): string {
  return settings.bindAddress === '0.0.0.0' || settings.bindAddress === '::' ? '127.0.0.1' : settings.bindAddress;
}

async function probeHttp(url: string, expect: [number, number]): Promise<string | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000), redirect: 'manual' });
    await res.arrayBuffer().catch(() => undefined);
    return res.status >= expect[0] && res.status <= expect[1] ? null : `${url} answered ${res.status}`;
  } catch (err) {
    return `${url}: ${(err as Error).message}`;
  }
}

function probeTcp(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (r: string | null) => {
      s.destroy();
      resolve(r);
    };
    s.setTimeout(3000, () => done(`${host}:${port} timed out`));
    s.once('connect', () => done(null));
    s.once('error', (e) => done(`${host}:${port}: ${e.message}`));
  });
}

/**
 * Docker resets ExitCode to 0 once a restart policy has brought the container back up, so a crashing
 * container caught in its next run would read "exited with code 0". Wait briefly for it to fall again
 * (a crash loop does within its backoff) to name the real code.
 */
async function exitReason(docker: DockerOps, container: string, first: ContainerState): Promise<string> {
  let st: ContainerState | null = first;
  const deadline = Date.now() + 3000;
  while (st && st.running && st.status !== 'restarting' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    st = await docker.state(container);
  }
  if (!st) return 'disappeared while starting';
  if (st.running && st.status !== 'restarting') return `restarted ${st.restartCount} time(s) while starting`;
  return `exited with code ${st.exitCode}`;
}

/** Waits until every container of the group is up and passes its health check; throws the reason otherwise. */
async function waitHealthy(
  docker: DockerOps,
  settings: NodeSettings,
  rec: AppSnapshot,
  group: ReadonlyArray<{ service: string; container: string; spec: Service }>,
  timeoutMs: number,
  check: () => void,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const host = hostFor(settings);
  let pending = '';
  for (;;) {
    check();
    const waiting: string[] = [];
    for (const s of group) {
      const st = await docker.state(s.container);
      if (!st) throw new Error(`container ${s.container} disappeared while starting`);
      if (st.status === 'exited' || st.status === 'dead' || st.restartCount > 0 || st.status === 'restarting') {
        const logs = await docker.logsTail(s.container);
        throw new Error(`container ${s.container} ${await exitReason(docker, s.container, st)}${logs ? `: ${logs}` : ''}`);
      }
      if (st.health === 'unhealthy') throw new Error(`container ${s.container} is unhealthy (Docker health check failed)`);
      const h = s.spec.health ?? { type: 'running' as const, seconds: 2 };
      let problem: string | null = null;
      if (!st.running) problem = `${s.container} is ${st.status}`;
      else if (h.type === 'cmd') problem = st.health === 'healthy' ? null : `${s.container} health is ${st.health ?? 'unknown'}`;
      else if (h.type === 'running') problem = Date.now() - st.startedAt >= h.seconds * 1000 ? null : `${s.container} starting`;
      else {
        const port = rec.ports.find((p) => p.service === s.service && p.container === h.port && p.protocol === 'tcp');
        if (!port) throw new Error(`health port ${h.port} of ${s.container} is not published`);
        // docker-proxy accepts TCP on the host port before the app listens, so a bare connect goes to the container itself.
        problem = h.type === 'http' ? await probeHttp(`http://${host.includes(':') ? `[${host}]` : host}:${port.host}${h.path}`, h.expect) : st.ip ? await probeTcp(st.ip, h.port) : await probeTcp(host, port.host);
      }
      if (problem) waiting.push(problem);
    }
    if (!waiting.length) return;
    pending = waiting.join('; ');
    if (Date.now() > deadline) throw new Error(`not healthy after ${Math.round(timeoutMs / 1000)} s: ${pending}`);
    await sleep(500);
  }
}
