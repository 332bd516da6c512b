import type { Log } from '../plugins/sdk/log.ts';
import type { MetricsRegistry } from '../plugins/sdk/metrics.ts';
import type { NodeIdentity } from '../plugins/sdk/contract.ts';
import type { Capabilities } from '../plugins/sdk/capabilities.ts';
import type { StorageHealth } from '../plugins/sdk/durable/health.ts';
import type { Store } from '../plugins/sdk/store.ts';
import type { PluginStatus } from '../runtime/link.ts';
import { AgentRuntime } from '../runtime/agent-runtime.ts';
import { hostBoundary } from '../runtime/boundary.ts';
import type { ChannelPort } from '../runtime/context-parts.ts';
import { createListenPort } from '../runtime/listen.ts';
import { loadPluginDefinition } from '../runtime/loader.ts';
import { RouteTable, type RouteMounter } from '../runtime/route-table.ts';
import type { AgentState } from './state.ts';

export interface AgentHostDeps {
  dataDir: string;
  log: Log;
  http: RouteMounter;
  metrics: MetricsRegistry;
  /** Failing stores, shown in /healthz: plugin logs and queues report there too. */
  health: StorageHealth;
  node: NodeIdentity;
  capabilities: Capabilities;
  state: Store<AgentState>;
  report(plugin: string, type: string, data: unknown): Promise<void>;
  channels: ChannelPort;
  /** More plugin folders (config pluginDirs). */
  pluginDirs: string[];
}

/**
 * The agent's plugins: the shared runner (runtime/) with the agent's outbox, local API and link
 * wired in, and configs pushed by the controller persisted before they are applied.
 */
export class AgentPluginHost {
  private readonly runtime: AgentRuntime;

  constructor(
    private readonly deps: AgentHostDeps,
    private readonly localConfigs: Record<string, unknown>,
  ) {
    this.runtime = new AgentRuntime({
      dataDir: deps.dataDir,
      log: deps.log,
      metrics: deps.metrics,
      health: deps.health,
      node: deps.node,
      capabilities: deps.capabilities,
      routes: new RouteTable(deps.http),
      report: deps.report,
      channels: deps.channels,
      listen: createListenPort(deps.log.child({ part: 'listen' })),
      load: (name) => loadPluginDefinition(name, deps.pluginDirs),
      boundary: hostBoundary(deps.metrics),
    });
  }

  startAll(): Promise<void> {
    return this.runtime.runner.startAll(Object.fromEntries(Object.keys(this.localConfigs).map((name) => [name, this.effectiveConfig(name)])));
  }

  stopAll(): Promise<void> {
    return this.runtime.runner.stopAll();
  }

  status(): PluginStatus[] {
    return this.runtime.runner.status();
  }

  private effectiveConfig(name: string): unknown {
    return this.deps.state.data.pushed[name] ?? this.localConfigs[name] ?? {};
  }

  /** A config from the controller: persisted first (so a restart keeps it), then applied to that plugin only. */
  async applyConfig(name: string, config: unknown): Promise<void> {
    await this.deps.state.update((d) => {
      d.pushed[name] = config;
    });
    if (this.runtime.runner.has(name)) await this.runtime.runner.apply(name, config);
  }

  command(plugin: string, action: string, args: unknown, deadline: number): Promise<unknown> {
    return this.runtime.command(plugin, action, args, deadline);
  }
}
