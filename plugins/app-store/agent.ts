import { randomBytes, randomUUID } from 'node:crypto';
import { defineAgent, idMap, withoutSecrets, type Store } from '../sdk/index.ts';
import { LABEL, DockerOps } from './docker.ts';
import { rollback, runInstall } from './installer.ts';
import { containerName, networkName, servicesOf, volumeName, type Manifest } from './manifest.ts';
import { PortAllocator, PortsExhaustedError, canBindTcp, listeningPorts } from './ports.ts';
import { settingsFor, type AppSnapshot, type PortAssignment } from './schema.ts';
import { spec, type CommandResult } from './spec.ts';

interface Records {
  apps: Record<string, AppSnapshot>;
}
interface Secrets {
  apps: Record<string, Record<string, string>>;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';

function generateSecret(length: number, alphabet: 'alnum' | 'hex'): string {
  if (alphabet === 'hex') return randomBytes(Math.ceil(length / 2)).toString('hex').slice(0, length);
  // Rejection sampling keeps every character equally likely.
  let out = '';
  while (out.length < length) for (const b of randomBytes(length * 2)) if (b < 232 && out.length < length) out += ALNUM[b % ALNUM.length];
  return out;
}

/** Runs tasks for one key one after another (an app's install, uninstall, info never interleave). */
class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => this.tails.get(key) === tail && this.tails.delete(key));
    return next;
  }
}

