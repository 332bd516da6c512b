import { openStore, type Store } from '../plugins/sdk/store.ts';
import { commonContext, loadPluginDefinition, validatePluginConfig } from '../plugins/sdk/loader.ts';
import type { Log } from '../plugins/sdk/log.ts';
import type { EventBus } from '../plugins/sdk/events.ts';
import type { MetricsRegistry } from '../plugins/sdk/metrics.ts';
import type { ControllerContext, ControllerPlugin, DashboardPanel, PluginDefinition, ReportMeta } from '../plugins/sdk/plugin.ts';
import type { PluginStatus } from '../plugins/sdk/link.ts';
import type { HttpServer } from '../plugins/sdk/http-server.ts';
import { RouteTable } from '../plugins/sdk/route-table.ts';
import { stopSlotInstance } from '../plugins/sdk/plugin-slot.ts';
import { createSerial } from '../plugins/sdk/serial.ts';
import type { Registry } from './registry.ts';
import type { LinkServer } from './link-server.ts';
import type { Subscriptions } from './webhooks/subscriptions.ts';
import type { Outbox } from './webhooks/outbox.ts';

interface Slot {
  name: string;
  def?: PluginDefinition;
  instance?: ControllerPlugin;
  stopSchedule?: () => void;
  state: PluginStatus['state'];
  error?: string;
}

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
  metrics: MetricsRegistry;
  commandTimeoutMs: number;
}

/** Loads the controller side of each configured plugin, keeps its routes mounted across restarts, applies config changes. */
export class ControllerPluginHost {
  private readonly slots = new Map<string, Slot>();
  /** method + path → the live route; server routes are mounted once and look here on every request. */
  private readonly routes: RouteTable;
  private store!: Store<PluginConfigData>;

  constructor(private readonly deps: HostDeps) {
    this.routes = new RouteTable(deps.http);
  }

  async startAll(fileConfigs: Record<string, unknown>): Promise<void> {
    this.store = await openStore<PluginConfigData>(this.deps.dataDir, 'plugins', { configs: {} });
    for (const name of Object.keys(fileConfigs)) {
      const slot: Slot = { name, state: 'stopped' };
      this.slots.set(name, slot);
      const config = this.store.data.configs[name] ?? fileConfigs[name];
      await this.startSlot(slot, config);
    }
  }

  async stopAll(): Promise<void> {
    for (const slot of this.slots.values()) await this.stopSlot(slot);
  }

  status(): PluginStatus[] {
    return [...this.slots.values()].map((s) => ({ name: s.name, state: s.state, ...(s.error ? { error: s.error } : {}) }));
  }

  has(name: string): boolean {
    return this.slots.has(name);
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

  private fileConfigs: Record<string, unknown> = {};
  setFileConfigs(c: Record<string, unknown>): void {
    this.fileConfigs = c;
  }

  /**
   * Config changes apply one at a time: overlapping restarts would leave an orphan plugin instance
   * running (its schedules included) and could push agents an older config last. A plugin must not
   * await pushConfig from its own start(), which runs inside this chain.
   */
  private readonly serial = createSerial();

  /** Validates, persists, restarts the controller side and pushes to every agent. Throws naming the bad field. */
  setConfig(name: string, config: unknown): Promise<unknown> {
    return this.serial.run(() => this.applyNow(name, config));
  }

  private async applyNow(name: string, config: unknown): Promise<unknown> {
    const slot = this.slots.get(name);
    if (!slot) throw new Error(`plugin "${name}" is not loaded on this controller`);
    const def = slot.def ?? (await loadPluginDefinition(name));
    validatePluginConfig(def, config);
    await this.store.update((d) => {
      d.configs[name] = config;
    });
    await this.stopSlot(slot);
    await this.startSlot(slot, config);
    this.deps.link.broadcast({ t: 'config', plugin: name, config });
    return config;
  }

  async onReport(meta: ReportMeta, plugin: string, type: string, data: unknown): Promise<void> {
    // A report that arrives while a config change restarts plugins waits for it: dropped here, it would still be acked, and lost.
    await this.serial.idle();
    const slot = this.slots.get(plugin);
    if (!slot?.instance?.onReport || slot.state !== 'running') {
      this.deps.log.debug({ plugin, type }, 'report for a plugin not running here; dropped');
      return;
    }
    await slot.instance.onReport(meta, type, data);
  }

  panels(): Array<{ plugin: string; panel: DashboardPanel }> {
    return [...this.slots.values()].filter((s) => s.instance?.panel && s.state === 'running').map((s) => ({ plugin: s.name, panel: s.instance!.panel! }));
  }

  private async startSlot(slot: Slot, rawConfig: unknown): Promise<void> {
    const { log } = this.deps;
    const wasFailed = slot.state === 'failed';
    try {
      slot.def ??= await loadPluginDefinition(slot.name);
      if (slot.def.events) this.deps.subs.registerEvents(slot.def.events);
      const config = validatePluginConfig(slot.def, rawConfig);
      if (!slot.def.controller) {
        slot.state = 'running';
        slot.error = undefined;
        return;
      }
      const ctx = await this.context(slot, config);
      slot.stopSchedule = () => ctx.schedule.stopAll();
      slot.instance = slot.def.controller(ctx);
      await slot.instance.start();
      slot.state = 'running';
      slot.error = undefined;
      if (wasFailed) this.deps.bus.emit('plugin.recovered', { node: null, plugin: slot.name });
    } catch (err) {
      slot.stopSchedule?.();
      slot.instance = undefined;
      slot.state = 'failed';
      slot.error = (err as Error).message;
      log.error({ plugin: slot.name, err: slot.error }, 'plugin failed to start');
      this.deps.bus.emit('plugin.failed', { node: null, plugin: slot.name, error: slot.error });
    }
  }

  private async stopSlot(slot: Slot): Promise<void> {
    await stopSlotInstance(slot, this.deps.log);
  }

  private async context(slot: Slot, config: unknown): Promise<ControllerContext> {
    const { registry, link, subs, outbox, bus, metrics, commandTimeoutMs } = this.deps;
    const common = await commonContext(this.deps.dataDir, slot.name, this.deps.log);
    return {
      ...common,
      config,
      routes: { mount: (routes) => this.routes.mount(slot.name, () => slot.state === 'running', routes) },
      nodes: {
        list: () => registry.list(),
        get: (id) => registry.get(id),
        defaultNode: () => registry.defaultNode(),
        resolve: (ref) => registry.resolve(ref),
        require: (ref, plugin) => registry.require(ref, plugin),
        on: (event, handler) => bus.on(`node.${event}`, (p) => handler((p as { node: ReturnType<Registry['list']>[number] }).node)),
      },
      command: (nodeId, action, args, timeoutMs) => link.command(nodeId, slot.name, action, args ?? {}, timeoutMs ?? commandTimeoutMs),
      webhooks: {
        emit: async (event, payload) => {
          bus.emit(event, payload);
          await subs.emit(event, payload);
        },
        deliver: async (url, body, opts = {}) => {
          const [id] = await outbox.enqueue([{ url, body, contentType: opts.contentType, secret: opts.secret, key: opts.key, event: opts.event ?? `${slot.name}.callback` }]);
          return id;
        },
      },
      events: bus,
      metrics,
      pushConfig: async (c) => void (await this.setConfig(slot.name, c)),
    };
  }
}
