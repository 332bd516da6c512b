/**
 * One plugin's halves in one process, on the real runner (runtime/): the same contexts, boundary
 * checks, claims, disposal and retries as on the hosts. What the hosts put around the runner is
 * replaced by in-memory parts: one node joined by an in-memory link, routes reached by inject()
 * instead of sockets, a fake clock, and captures of every report, command, message, event, webhook
 * and metric, for a test to read.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { z } from 'zod';
import type { Capabilities } from '../capabilities.ts';
import type { AgentHalf, DeliverOptions, NodeIdentity, NodeInfo, PluginDefinition, PluginSpec } from '../contract.ts';
import { createLog, type Log } from '../log.ts';
import { MetricsRegistry } from '../metrics.ts';
import { nodeDownMessage } from '../nodes.ts';
import { AgentRuntime } from '../../../runtime/agent-runtime.ts';
import { hostBoundary } from '../../../runtime/boundary.ts';
import { ControllerRuntime, type NodeDirectory } from '../../../runtime/controller-runtime.ts';
import { createEventBus } from '../../../runtime/events.ts';
import type { PluginStatus } from '../../../runtime/link.ts';
import { createListenPort } from '../../../runtime/listen.ts';
import { NO_PEERS, type PeerPort } from '../../../runtime/context-parts.ts';
import { requireNode } from '../../../runtime/node-require.ts';
import { RouteTable } from '../../../runtime/route-table.ts';
import type { PluginRunner } from '../../../runtime/runner.ts';
import { ManualLease } from '../../../runtime/cluster/lease.ts';
import { runSingleton } from '../../../runtime/cluster/singleton.ts';
import { fakeClock, letRunsFinish, realClock, turn, until, type Clock } from './clock.ts';
import { InMemoryRoutes, type InjectRequest, type InjectResponse } from './inject.ts';
import { InMemoryLink, wireCopy, type CapturedMessage } from './link.ts';

type Cfg<S extends PluginSpec> = z.input<S['config']>;
type Commands<S extends PluginSpec> = NonNullable<S['commands']>;
type Reports<S extends PluginSpec> = NonNullable<S['reports']>;

export interface TestPluginOptions<S extends PluginSpec> {
  plugin: PluginDefinition<S>;
  /** The plugin's config on both halves (the controller pushes its config to agents). */
  config?: Cfg<S>;
  /** The agent half's config when it differs (an agent's own file before any push). */
  agentConfig?: Cfg<S>;
  /** Which halves run; default every half the plugin has. */
  halves?: Array<'agent' | 'controller'>;
  /** Other plugins run alongside on the same halves (a dependency whose events this one consumes). */
  with?: Array<{ plugin: PluginDefinition; config?: unknown }>;
  /** The node the agent half runs on: identity, what its host can do, whether it is the local node. */
  node?: Partial<NodeIdentity> & { capabilities?: Capabilities; local?: boolean };
  /** Other enrolled nodes, with no agent here: never connected, running nothing. */
  others?: Array<Partial<NodeInfo> & { id: string; name: string }>;
  /** 'fake' (default): timers and Date move only with clock.tick(). */
  clock?: 'fake' | 'real';
  /** Start time of the fake clock (ms since the epoch). */
  now?: number;
  /** Data dir (default: a temp dir removed on close). */
  dataDir?: string;
  /** Whether the controller holds the singleton lease when the plugins start (default: held, as a single controller does). */
  lease?: 'held' | 'lost';
  /**
   * Other controllers for ctx.peers (default none, as on a single controller): their ids, and what
   * this plugin's onPeer there answers (a throw is that controller's error).
   */
  peers?: { list: string[]; answer(controller: string, method: string, body: unknown): unknown };
  /** Backoff of failed starts (default 1 s doubling, capped at 30 s: on the fake clock, tick past it). */
  retry?: { baseMs: number; maxMs: number };
}

export interface CapturedReport {
  plugin: string;
  type: string;
  data: unknown;
  seq: number;
  /** Why the controller refused it (boundary) or its handler failed, if it did. */
  error?: string;
}
export interface CapturedCommand {
  plugin: string;
  action: string;
  args: unknown;
  result?: unknown;
  error?: string;
}
export interface CapturedEvent {
  event: string;
  payload: unknown;
}
export interface CapturedWebhook {
  id: string;
  url: string;
  body: string;
  contentType: string;
  event: string;
  key?: string;
  /** The signing secret as the outbox would store it (revealed: the harness is the outbox here). */
  secret?: string;
}
export interface LogLine {
  level: number;
  msg: string;
  plugin?: string;
  err?: string;
  [k: string]: unknown;
}