export default defineAgent(spec, (ctx) => {
  const settings = settingsFor(ctx.config, ctx.node.name);
  const docker = new DockerOps(settings.socketPath);
  let records!: Store<Records>;
  let secrets!: Store<Secrets>;
  const lock = new KeyedLock();
  const inFlight = new Map<string, Promise<void>>();
  let stopping = false;

  const apps = () => records.data.apps;
  const save = (rec: AppSnapshot) =>
    records.update((d) => {
      d.apps[rec.app] = { ...rec, updatedAt: Date.now() };
    });
  const publicView = (rec: AppSnapshot): AppSnapshot => ({ ...rec, node: ctx.node.name });

  const allocator = new PortAllocator(settings.ports, {
    async taken() {
      const [containers, sockets] = await Promise.all([docker.hostPortsInUse(), listeningPorts()]);
      const out = new Set([...containers, ...sockets]);
      // Ports of installed apps stay theirs even while their containers are stopped or being recreated.
      for (const r of Object.values(apps())) if (r.status !== 'failed' && r.status !== 'removed') for (const p of r.ports) out.add(p.host);
      return out;
    },
    canBind: (port) => canBindTcp(port),
  });

  async function ensureSecrets(m: Manifest): Promise<Record<string, string>> {
    return secrets.update((d) => {
      const kept = (d.apps[m.name] ??= {});
      // Reinstalls keep earlier secrets: the data volumes were initialised with them.
      for (const [name, spec] of Object.entries(m.secrets)) kept[name] ??= generateSecret(spec.length, spec.alphabet);
      return { ...kept };
    });
  }

  /** The manifest was checked against the manifest schema at the command boundary. */
  async function install(m: Manifest): Promise<CommandResult> {
    return lock.run(m.name, async () => {
      const existing = apps()[m.name];
      if (existing?.status === 'installing') return { ok: false, reason: 'installing', message: `${m.name} is already being installed (${existing.progress}%)`, app: publicView(existing) };
      if (existing && existing.status !== 'failed' && existing.status !== 'removed') return { ok: false, reason: 'exists', message: `${m.name} is already installed`, app: publicView(existing) };
      for (const s of servicesOf(m)) {
        if (await docker.state(s.container)) return { ok: false, reason: 'exists', message: `container ${s.container} already exists on this server` };
      }
      const wanted = servicesOf(m).flatMap((s) => s.spec.ports.map((p) => ({ service: s.service, container: p.container, role: p.role, protocol: p.protocol })));
      let hostPorts: number[];
      try {
        hostPorts = await allocator.allocate(m.name, wanted.length);
      } catch (err) {
        if (err instanceof PortsExhaustedError) return { ok: false, reason: 'ports', message: err.message };
        throw err;
      }
      try {
        const ports: PortAssignment[] = wanted.map((w, i) => ({ ...w, host: hostPorts[i] }));
        const keptVolumes = existing?.status === 'removed' ? existing.volumes : [];
        const vols = servicesOf(m).flatMap((s) => s.spec.volumes.map((v) => volumeName(m.name, v.name)));
        const now = Date.now();
        const rec: AppSnapshot = {
          app: m.name,
          installId: randomUUID(),
          status: 'installing',
          progress: 0,
          step: 'queued',
          info: '',
          containerName: containerName(m.name),
          containers: servicesOf(m).map((s) => s.container),
          network: networkName(m.name),
          volumes: [...new Set([...keptVolumes, ...vols])],
          ports,
          image: m.image,
          createdAt: now,
          updatedAt: now,
        };
        const appSecrets = await ensureSecrets(m);
        // On disk before the caller hears "1", so a crash right after cannot lose the install.
        await save(rec);
        await ctx.report('progress', publicView(rec));
        const job = execute(m, rec, appSecrets).finally(() => {
          allocator.release(m.name);
          inFlight.delete(m.name);
        });
        inFlight.set(m.name, job);
        return { ok: true, app: publicView(rec) };
      } catch (err) {
        allocator.release(m.name);
        throw err;
      }
    });
  }

  async function execute(m: Manifest, rec: AppSnapshot, appSecrets: Record<string, string>): Promise<void> {
    let lastReport = 0;
    const hooks = {
      async step(step: string, progress: number, info = '') {
        Object.assign(rec, { step, progress, info });
        await save(rec);
        await ctx.report('progress', publicView(rec));
        ctx.log.info({ app: m.name, step, progress }, 'install step');
      },
      progress(progress: number, info: string) {
        Object.assign(rec, { progress, info });
        if (Date.now() - lastReport < 1000) return;
        lastReport = Date.now();
        void ctx.report('progress', publicView(rec)).catch(() => undefined);
      },
      aborted: () => stopping,
    };
    try {
      await runInstall(docker, settings, m, rec, appSecrets, hooks, { pullMs: ctx.config.pullTimeoutSec * 1000, healthMs: ctx.config.healthTimeoutSec * 1000, stopSec: ctx.config.stopTimeoutSec });
      Object.assign(rec, { status: 'running', progress: 100, step: 'running', info: '' });
      await save(rec);
      await ctx.report('installed', publicView(rec));
      ctx.log.info({ app: m.name, ports: rec.ports.map((p) => p.host) }, 'app installed');
    } catch (err) {
      // Container logs quoted in a failure reason could echo a password; the reason is shown to API callers.
      const reason = withoutSecrets((err as Error).message, Object.values(appSecrets));
      // The ports went back to the pool with the rollback; a failed app holds none.
      Object.assign(rec, { status: 'failed', step: 'failed', info: reason, ports: [] });
      await save(rec);
      await ctx.report('failed', publicView(rec));
      ctx.log.warn({ app: m.name, reason }, 'app install failed; rolled back');
    }
  }

  async function uninstall(app: string, purge: boolean): Promise<CommandResult> {
    return lock.run(app, async () => {
      const rec = apps()[app];
      if (rec?.status === 'installing') return { ok: false, reason: 'installing', message: `${app} is being installed (${rec.progress}%); uninstall it once it is done`, app: publicView(rec) };
      if (!rec || (rec.status === 'removed' && !purge)) return { ok: false, reason: 'not-installed', message: `${app} is not installed on this server` };
      const ours = await docker.containersLabelled(LABEL.app, app);
      const names = new Set([...(rec.status === 'removed' ? [] : rec.containers), ...ours.map((c) => c.name)]);
      const problems: string[] = [];
      for (const name of names) await docker.removeContainer(name, ctx.config.stopTimeoutSec).catch((e) => problems.push(`${name}: ${(e as Error).message}`));
      await docker.removeNetwork(networkName(app)).catch((e) => problems.push(`network: ${(e as Error).message}`));
      const left = (await docker.containersLabelled(LABEL.app, app)).filter((c) => names.has(c.name));
      if (left.length) {
        const port = rec.ports.find((p) => p.service === 'main')?.host ?? '';
        return { ok: false, reason: 'remove-failed', message: `${app} could not be removed and is still running on port ${port} (${left.map((c) => c.name).join(', ')}): ${problems.join('; ')}`, app: publicView(rec) };
      }
      if (purge) {
        const vols = new Set([...rec.volumes, ...(await docker.volumesLabelled(LABEL.app, app))]);
        for (const v of vols) await docker.removeVolume(v);
        await secrets.update((d) => void delete d.apps[app]);
      }
      const done: AppSnapshot = { ...rec, status: 'removed', step: purge ? 'purged' : 'removed', progress: 0, ports: [], containers: [], volumes: purge ? [] : rec.volumes, info: purge ? 'removed with its data' : 'removed; data volumes kept', updatedAt: Date.now() };
      await records.update((d) => {
        if (purge) delete d.apps[app];
        else d.apps[app] = done;
      });
      await ctx.report('uninstalled', { ...publicView(done), purged: purge });
      ctx.log.info({ app, purge }, 'app uninstalled');
      return { ok: true, app: publicView(done) };
    });
  }

  /** The stored record checked against the Engine: a running app whose container stopped reads "stopped". */
  async function live(rec: AppSnapshot, states?: Map<string, string>): Promise<AppSnapshot> {
    if (rec.status !== 'running') return publicView(rec);
    const state = states ? (states.get(rec.containerName) ?? null) : ((await docker.state(rec.containerName))?.status ?? null);
    if (state === 'running') return publicView(rec);
    return publicView({ ...rec, status: 'stopped', info: state ? `container ${rec.containerName} is ${state}` : `container ${rec.containerName} is missing` });
  }

  async function list(): Promise<AppSnapshot[]> {
    const ours = await docker.containersLabelled(LABEL.managed, 'true');
    const states = new Map(ours.map((c) => [c.name, c.state]));
    return Promise.all(Object.values(apps()).map((r) => live(r, states)));
  }

  async function uninstallAll(purge: boolean): Promise<Array<{ app: string; ok: boolean; message: string }>> {
    const out: Array<{ app: string; ok: boolean; message: string }> = [];
    for (const rec of Object.values(apps())) {
      if (rec.status === 'removed' && !purge) continue;
      const r = await uninstall(rec.app, purge);
      out.push({ app: rec.app, ok: r.ok, message: r.ok ? '' : r.message });
    }
    return out;
  }

  /** Installs cut short by a restart are rolled back and marked failed, so nothing half-made lingers. */
  async function recover(): Promise<void> {
    for (const rec of Object.values(apps())) {
      if (rec.status !== 'installing') continue;
      await rollback(docker, rec.app, rec.installId, { containers: [], network: null, volumes: [] }, 2);
      Object.assign(rec, { status: 'failed', step: 'failed', info: 'install interrupted: the agent restarted during the install', ports: [] });
      await save(rec);
      await ctx.report('failed', publicView(rec));
    }
  }

  return {
    async start() {
      records = await ctx.openStore<Records>({ apps: idMap() });
      secrets = await ctx.openStore<Secrets>('secrets', { apps: {} });
      // Unreachable Engine: start throws, the host marks the plugin failed with this reason, the agent runs on.
      await docker.ping();
      await recover();
      await ctx.report('snapshot', { apps: await list() });
    },
    async stop() {
      stopping = true;
      await Promise.allSettled([...inFlight.values()]);
    },
    commands: {
      install: (args) => install(args.manifest),
      uninstall: (args) => uninstall(args.app, args.purge),
      info: async (args) => {
        const rec = apps()[args.app];
        return rec ? live(rec) : null;
      },
      list: () => list(),
      uninstallAll: (args) => uninstallAll(args.purge),
      secrets: (args) => ({ app: args.app, secrets: secrets.data.apps[args.app] ?? {} }),
    },
  };
});
