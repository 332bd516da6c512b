import type { z } from 'zod';
import { openStore, type Store } from '../plugins/sdk/store.ts';
import type { Log } from '../plugins/sdk/log.ts';
import type { MetricsRegistry } from '../plugins/sdk/metrics.ts';
import type { DashboardPanel, ReportMeta } from '../plugins/sdk/contract.ts';
import type { EventBus } from '../runtime/events.ts';
import type { PluginStatus } from '../runtime/link.ts';
import type { HttpServer } from '../runtime/http-server.ts';
import { RouteTable } from '../runtime/route-table.ts';
import { createSerial } from '../plugins/sdk/serial.ts';
import { hostBoundary } from '../runtime/boundary.ts';
import { JsonChannelHub, type MessageFrame } from '../runtime/channels.ts';
import { ControllerRuntime, type EventSink } from '../runtime/controller-runtime.ts';
import { loadPluginDefinition, validatePluginConfig } from '../runtime/loader.ts';
import type { Registry } from './registry.ts';
import type { LinkServer } from './link-server.ts';
import type { Subscriptions } from './webhooks/subscriptions.ts';
import type { Outbox } from './webhooks/outbox.ts';
import { nodeDirectory } from './plugin-nodes.ts';

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
  /** Where plugin events are recorded durably (and fanned out to webhooks and the bus). */
  events: EventSink;
  metrics: MetricsRegistry;
  commandTimeoutMs: number;
  /** More plugin folders (config pluginDirs). */
  pluginDirs: string[];
}

/**
 * The controller's plugins: the shared runner (runtime/) with the registry, link, event log and
 * webhook outbox wired in; configs set through the REST API persisted and pushed to agents.
 */
export class ControllerPluginHost {
  private readonly runtime: ControllerRuntime;
  private readonly channels: JsonChannelHub;
  private store!: Store<PluginConfigData>;

  constructor(private readonly deps: HostDeps) {
    const { registry, link, bus, outbox, metrics } = deps;
    this.channels = new JsonChannelHub(
      { send: (nodeId, frame) => link.sendFrame(nodeId, frame), connected: () => link.connectedIds() },
      metrics.counter('outpost_link_plugin_messages_dropped_total', 'Best-effort plugin messages dropped (link down, or no handler), by plugin and reason.'),
    );
    this.runtime = new ControllerRuntime({
      dataDir: deps.dataDir,
      log: deps.log,
      metrics,
      routes: new RouteTable(deps.http),
      nodes: nodeDirectory(registry, bus),
      command: (nodeId, plugin, action, args, timeoutMs) => link.command(nodeId, plugin, action, args, timeoutMs),
      commandTimeoutMs: deps.commandTimeoutMs,
      channels: this.channels,
      events: deps.events,
      deliver: async (url, body, opts) => {
        const [id] = await outbox.enqueue([{ url, body, contentType: opts.contentType, secret: opts.secret, key: opts.key, event: opts.event }]);
        return id;
      },
      boundary: hostBoundary(metrics),
      load: (name) => loadPluginDefinition(name, deps.pluginDirs),
      onTransition: (plugin, change, error) => bus.emit(`plugin.${change}`, { node: null, plugin, ...(error ? { error } : {}) }),
    });
  }

  async startAll(fileConfigs: Record<string, unknown>): Promise<void> {
    this.store = await openStore<PluginConfigData>(this.deps.dataDir, 'plugins', { configs: {} });
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
    return { ...this.store.data.configs };
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
      this.deps.link.broadcast({ t: 'config', plugin: name, config });
      return config;
    });
  }

  onReport(meta: ReportMeta, plugin: string, type: string, data: unknown): Promise<void> {
    return this.runtime.report(meta, plugin, type, data);
  }

  onMessage(nodeId: string, frame: Omit<MessageFrame, 't'>): void {
    this.channels.receive(nodeId, frame);
  }

  panels(): Array<{ plugin: string; panel: DashboardPanel }> {
    return this.runtime.panels();
  }
}
