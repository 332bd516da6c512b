/**
 * The agent's side of the runner: builds each plugin's AgentContext, and brings controller commands
 * and messages to the agent half, checked against the spec at the boundary.
 */
import type { AgentContext, AgentHalf, AgentModule, NodeIdentity, PluginSpec } from '../plugins/sdk/contract.ts';
import type { Capabilities } from '../plugins/sdk/capabilities.ts';
import type { Boundary } from './boundary.ts';
import { claimedRoutes, commonParts, type CommonHostDeps } from './common-context.ts';
import type { ChannelPort, ListenPort } from './context-parts.ts';
import { extend, untilAborted } from './extend.ts';
import type { RouteTable } from './route-table.ts';
import { PluginRunner, type PluginSlot, type RunnerHostDeps } from './runner.ts';
import type { Scope } from './scope.ts';
import { scopedListen } from './scoped-listen.ts';

type Half = AgentHalf<PluginSpec>;

export interface AgentRuntimeDeps extends CommonHostDeps, RunnerHostDeps {
  node: NodeIdentity;
  capabilities: Capabilities;
  /** The agent's local API (:7071). */
  routes: RouteTable;
  /** Puts one report in the durable outbox; resolves once it is on disk. */
  report(plugin: string, type: string, data: unknown): Promise<void>;
  channels: ChannelPort;
  listen: ListenPort;
  boundary: Boundary;
}

export class AgentRuntime {
  readonly runner: PluginRunner<Half>;

  constructor(private readonly deps: AgentRuntimeDeps) {
    this.runner = new PluginRunner<Half>({ ...deps, host: 'agent', instantiate: (slot, scope) => this.instantiate(slot, scope) });
  }

  /** A command from the controller: args checked against the spec, run under its deadline and the plugin's lifetime. */
  async command(plugin: string, action: string, args: unknown, deadline: number): Promise<unknown> {
    const r = this.runner.running(plugin);
    if ('error' in r) throw new Error(r.error);
    const argsOf = Object.fromEntries(Object.entries(r.spec.commands ?? {}).map(([k, c]) => [k, c.args]));
    const parsed = this.deps.boundary.check(plugin, 'command', action, argsOf, args);
    const handler = r.half?.commands?.[action];
    if (!handler) throw new Error(`plugin ${plugin} declares command "${action}" but its agent half does not handle it`);
    const left = deadline - Date.now();
    if (left <= 0) throw new Error('command deadline already passed');
    const signal = AbortSignal.any([AbortSignal.timeout(left), r.signal]);
    return untilAborted(Promise.resolve(handler(parsed, { deadline, signal })), signal, () =>
      r.signal.aborted ? new Error(`plugin ${plugin} stopped while running command ${action}`) : new Error(`command ${plugin}.${action} exceeded its deadline`),
    );
  }

  private async instantiate(slot: PluginSlot, scope: Scope): Promise<Half | undefined> {
    if (!slot.def.agent) return undefined;
    const mod = (await slot.def.agent()).default as AgentModule<PluginSpec> | undefined;
    if (mod?.half !== 'agent' || mod.spec?.name !== slot.name) throw new Error(`plugin ${slot.name}: agent.ts must default-export defineAgent(spec, ...) with its own spec`);
    const half = mod.create(await this.context(slot, scope));
    if (half.onMessage) {
      const off = this.deps.channels.onMessage(slot.name, (_node, type, msg) => this.message(slot, half, type, msg));
      scope.add('message handler', off);
    }
    return half;
  }

  private message(slot: PluginSlot, half: Half, type: string, msg: unknown): void {
    try {
      const parsed = this.deps.boundary.check(slot.name, 'message', type, slot.spec.messages?.toAgent, msg);
      half.onMessage?.[type]?.(parsed);
    } catch (err) {
      this.deps.log.warn({ plugin: slot.name, type, err: (err as Error).message }, 'message from the controller not handled');
    }
  }

  private async context(slot: PluginSlot, scope: Scope): Promise<AgentContext<PluginSpec>> {
    const { deps } = this;
    const { name, spec, claims } = slot;
    const common = await commonParts(name, claims, scope, deps, () => slot.config);
    return extend(common, {
      node: deps.node,
      capabilities: deps.capabilities,
      async report(type: string, data: unknown) {
        scope.assertOpen(`report ${type}`);
        // Checked here too, so a plugin's own mistake fails at its call; the original goes out (unknown fields kept).
        deps.boundary.check(name, 'report', type, spec.reports, data);
        await deps.report(name, type, data);
      },
      send(type: string, msg: unknown) {
        scope.assertOpen(`send ${type}`);
        deps.boundary.check(name, 'message', type, spec.messages?.toController, msg);
        return deps.channels.send(name, '', type, msg);
      },
      listen: scopedListen(name, scope, deps.listen),
      http: claimedRoutes(deps.routes, name, claims, scope),
    });
  }
}
