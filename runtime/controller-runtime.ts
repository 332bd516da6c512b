/**
 * The controller's side of the runner: builds each plugin's ControllerContext, and brings agent
 * reports and messages to the controller half, checked against the spec at the boundary. Plugin
 * events go through the host's durable event sink (event log, webhooks, /api/v1/events) and reach
 * the plugins that depend on the emitter, each checked against the listener's own schema.
 */
import type { z } from 'zod';
import type { ControllerContext, ControllerHalf, ControllerModule, DashboardPanel, DeliverOptions, NodeInfo, PluginSpec, ReportMeta } from '../plugins/sdk/contract.ts';
import { claimsOf, namespaceOf } from './claims.ts';
import type { Boundary } from './boundary.ts';
import { claimedRoutes, commonParts, type CommonHostDeps } from './common-context.ts';
import type { ChannelPort, ListenPort, PeerPort } from './context-parts.ts';
import { scopedListen } from './scoped-listen.ts';
import { extend, untilAborted } from './extend.ts';
import type { RouteTable } from './route-table.ts';
import { PluginRunner, type PluginSlot, type RunnerHostDeps } from './runner.ts';
import type { Scope } from './scope.ts';
import type { SingletonStart } from './cluster/singleton.ts';
import { createScheduler } from '../plugins/sdk/scheduler.ts';
import { keepFence } from '../plugins/sdk/durable/fence.ts';

type Half = ControllerHalf<PluginSpec>;

/** What the controller knows of its nodes, as plugins see it. */
export interface NodeDirectory {
  list(): NodeInfo[];
  get(id: string): NodeInfo | undefined;
  resolve(ref: string): NodeInfo | undefined;
  defaultNode(): NodeInfo | undefined;
  /** The node, linked and running plugin, or throws an HttpError saying why not. */
  require(ref: string | undefined, plugin: string): NodeInfo;
  on(event: 'up' | 'down', handler: (node: NodeInfo) => void): () => void;
}

/** The controller's event plumbing: durable recording (and fan-out to webhooks) plus the in-process bus. */
export interface EventSink {
  /** Resolves once the event is recorded (and so reaches its webhook subscriptions). */
  record(event: string, data: unknown): Promise<void>;
  on(event: string, handler: (data: unknown) => void): () => void;
}

export interface ControllerRuntimeDeps extends CommonHostDeps, RunnerHostDeps {
  routes: RouteTable;
  nodes: NodeDirectory;
  command(nodeId: string, plugin: string, action: string, args: unknown, timeoutMs: number): Promise<unknown>;
  commandTimeoutMs: number;
  channels: ChannelPort;
  listen: ListenPort;
  /** The other controllers on the same database (NO_PEERS alone). */
  peers: PeerPort;
  events: EventSink;
  /** Durable webhook delivery (the controller's outbox). */
  deliver(url: string, body: string, opts: Omit<DeliverOptions, 'secret'> & { secret?: string; event: string }): Promise<string>;
  boundary: Boundary;
  /** Runs start for every term of the singleton lease this controller holds (runtime/cluster/singleton.ts). */
  singleton(what: string, start: SingletonStart): () => Promise<void>;
}

/** Core events any plugin may listen to. */
const CORE_LISTENABLE = ['node'];

export class ControllerRuntime {
  readonly runner: PluginRunner<Half>;

  constructor(private readonly deps: ControllerRuntimeDeps) {
    this.runner = new PluginRunner<Half>({ ...deps, host: 'controller', instantiate: (slot, scope) => this.instantiate(slot, scope) });
  }

  /**
   * A report from an agent (the link has deduplicated it). Throws a BoundaryError when it does not fit
   * the spec: the link still acknowledges it, with the error, so it is not replayed forever.
   */
  async report(meta: ReportMeta, plugin: string, type: string, data: unknown): Promise<void> {
    // A report that arrives while a config change restarts plugins waits for it: dropped here, it would still be acked, and lost.
    await this.runner.idle();
    const spec = this.runner.spec(plugin);
    if (!spec) {
      this.deps.log.debug({ plugin, type }, 'report for a plugin not loaded here; dropped');
      return;
    }
    const parsed = this.deps.boundary.check(plugin, 'report', type, spec.reports, data);
    const r = this.runner.running(plugin);
    const handler = 'error' in r ? undefined : r.half?.onReport?.[type];
    if (!handler) {
      this.deps.log.debug({ plugin, type }, 'report for a plugin not running here (or without a handler); dropped');
      return;
    }
    await handler(meta, parsed);
  }

