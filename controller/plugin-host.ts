import type { z } from 'zod';
import type { SingletonStart } from '../runtime/cluster/singleton.ts';
import { onRemoteChange, openStore, type Store } from '../plugins/sdk/store.ts';
import type { Log } from '../plugins/sdk/log.ts';
import type { MetricsRegistry } from '../plugins/sdk/metrics.ts';
import type { DashboardPanel, ReportMeta } from '../plugins/sdk/contract.ts';
import type { EventBus } from '../runtime/events.ts';
import type { PluginStatus } from '../runtime/link.ts';
import type { HttpServer } from '../runtime/http-server.ts';
import { RouteTable } from '../runtime/route-table.ts';
import { createSerial } from '../plugins/sdk/serial.ts';
import { hostBoundary } from '../runtime/boundary.ts';
import type { ChannelPort, PeerPort } from '../runtime/context-parts.ts';
import { ControllerRuntime } from '../runtime/controller-runtime.ts';
import { createListenPort } from '../runtime/listen.ts';
import { loadPluginDefinition, validatePluginConfig } from '../runtime/loader.ts';
import type { Registry } from './registry.ts';
import type { LinkServer } from './link-server.ts';
import type { Subscriptions } from './webhooks/subscriptions.ts';
import type { Outbox } from './webhooks/outbox.ts';
import { nodeDirectory } from './plugin-nodes.ts';
import type { EventLog } from './event-log.ts';
import type { StorageHealth } from '../plugins/sdk/durable/health.ts';

interface PluginConfigData {
  configs: Record<string, unknown>;
}

export interface HostDeps {
  dataDir: string;
  log: Log;
  http: HttpServer;
  registry: Registry;
  link: LinkServer;
  subs: Subscriptions;
  outbox: Outbox;
  bus: EventBus;
  /** Plugin events are recorded here like core events: durable first, then the bus and the webhook fan-out. */
  events: EventLog;
  metrics: MetricsRegistry;
  /** Failing stores, shown in /readyz: plugin logs and queues report there too. */
  health: StorageHealth;
  commandTimeoutMs: number;
  /** A command to one node: over its link here, or forwarded to the controller holding it (controller/peers/). */
  command(nodeId: string, plugin: string, action: string, args: unknown, timeoutMs: number): Promise<unknown>;
  /** More plugin folders (config pluginDirs). */
  pluginDirs: string[];
  /** Best-effort plugin messages over the link (runtime/channels.ts, wired to the link server). */
  channels: ChannelPort;
  /** The other controllers sharing the database (NO_PEERS on files). */
  peers: PeerPort;
  /** Singleton work under the controller's lease (controller/cluster.ts). */
  singleton(what: string, start: SingletonStart): () => Promise<void>;
}

/**
 * The controller's plugins: the shared runner (runtime/) with the registry, link, event log and
 * webhook outbox wired in; configs set through the REST API persisted and pushed to agents.
 */
export class ControllerPluginHost {
  private readonly runtime: ControllerRuntime;
  private store!: Store<PluginConfigData>;

  constructor(private readonly deps: HostDeps) {
    const { registry, bus, outbox, metrics } = deps;
    this.runtime = new ControllerRuntime({
      dataDir: deps.dataDir,
      log: deps.log,
      metrics,
      health: deps.health,
      routes: new RouteTable(deps.http),
      nodes: nodeDirectory(registry, bus),
      command: deps.command,
      commandTimeoutMs: deps.commandTimeoutMs,
      channels: deps.channels,
      peers: deps.peers,
      listen: createListenPort(deps.log),
      events: {
        record: async (event, data) => void (await deps.events.record([{ event, data }])),
        on: (event, handler) => bus.on(event, handler),
      },
      deliver: async (url, body, opts) => {
        const [id] = await outbox.enqueue([{ id: opts.id, url, body, contentType: opts.contentType, secret: opts.secret, key: opts.key, event: opts.event }]);
        return id;
      },
      boundary: hostBoundary(metrics),
      singleton: deps.singleton,
      load: (name) => loadPluginDefinition(name, deps.pluginDirs),
      onTransition: (plugin, change, error) => {
        const event = `plugin.${change}`;
        deps.events.record([{ event, data: { node: null, plugin, ...(error ? { error } : {}) } }]).catch((err) => deps.log.error({ event, err: (err as Error).message }, 'could not record event'));
      },
    });
  }