export interface PluginHarness<S extends PluginSpec> {
  readonly spec: S;
  readonly dataDir: string;
  readonly clock: Clock;
  /** The node as the controller sees it (its plugins are the agent runner's live status). */
  readonly node: NodeInfo;
  readonly reports: CapturedReport[];
  readonly commands: CapturedCommand[];
  readonly messages: CapturedMessage[];
  readonly events: CapturedEvent[];
  readonly webhooks: CapturedWebhook[];
  /** The plugin turning failed or coming back, per host. */
  readonly transitions: Array<{ host: 'agent' | 'controller'; plugin: string; change: 'failed' | 'recovered'; error?: string }>;
  readonly logs: LogLine[];
  /** The runtimes themselves, for what the harness does not wrap. */
  readonly agent: AgentRuntime;
  readonly controller: ControllerRuntime;
  /** A request to a host's routes, through the runtime's request path (admin token sent unless `admin: false`). */
  inject(req: InjectRequest): Promise<InjectResponse>;
  /** The Prometheus exposition of a host's registry. */
  metrics(host?: 'agent' | 'controller'): string;
  /** One series' value, or undefined when it is not exposed. */
  metric(name: string, labels?: Record<string, string>, host?: 'agent' | 'controller'): number | undefined;
  /** Each host's plugin states (this plugin and its `with` plugins). */
  status(): { agent: PluginStatus[]; controller: PluginStatus[] };
  /** A command from the controller side, as ctx.command sends it (args and result checked at both ends). */
  command<K extends keyof Commands<S> & string>(action: K, args: z.input<Commands<S>[K]['args']>): Promise<z.output<Commands<S>[K]['result']>>;
  /** A report as if the agent half had sent it (the controller's boundary checks it). */
  report<T extends keyof Reports<S> & string>(type: T, data: z.input<Reports<S>[T]>): Promise<void>;
  /** An event as the controller's bus carries it (another plugin's, or a core `node.*` one). */
  emit(event: string, payload: unknown): void;
  /**
   * Connects or disconnects the node: node.up / node.down reach the plugins, messages are dropped
   * while it is down, and reports wait in the outbox until it is up again (then go in order).
   */
  setNode(state: 'up' | 'down'): void;
  /** A new config pushed live to the halves (update() or a clean restart); to the controller only when the spec says pushConfig: false, unless `host` names the agent. */
  configure(config: Cfg<S>, host?: 'agent' | 'controller'): Promise<void>;
  /** Resolves once delivered reports and messages have been handled and no start or stop is running. */
  settle(): Promise<void>;
  /**
   * The controller gains the singleton lease (a new term, epoch + 1): ctx.singleton work starts.
   * Resolves with the epoch once the work's start has run.
   */
  holdLease(): Promise<number>;
  /** The controller loses the lease: ctx.singleton work is disposed of; resolves once it is. */
  loseLease(): Promise<void>;
  /** The epoch of the term held now, or undefined while the lease is lost. */
  leaseEpoch(): number | undefined;
  /** Polls fn in real time until truthy (between polls, nothing moves the fake clock). */
  until<T>(what: string, fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

/** The harness controller's id (ctx.peers.self, NodeInfo.controller of the connected node). */
export const HARNESS_CONTROLLER = 'ctl_harness';

/** ctx.peers over the test's stand-in controllers: answers through a copy of the wire (Buffers survive). */
function harnessPeers(p: TestPluginOptions<PluginSpec>['peers']): PeerPort {
  if (!p) return { ...NO_PEERS, self: () => HARNESS_CONTROLLER };
  const call = async (controller: string, _plugin: string, method: string, body: unknown): Promise<unknown> => {
    if (!p.list.includes(controller)) throw new Error(`controller ${controller} is not a live peer of this one`);
    try {
      return wireCopy(await p.answer(controller, method, wireCopy(body, true)), true);
    } catch (err) {
      throw new Error(`controller ${controller} answered ${method}: ${(err as Error).message}`);
    }
  };
  return {
    self: () => HARNESS_CONTROLLER,
    list: () => p.list.map((id) => ({ id })),
    call: (controller, plugin, method, body) => call(controller, plugin, method, body),
    broadcast: (plugin, method, body) =>
      Promise.all(p.list.map((controller) => call(controller, plugin, method, body).then((result) => ({ controller, ok: true as const, result }), (err: Error) => ({ controller, ok: false as const, error: err.message })))),
  };
}

/** A pino logger whose records land in `lines` (the real logger: Secrets print as `***` here too). */
function captureLog(lines: LogLine[]): Log {
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  return createLog('harness', 'debug', sink);
}

export async function testPlugin<S extends PluginSpec>(opts: TestPluginOptions<S>): Promise<PluginHarness<S>> {
  const defs: PluginDefinition[] = [opts.plugin as unknown as PluginDefinition, ...(opts.with ?? []).map((w) => w.plugin)];
  const name = opts.plugin.spec.name;
  const halves = opts.halves ?? [...(opts.plugin.agent ? ['agent' as const] : []), ...(opts.plugin.controller ? ['controller' as const] : [])];
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), `outpost-harness-${name}-`)));
  // After each step of the fake clock, what its timers started is delivered before the next step.
  const clock = opts.clock === 'real' ? realClock() : fakeClock(opts.now ?? Date.UTC(2024, 0, 1), () => settle());
  const logs: LogLine[] = [];
  const log = captureLog(logs);
  const load = async (n: string): Promise<PluginDefinition> => {
    const def = defs.find((d) => d.spec.name === n);
    if (!def) throw new Error(`unknown plugin "${n}"`);
    return def;
  };
  const retry = opts.retry ?? { baseMs: 1000, maxMs: 30_000 };
  const transitions: PluginHarness<S>['transitions'] = [];
  const registries = { agent: new MetricsRegistry(), controller: new MetricsRegistry() };
  const routes = { agent: new InMemoryRoutes(), controller: new InMemoryRoutes() };

  const identity: NodeIdentity = { id: opts.node?.id ?? 'n1', name: opts.node?.name ?? 'node-1', labels: opts.node?.labels ?? {}, address: opts.node?.address ?? '127.0.0.1' };
  let connected = true;
  let since = clock.now();
  const link = new InMemoryLink(identity.id, () => connected);

  const reports: CapturedReport[] = [];
  /** Reports made while the node was down: the outbox keeps them until the link is back. */
  const held: CapturedReport[] = [];
  const commands: CapturedCommand[] = [];
  const events: CapturedEvent[] = [];
  const webhooks: CapturedWebhook[] = [];
  let seq = 0;
  let reportChain: Promise<void> = Promise.resolve();

  // Built after the runtimes below; the node directory reads the agent runner's status.
  let agentRunner: PluginRunner<AgentHalf<PluginSpec>> | undefined;
  const nodeInfo = (): NodeInfo => ({
    ...identity,
    state: connected ? 'up' : 'down',
    connected,
    lastHeartbeat: connected ? clock.now() : null,
    since,
    plugins: halves.includes('agent') && agentRunner ? agentRunner.status() : [],
    ...(opts.node?.capabilities ? { capabilities: opts.node.capabilities } : {}),
    ...(connected ? { controller: HARNESS_CONTROLLER } : {}),
    local: opts.node?.local ?? false,
  });
  const others: NodeInfo[] = (opts.others ?? []).map((o) => ({ labels: {}, address: '', state: 'unknown', connected: false, lastHeartbeat: null, since: null, plugins: [], local: false, ...o }));
  const all = () => [nodeInfo(), ...others];
  const bus = createEventBus((event, err) => log.error({ event, err: (err as Error)?.message }, 'event listener failed'));
  // As the registry resolves: by id, then name, then address; the default is the local node, or the only one.
  const lookup = {
    resolve: (ref: string) => all().find((n) => n.id === ref) ?? all().find((n) => n.name === ref) ?? all().find((n) => n.address === ref),
    defaultNode: () => all().find((n) => n.local) ?? (all().length === 1 ? nodeInfo() : undefined),
    count: () => all().length,
  };
  const directory: NodeDirectory = {
    list: all,
    get: (id) => all().find((n) => n.id === id),
    resolve: lookup.resolve,
    defaultNode: lookup.defaultNode,
    require: (ref, plugin) => requireNode(lookup, ref, plugin),
    on: (event, handler) => bus.on(`node.${event}`, (p) => handler((p as { node: NodeInfo }).node)),
  };

  const agent = new AgentRuntime({
    dataDir: join(dataDir, 'agent'),
    log,
    metrics: registries.agent,
    node: identity,
    capabilities: opts.node?.capabilities ?? {},
    routes: new RouteTable(routes.agent),
    report: async (plugin, type, data) => {
      const entry: CapturedReport = { plugin, type, data: wireCopy(data), seq: ++seq };
      reports.push(entry);
      if (connected) forward(entry);
      else held.push(entry);
    },
    channels: link.agent,
    listen: createListenPort(log),
    boundary: hostBoundary(registries.agent),
    load,
    retry,
    onTransition: (plugin, change, error) => transitions.push({ host: 'agent', plugin, change, error }),
  });
  agentRunner = agent.runner;

  /** In order, one at a time, like the outbox; the controller's boundary may refuse one (acked with the error). */
  function forward(entry: CapturedReport): void {
    reportChain = reportChain.then(async () => {
      if (!halves.includes('controller')) return;
      try {
        await controller.report({ nodeId: identity.id, seq: entry.seq, ts: clock.now() }, entry.plugin, entry.type, wireCopy(entry.data));
      } catch (err) {
        entry.error = (err as Error).message;
      }
    });
  }

  /** The command RPC over the link: what the controller's link server does with ctx.command. */
  const rpc = async (nodeId: string, plugin: string, action: string, args: unknown, timeoutMs: number): Promise<unknown> => {
    const entry: CapturedCommand = { plugin, action, args: wireCopy(args) };
    commands.push(entry);
    try {
      if (nodeId !== identity.id) throw new Error(`unknown node "${nodeId}"`);
      if (!connected) throw new Error(nodeDownMessage(identity.name));
      if (!halves.includes('agent')) throw new Error(`the harness runs no agent half of ${plugin}`);
      entry.result = wireCopy(await agent.command(plugin, action, wireCopy(args), clock.now() + timeoutMs));
      return wireCopy(entry.result);
    } catch (err) {
      entry.error = (err as Error).message;
      throw err;
    }
  };
  const controllerBoundary = hostBoundary(registries.controller);
  const COMMAND_TIMEOUT_MS = 10_000;

  const lease = new ManualLease('singleton', HARNESS_CONTROLLER);
  if ((opts.lease ?? 'held') === 'held') lease.grant();
  /** Each ctx.singleton: the epoch it last started for and ended, and the start or stop in progress. */
  const singletons = new Set<{ started: number; ended: number; moving: Promise<unknown> }>();
  const controller = new ControllerRuntime({
    peers: harnessPeers(opts.peers),
    singleton(what, start) {
      // Each start and stop is tracked, so holdLease/loseLease resolve once the work has moved.
      const entry = { started: 0, ended: 0, moving: Promise.resolve() as Promise<unknown> };
      singletons.add(entry);
      const stop = runSingleton(lease, what, log, (term) => {
        entry.started = term.epoch;
        const started = Promise.resolve(start(term));
        entry.moving = started;
        return started.then((dispose) => () => {
          const d = Promise.resolve(dispose?.()).finally(() => {
            entry.ended = term.epoch;
          });
          entry.moving = d;
          return d;
        });
      });
      return async () => {
        singletons.delete(entry);
        await stop();
      };
    },
    dataDir: join(dataDir, 'controller'),
    log,
    metrics: registries.controller,
    routes: new RouteTable(routes.controller),
    nodes: directory,
    command: rpc,
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
    channels: link.controller,
    listen: createListenPort(log),
    events: {
      async record(event, data) {
        events.push({ event, payload: wireCopy(data) });
        bus.emit(event, data);
      },
      on: (event, handler) => bus.on(event, handler),
    },
    async deliver(url, body, o: Omit<DeliverOptions, 'secret'> & { secret?: string; event: string }) {
      const id = o.id ?? `dl_${webhooks.length + 1}`;
      if (!webhooks.some((w) => w.id === id)) webhooks.push({ id, url, body, contentType: o.contentType ?? 'application/json', event: o.event, key: o.key, secret: o.secret });
      return id;
    },
    boundary: controllerBoundary,
    load,
    retry,
    onTransition: (plugin, change, error) => transitions.push({ host: 'controller', plugin, change, error }),
  });

  const configs = (host: 'agent' | 'controller') => Object.fromEntries([[name, (host === 'agent' ? (opts.agentConfig ?? opts.config) : opts.config) ?? {}], ...(opts.with ?? []).map((w) => [w.plugin.spec.name, w.config ?? {}])]);
  // The controller first, as in a cluster: an agent's first report finds its handler ready.
  try {
    if (halves.includes('controller')) await controller.runner.startAll(configs('controller'));
    if (halves.includes('agent')) await agent.runner.startAll(configs('agent'));
  } catch (err) {
    // The runner fails plugins, not itself; anything else must not leave the process on a fake clock.
    clock.release();
    throw err;
  }

  async function settle(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      await letRunsFinish();
      await agent.runner.idle();
      await controller.runner.idle();
      await link.settled();
      await reportChain;
      await turn();
    }
  }

  /** Waits (a few turns at most) until every singleton reached `done`, then for its start or stop to finish. */
  async function singletonsMoved(done: (e: { started: number; ended: number }) => boolean): Promise<void> {
    for (let i = 0; i < 50 && ![...singletons].every(done); i++) await turn();
    await Promise.allSettled([...singletons].map((e) => e.moving));
    await settle();
  }

  let closed = false;
  return {
    async holdLease() {
      const { epoch } = lease.grant();
      await singletonsMoved((e) => e.started >= epoch);
      return epoch;
    },
    async loseLease() {
      const epoch = lease.current()?.epoch;
      if (epoch === undefined) return;
      lease.revoke('the test took the lease away');
      await singletonsMoved((e) => e.ended >= epoch || e.started < epoch);
    },
    leaseEpoch: () => lease.current()?.epoch,
    spec: opts.plugin.spec,
    dataDir,
    clock,
    get node() {
      return nodeInfo();
    },
    reports,
    commands,
    messages: link.messages,
    events,
    webhooks,
    transitions,
    logs,
    agent,
    controller,
    inject: (req) => routes[req.host ?? 'controller'].inject(req, log),
    metrics: (host = 'controller') => registries[host].render(),
    metric(metricName, labels = {}, host = 'controller') {
      const want = Object.keys(labels).sort().map((k) => `${k}="${labels[k]}"`).join(',');
      const prefix = want ? `${metricName}{${want}} ` : `${metricName} `;
      const line = registries[host].render().split('\n').find((l) => l.startsWith(prefix));
      return line === undefined ? undefined : Number(line.slice(prefix.length));
    },
    status: () => ({ agent: agent.runner.status(), controller: controller.runner.status() }),
    async command(action, args) {
      const commandSpecs = Object.entries(opts.plugin.spec.commands ?? {});
      controllerBoundary.check(name, 'command', action, Object.fromEntries(commandSpecs.map(([k, c]) => [k, c.args])), args);
      const result = await rpc(identity.id, name, action, args, COMMAND_TIMEOUT_MS);
      return controllerBoundary.check(name, 'result', action, Object.fromEntries(commandSpecs.map(([k, c]) => [k, c.result])), result);
    },
    async report(type, data) {
      await controller.report({ nodeId: identity.id, seq: ++seq, ts: clock.now() }, name, type, wireCopy(data));
    },
    emit: (event, payload) => bus.emit(event, payload),
    setNode(state) {
      const now = state === 'up';
      if (now === connected) return;
      connected = now;
      since = clock.now();
      bus.emit(`node.${state}`, { node: nodeInfo() });
      if (connected) for (const entry of held.splice(0)) forward(entry);
    },
    async configure(config, host) {
      if (host !== 'agent' && halves.includes('controller')) await controller.runner.apply(name, config);
      // As on the hosts: a config that is not pushed reaches the agent only when the test names it.
      const pushed = opts.plugin.spec.pushConfig !== false;
      if (halves.includes('agent') && (host === 'agent' || (host === undefined && pushed))) await agent.runner.apply(name, config);
    },
    settle,
    until,
    async close() {
      if (closed) return;
      closed = true;
      try {
        await settle();
        await agent.runner.stopAll();
        await controller.runner.stopAll();
      } finally {
        clock.release();
        if (ownDir) await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}