  /** A best-effort message from an agent: refused ones are counted and logged, never answered. */
  private message(slot: PluginSlot, half: Half, nodeId: string, type: string, msg: unknown): void {
    try {
      const parsed = this.deps.boundary.check(slot.name, 'message', type, slot.spec.messages?.toController, msg);
      half.onMessage?.[type]?.(nodeId, parsed);
    } catch (err) {
      this.deps.log.warn({ plugin: slot.name, node: nodeId, type, err: (err as Error).message }, 'message from an agent not handled');
    }
  }

  /**
   * Another controller's ctx.peers call to `plugin`'s onPeer[method]: its result, or an Error saying why
   * not (plugin not loaded or not running here, no such method), whose message is the caller's answer.
   */
  async peerCall(plugin: string, method: string, body: unknown, from: string): Promise<unknown> {
    const r = this.runner.running(plugin);
    if ('error' in r) throw new Error(`plugin ${plugin} is not running on controller ${this.deps.peers.self()}: ${r.error}`);
    const handler = r.half && Object.hasOwn(r.half.onPeer ?? {}, method) ? r.half.onPeer![method] : undefined;
    if (typeof handler !== 'function') throw new Error(`plugin ${plugin} has no peer method "${method.slice(0, 80)}"`);
    return handler(body, from);
  }

  panels(): Array<{ plugin: string; panel: DashboardPanel }> {
    return this.runner.halves().flatMap(({ name, half }) => (half.panel ? [{ plugin: name, panel: half.panel }] : []));
  }

  private async instantiate(slot: PluginSlot, scope: Scope): Promise<Half | undefined> {
    if (!slot.def.controller) return undefined;
    const mod = (await slot.def.controller()).default as ControllerModule<PluginSpec> | undefined;
    if (mod?.half !== 'controller' || mod.spec?.name !== slot.name) throw new Error(`plugin ${slot.name}: controller.ts must default-export defineController(spec, ...) with its own spec`);
    const half = mod.create(await this.context(slot, scope));
    if (half.onMessage) scope.add('message handler', this.deps.channels.onMessage(slot.name, (nodeId, type, msg) => this.message(slot, half, nodeId, type, msg)));
    return half;
  }

  /** Whether `plugin` may listen to `event`: core node events, or a namespace one of its dependencies claims. */
  private mayListen(spec: PluginSpec, event: string): boolean {
    const ns = namespaceOf(event);
    if (CORE_LISTENABLE.includes(ns)) return true;
    return (spec.dependencies ?? []).some((d) => {
      const dep = this.runner.spec(d);
      return dep !== undefined && claimsOf(dep).events.includes(ns);
    });
  }

