import { commonContext, loadPluginDefinition, validatePluginConfig } from '../plugins/sdk/loader.ts';
import type { Log } from '../plugins/sdk/log.ts';
import type { MetricsRegistry } from '../plugins/sdk/metrics.ts';
import type { AgentContext, AgentPlugin, NodeIdentity, PluginDefinition } from '../plugins/sdk/plugin.ts';
import type { PluginStatus } from '../plugins/sdk/link.ts';
import type { RouteMounter } from '../plugins/sdk/route-table.ts';
import { RouteTable } from '../plugins/sdk/route-table.ts';
import { stopSlotInstance } from '../plugins/sdk/plugin-slot.ts';
import { createSerial } from '../plugins/sdk/serial.ts';
import type { Store } from '../plugins/sdk/store.ts';
import type { AgentState } from './state.ts';
import type { Capabilities } from '../plugins/sdk/capabilities.ts';

interface Slot {
  name: string;
  def?: PluginDefinition;
  instance?: AgentPlugin;
  stopSchedule?: () => void;
  state: PluginStatus['state'];
  error?: string;
  /** JSON of the config the instance runs with, to skip restarts when nothing changed. */
  running?: string;
  /** A start that failed at run time (e.g. Docker not up yet) is retried with backoff; a bad config is not. */
  retryTimer?: NodeJS.Timeout;
  retries: number;
}

const RETRY_BASE_MS = Number(process.env.OUTPOST_PLUGIN_RETRY_MS ?? 15_000);
const RETRY_MAX_MS = 5 * 60_000;

export interface AgentHostDeps {
  dataDir: string;
  log: Log;
  http: RouteMounter;
  metrics: MetricsRegistry;
  node: NodeIdentity;
  capabilities: Capabilities;
  state: Store<AgentState>;
  report(plugin: string, type: string, data: unknown): Promise<void>;
}

/** Runs the agent side of each configured plugin; a plugin that fails is marked failed while the others run. */
export class AgentPluginHost {
  private readonly slots = new Map<string, Slot>();
  private readonly routes: RouteTable;

  constructor(
    private readonly deps: AgentHostDeps,
    private readonly localConfigs: Record<string, unknown>,
  ) {
    this.routes = new RouteTable(deps.http);
  }

  async startAll(): Promise<void> {
    for (const name of Object.keys(this.localConfigs)) {
      const slot: Slot = { name, state: 'stopped', retries: 0 };
      this.slots.set(name, slot);
      await this.startSlot(slot, this.effectiveConfig(name));
    }
  }

  async stopAll(): Promise<void> {
    for (const slot of this.slots.values()) await this.stopSlot(slot);
  }

  status(): PluginStatus[] {
    return [...this.slots.values()].map((s) => ({ name: s.name, state: s.state, ...(s.error ? { error: s.error } : {}) }));
  }

  private effectiveConfig(name: string): unknown {
    return this.deps.state.data.pushed[name] ?? this.localConfigs[name] ?? {};
  }

  /** Config changes apply one at a time: overlapping restarts of a plugin would leave an orphan instance running. */
  private readonly serial = createSerial();

  /** A config from the controller: persisted first, then applied by restarting only that plugin. */
  applyConfig(name: string, config: unknown): Promise<void> {
    return this.serial.run(() => this.applyNow(name, config));
  }

  private async applyNow(name: string, config: unknown): Promise<void> {
    await this.deps.state.update((d) => {
      d.pushed[name] = config;
    });
    const slot = this.slots.get(name);
    if (!slot) return;
    if (slot.running === JSON.stringify(config) && slot.state === 'running') return;
    await this.stopSlot(slot);
    await this.startSlot(slot, config);
    this.deps.log.info({ plugin: name, state: slot.state }, 'plugin config applied');
  }

  async command(plugin: string, action: string, args: unknown): Promise<unknown> {
    const slot = this.slots.get(plugin);
    if (!slot) throw new Error(`plugin ${plugin} is not loaded on this node`);
    if (slot.state !== 'running' || !slot.instance) throw new Error(`plugin ${plugin} is ${slot.state}${slot.error ? `: ${slot.error}` : ''}`);
    if (!slot.instance.onCommand) throw new Error(`plugin ${plugin} takes no commands`);
    return slot.instance.onCommand(action, args);
  }

  private async startSlot(slot: Slot, rawConfig: unknown): Promise<void> {
    clearTimeout(slot.retryTimer);
    let configOk = false;
    try {
      slot.def ??= await loadPluginDefinition(slot.name);
      const config = validatePluginConfig(slot.def, rawConfig);
      configOk = true;
      slot.running = JSON.stringify(rawConfig);
      if (slot.def.agent) {
        const ctx = await this.context(slot, config);
        slot.stopSchedule = () => ctx.schedule.stopAll();
        slot.instance = slot.def.agent(ctx);
        await slot.instance.start();
      }
      slot.state = 'running';
      slot.error = undefined;
      slot.retries = 0;
    } catch (err) {
      slot.stopSchedule?.();
      slot.instance = undefined;
      slot.state = 'failed';
      slot.error = (err as Error).message;
      if (!configOk) {
        this.deps.log.error({ plugin: slot.name, err: slot.error }, 'plugin failed to start');
        return;
      }
      const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(slot.retries++, 10));
      this.deps.log.error({ plugin: slot.name, err: slot.error, retryInMs: delay }, 'plugin failed to start; will retry');
      slot.retryTimer = setTimeout(() => {
        if (slot.state === 'failed') void this.startSlot(slot, this.effectiveConfig(slot.name));
      }, delay);
      slot.retryTimer.unref();
    }
  }

  private async stopSlot(slot: Slot): Promise<void> {
    clearTimeout(slot.retryTimer);
    await stopSlotInstance(slot, this.deps.log);
  }

  private async context(slot: Slot, config: unknown): Promise<AgentContext> {
    const common = await commonContext(this.deps.dataDir, slot.name, this.deps.log);
    return {
      ...common,
      config,
      node: this.deps.node,
      capabilities: this.deps.capabilities,
      report: (type, data) => this.deps.report(slot.name, type, data),
      http: { mount: (routes) => this.routes.mount(slot.name, () => slot.state === 'running', routes) },
      metrics: this.deps.metrics,
    };
  }
}