  async startAll(fileConfigs: Record<string, unknown>): Promise<void> {
    this.store = await openStore<PluginConfigData>(this.deps.dataDir, 'plugins', { configs: {} });
    onRemoteChange(this.store, (changes) => {
      for (const c of changes) if (c.field === 'configs' && c.key !== undefined) void this.applyRemote(c.key);
    });
    await this.runtime.runner.startAll(Object.fromEntries(Object.keys(fileConfigs).map((name) => [name, this.store.data.configs[name] ?? fileConfigs[name]])));
    // Subscriptions may name any loaded plugin's events, running or not.
    for (const spec of this.runtime.runner.specs()) this.deps.subs.registerEvents(Object.keys(spec.events ?? {}));
  }

  stopAll(): Promise<void> {
    return this.runtime.runner.stopAll();
  }

  status(): PluginStatus[] {
    return this.runtime.runner.status();
  }

  has(name: string): boolean {
    return this.runtime.runner.has(name);
  }

  /**
   * Configs set through the REST API, pushed to agents on connect (unredacted: agents need the real
   * values). File defaults are not pushed, so an agent's own config file stays in force until an
   * operator pushes one.
   */
  configs(): Record<string, unknown> {
    return Object.fromEntries(Object.entries(this.store.data.configs).filter(([name]) => this.pushed(name)));
  }

  /** Whether agents get this plugin's controller config (the spec's pushConfig). */
  private pushed(name: string): boolean {
    return this.runtime.runner.spec(name)?.pushConfig !== false;
  }

  configOf(name: string): unknown {
    return this.store.data.configs[name] ?? this.fileConfigs[name] ?? {};
  }

  /** The plugin's config schema (which fields are secrets), when its spec loaded. */
  configSchema(name: string): z.ZodType | undefined {
    return this.runtime.runner.spec(name)?.config;
  }

  private fileConfigs: Record<string, unknown> = {};
  setFileConfigs(c: Record<string, unknown>): void {
    this.fileConfigs = c;
  }

  /** Config changes one at a time, so agents always end with the last one pushed. */
  private readonly serial = createSerial();

  /** Validates, persists, applies here (live update or restart) and pushes to every agent. Throws naming the bad field. */
  setConfig(name: string, config: unknown): Promise<unknown> {
    return this.serial.run(async () => {
      if (!this.has(name)) throw new Error(`plugin "${name}" is not loaded on this controller`);
      const spec = this.runtime.runner.spec(name);
      if (!spec) throw new Error(`plugin "${name}" cannot run on this controller: ${this.status().find((p) => p.name === name)?.error ?? 'not loaded'}`);
      validatePluginConfig({ spec }, config);
      await this.store.update((d) => {
        d.configs[name] = config;
      });
      await this.runtime.runner.apply(name, config);
      if (this.pushed(name)) this.deps.link.broadcast({ t: 'config', plugin: name, config });
      return config;
    });
  }

  /**
   * A config another controller sharing the database stored: applied here and pushed to the agents
   * linked here (that controller pushed it to its own), in order with local changes.
   */
  private applyRemote(name: string): Promise<void> {
    return this.serial
      .run(async () => {
        if (!this.runtime.runner.spec(name)) return;
        const config = this.store.data.configs[name];
        await this.runtime.runner.apply(name, config ?? this.fileConfigs[name] ?? {});
        if (config !== undefined && this.pushed(name)) this.deps.link.broadcast({ t: 'config', plugin: name, config });
      })
      .catch((err) => this.deps.log.error({ plugin: name, err: (err as Error).message }, 'could not apply a config stored by another controller'));
  }

  onReport(meta: ReportMeta, plugin: string, type: string, data: unknown): Promise<void> {
    return this.runtime.report(meta, plugin, type, data);
  }

  /** Another controller's ctx.peers call to one of this controller's plugins (runtime/controller-runtime.ts). */
  peerCall(plugin: string, method: string, body: unknown, from: string): Promise<unknown> {
    return this.runtime.peerCall(plugin, method, body, from);
  }

  panels(): Array<{ plugin: string; panel: DashboardPanel }> {
    return this.runtime.panels();
  }
}