  private async context(slot: PluginSlot, scope: Scope): Promise<ControllerContext<PluginSpec>> {
    const { deps } = this;
    const { name, spec, claims } = slot;
    const common = await commonParts(name, claims, scope, deps, () => slot.config);
    const argsOf = Object.fromEntries(Object.entries(spec.commands ?? {}).map(([k, c]) => [k, c.args]));
    const resultsOf = Object.fromEntries(Object.entries(spec.commands ?? {}).map(([k, c]) => [k, c.result]));
    const nodes: ControllerContext<PluginSpec>['nodes'] = {
      list: () => deps.nodes.list(),
      get: (id) => deps.nodes.get(id),
      resolve: (ref) => deps.nodes.resolve(ref),
      defaultNode: () => deps.nodes.defaultNode(),
      require: (ref, plugin) => deps.nodes.require(ref, plugin ?? name),
      on(event, handler) {
        scope.assertOpen(`listen to node.${event}`);
        return scope.add(`node.${event} listener`, deps.nodes.on(event, handler));
      },
    };
    return extend(common, {
      singleton(start: Parameters<ControllerContext<PluginSpec>['singleton']>[0]) {
        scope.assertOpen('start singleton work');
        const stop = deps.singleton(`plugin ${name}`, async (term) => {
          const schedule = createScheduler((err) => common.log.error({ err: (err as Error)?.message, epoch: term.epoch }, 'singleton task failed'));
          try {
            // Bound here, inside the term's fence: whoever calls run later, fn runs fenced by this term.
            const inTerm = keepFence((fn: () => unknown) => fn());
            const dispose = await start({ ...term, schedule, run: <R>(fn: () => R) => inTerm(fn) as R });
            return async () => {
              schedule.stopAll();
              await dispose?.();
            };
          } catch (err) {
            schedule.stopAll();
            throw err;
          }
        });
        const off = scope.add('singleton work', stop);
        return off;
      },
      routes: claimedRoutes(deps.routes, name, claims, scope),
      listen: scopedListen(name, scope, deps.listen),
      nodes,
      peers: {
        self: deps.peers.self(),
        list: () => deps.peers.list(),
        call(controller: string, method: string, body: unknown, opts?: { timeoutMs?: number }) {
          scope.assertOpen(`call ${method} on controller ${controller}`);
          return untilAborted(deps.peers.call(controller, name, method, body, opts?.timeoutMs ?? deps.commandTimeoutMs), scope.signal, () => new Error(`plugin ${name} stopped before controller ${controller} answered ${method}`));
        },
        broadcast(method: string, body: unknown, opts?: { timeoutMs?: number }) {
          scope.assertOpen(`broadcast ${method} to controllers`);
          return deps.peers.broadcast(name, method, body, opts?.timeoutMs ?? deps.commandTimeoutMs);
        },
      },
      async command(nodeId: string, action: string, args: unknown, opts?: { timeoutMs?: number; signal?: AbortSignal }) {
        scope.assertOpen(`send command ${action}`);
        deps.boundary.check(name, 'command', action, argsOf, args);
        const signal = opts?.signal ? AbortSignal.any([opts.signal, scope.signal]) : scope.signal;
        const pending = deps.command(nodeId, name, action, args, opts?.timeoutMs ?? deps.commandTimeoutMs);
        const result = await untilAborted(pending, signal, () => new Error(scope.closed ? `plugin ${name} stopped before node ${nodeId} answered ${action}` : `command ${action} to node ${nodeId} was cancelled`));
        return deps.boundary.check(name, 'result', action, resultsOf, result);
      },
      send(nodeId: string, type: string, msg: unknown) {
        scope.assertOpen(`send ${type}`);
        deps.boundary.check(name, 'message', type, spec.messages?.toAgent, msg);
        return deps.channels.send(name, nodeId, type, msg);
      },
      broadcast(nodeIds: string[] | 'all', type: string, msg: unknown) {
        scope.assertOpen(`broadcast ${type}`);
        deps.boundary.check(name, 'message', type, spec.messages?.toAgent, msg);
        return deps.channels.broadcast(name, nodeIds, type, msg);
      },
      events: {
        async emit(event: string, payload: unknown) {
          scope.assertOpen(`emit ${event}`);
          const parsed = deps.boundary.check(name, 'event', event, spec.events, payload);
          await deps.events.record(event, parsed);
        },
        on: <T>(event: string, schema: z.ZodType<T>, handler: (payload: T) => void | Promise<void>) => {
          scope.assertOpen(`listen to ${event}`);
          if (!this.mayListen(spec, event)) throw new Error(`plugin ${name} cannot listen to "${event}": only node.* events and events of the plugins in its dependencies (${(spec.dependencies ?? []).join(', ') || 'none'})`);
          const off = deps.events.on(event, (data) => {
            let parsed: T;
            try {
              parsed = deps.boundary.parse<T>(name, 'event', event, schema, data);
            } catch (err) {
              deps.log.warn({ plugin: name, event, err: (err as Error).message }, 'event refused by its listener');
              return;
            }
            return handler(parsed);
          });
          scope.add(`${event} listener`, off);
        },
      },
      webhooks: {
        deliver(url: string, body: string, opts: DeliverOptions = {}) {
          scope.assertOpen('deliver a webhook');
          // A caller's id is namespaced by plugin: two plugins' ids never name one delivery.
          return deps.deliver(url, body, { ...opts, ...(opts.id !== undefined ? { id: `${name}:${opts.id}` } : {}), secret: opts.secret?.reveal(), event: opts.event ?? `${name}.callback` });
        },
      },
    });
  }
}
