/**
 * The plugin contract, v2: what a plugin declares (its spec: names and schemas) and what each host
 * hands each half (its context). Types only, plus the three define* functions that tie a spec to
 * its halves. The runtime (runtime/) implements it; no plugin sees the runtime.
 *
 * Why a spec separate from the halves: each half imports the spec for its types, and index.ts
 * imports each half lazily (`() => import('./agent.ts')`). If a half took its types from index.ts
 * the types would be circular; and a host must be able to validate reports, commands and messages
 * of a plugin whose other half it never loads.
 */
import type { z } from 'zod';
import type { Log } from './log.ts';
import type { Secret } from './secret.ts';
import type { Metrics } from './metrics.ts';
import type { Route } from './http.ts';
import type { Scheduler } from './scheduler.ts';
import type { Store } from './store.ts';
import type { Capabilities } from './capabilities.ts';
import type { Html } from './html.ts';
import type { DurableLog, LogOptions } from './durable/log.ts';
import type { DueQueue, QueueOptions } from './durable/queue.ts';

// ---------------------------------------------------------------------------------------------
// The spec

export type SchemaMap = Record<string, z.ZodType>;
export interface CommandSpec<A extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType> {
  args: A;
  result: R;
}
export type CommandMap = Record<string, CommandSpec>;

export interface PluginSpec<
  C extends z.ZodType = z.ZodType,
  R extends SchemaMap = SchemaMap,
  K extends CommandMap = CommandMap,
  TA extends SchemaMap = SchemaMap,
  TC extends SchemaMap = SchemaMap,
  E extends SchemaMap = SchemaMap,
> {
  /** Folder name under plugins/; `[a-z][a-z0-9-]*`. */
  name: string;
  /** The plugin's config; a bad config fails the plugin with a message naming the field. */
  config: C;
  /** Agent → controller, durable (outbox), in order, applied once per (node, seq). */
  reports?: R;
  /** Controller → agent RPC with a deadline; args and result validated at the boundary. */
  commands?: K;
  /**
   * Best-effort messages, no disk: dropped and counted when a link is down or a link's send queue
   * passes its high-water mark. Buffer values anywhere in a message travel as raw bytes in a binary
   * WebSocket frame (never base64).
   */
  messages?: { toAgent?: TA; toController?: TC };
  /**
   * Events by full name (`<namespace>.<event>`): durable (in the controller's event log before
   * emit() resolves), listed at /api/v1/events, subscribable as webhooks, and visible to the plugins
   * that declare this one in `dependencies`.
   */
  events?: E;
  /**
   * What the plugin claims beyond its name, checked for collisions between plugins at load:
   * event namespaces (default [name]), metric name prefixes (default [`outpost_<name with _>_`]),
   * HTTP route paths on the controller and agent (exact, or a prefix ending in `*`).
   */
  claims?: { events?: string[]; metrics?: string[]; routes?: string[] };
  /**
   * Plugins whose events this one consumes; started first, and a missing or cyclic one fails this
   * plugin on the controller. Events exist on the controller only, so on an agent a dependency that
   * is not configured there does not hold the plugin back (one that is configured still starts first).
   */
  dependencies?: string[];
  /**
   * Whether a config set on the controller (PUT /api/v1/plugins/:name/config) is pushed to agents;
   * default true. false: the controller's config stays on the controller (it holds credentials only
   * the controller uses, e.g. DNS provider keys) and each agent runs its half on its own config file.
   */
  pushConfig?: boolean;
}

/** What `index.ts` default-exports: the spec plus the lazy halves. */
export interface PluginDefinition<S extends PluginSpec = PluginSpec> {
  spec: S;
  /** Imported only by a host that runs this plugin's agent half. */
  agent?: () => Promise<{ default: AgentModule<S> }>;
  /** Imported only by a host that runs this plugin's controller half. */
  controller?: () => Promise<{ default: ControllerModule<S> }>;
}

type Cfg<S extends PluginSpec> = z.output<S['config']>;
type Reports<S extends PluginSpec> = NonNullable<S['reports']>;
type Commands<S extends PluginSpec> = NonNullable<S['commands']>;
type ToAgent<S extends PluginSpec> = NonNullable<NonNullable<S['messages']>['toAgent']>;
type ToController<S extends PluginSpec> = NonNullable<NonNullable<S['messages']>['toController']>;
type Events<S extends PluginSpec> = NonNullable<S['events']>;

// ---------------------------------------------------------------------------------------------
// Shared by both contexts

export interface NodeIdentity {
  id: string;
  name: string;
  labels: Record<string, string>;
  address: string;
}

export interface NodeInfo extends NodeIdentity {
  state: 'up' | 'down' | 'unknown';
  /**
   * The node's agent is linked to a live controller, this one or another sharing the database (a node
   * can be connected and not yet counted up). Commands, send and broadcast reach it either way.
   */
  connected: boolean;
  /** Id of the controller holding the node's link (`ctx.peers.self` when it is this one); absent when not linked. */
  controller?: string;
  lastHeartbeat: number | null;
  /** Since when the node has been in its current state (ms since the epoch), for hysteresis. */
  since: number | null;
  plugins: Array<{ name: string; state: string; error?: string }>;
  /** What the node's host can do (`icmp`, `docker`), from its agent's last hello; absent before the first. */
  capabilities?: Capabilities;
  local: boolean;
}

/** What a plugin chooses for its own log; the host supplies the folder, logger and storage health. */
export type PluginLogOptions<R> = Pick<LogOptions<R>, 'load' | 'snapshot' | 'fsync' | 'fsyncIntervalMs' | 'compactAfterBytes'>;
export type PluginQueueOptions = Pick<QueueOptions, 'fsync' | 'fsyncIntervalMs' | 'compactAfterBytes'>;

/** What both halves' contexts hold. */
export interface CommonContext<C> {
  /** Validated config. */
  readonly config: C;
  /** Child logger with `{plugin}`; secrets redacted by construction (Secret values). */
  readonly log: Log;
  /** Aborts when the plugin stops (or its start failed): pass it to fetch, timers, child processes. */
  readonly signal: AbortSignal;
  /** The plugin's own directory under the host's data dir (files there are 0600, dirs 0700). */
  readonly dataDir: string;
  /** Names must start with one of the plugin's metric claims; families are removed when it stops. */
  readonly metrics: Metrics;
  /** Timers without overlap; all stopped when the plugin stops. */
  readonly schedule: Scheduler;
  /** The plugin's own store (`<plugin>.json`), untyped; `openStore(defaults)` gives the same store typed. Closed on stop. */
  readonly store: Store<Record<string, unknown>>;
  /** The plugin's own store typed, its missing top-level fields filled from defaults (the same store as `store`). */
  openStore<T extends object>(defaults: T): Promise<Store<T>>;
  /** Another store of the plugin's, `<plugin>.<name>.json`. Closed on stop. */
  openStore<T extends object>(name: string, defaults: T): Promise<Store<T>>;
  /**
   * An append-only log of the plugin's records, `<plugin>.<name>` under dataDir (plugins/sdk/durable/log.ts:
   * the owner keeps state in memory, `load` rebuilds it at open, `snapshot` compacts it). Closed on stop.
   */
  openLog<R>(name: string, schema: z.ZodType<R>, opts: PluginLogOptions<R>): Promise<DurableLog<R>>;
  /** A durable due-time queue, `<plugin>.<name>` under dataDir (plugins/sdk/durable/queue.ts; `work()` consumes it). Closed on stop. */
  openQueue<T>(name: string, schema: z.ZodType<T>, opts?: PluginQueueOptions): Promise<DueQueue<T>>;
}

// ---------------------------------------------------------------------------------------------
// Agent half

export interface TcpListenOptions {
  host: string;
  port: number;
}
export interface HttpListenOptions extends TcpListenOptions {
  /** PEM files; when set the listener speaks TLS (HTTPS/WSS). */
  tls?: { certFile: string; keyFile: string };
}
export interface Listener {
  readonly port: number;
  close(): Promise<void>;
}

/** Listeners on the plugin's own ports, closed (with their connections) when the plugin stops. */
export interface ListenContext {
  /** A node:net server; bind errors reject with a message naming host and port. */
  tcp(opts: TcpListenOptions, onConnection: (socket: import('node:net').Socket) => void): Promise<Listener>;
  /**
   * A hyper-express server (uWS is loaded only by plugins that call this). Routes and WebSocket
   * handlers are added by `setup` before it listens.
   */
  http(opts: HttpListenOptions, setup: (app: import('hyper-express').Server) => void): Promise<Listener>;
}

export interface AgentContext<S extends PluginSpec> extends CommonContext<Cfg<S>> {
  readonly node: NodeIdentity;
  /** What this host can do, detected at agent start (e.g. icmp unavailable when ping is not installed). */
  readonly capabilities: Capabilities;
  /** Durable: on disk in the outbox before it resolves; delivered at least once, in order, applied once. */
  report<T extends keyof Reports<S> & string>(type: T, data: z.input<Reports<S>[T]>): Promise<void>;
  /** Best-effort to the controller; false when dropped (link down or over its high-water mark). */
  send<T extends keyof ToController<S> & string>(type: T, msg: z.input<ToController<S>[T]>): boolean;
  listen: ListenContext;
  /** Routes on the agent's local API (:7071). */
  http: { mount(routes: Route[]): void };
}

export interface CommandMeta {
  /** Past this (ms since the epoch) the caller has given up. */
  deadline: number;
  signal: AbortSignal;
}

export interface AgentHalf<S extends PluginSpec> {
  start?(): Promise<void> | void;
  /** Everything registered through the context is disposed of after stop() anyway. */
  stop?(): Promise<void> | void;
  /** A new config pushed live; without update() the host restarts the plugin. */
  update?(config: Cfg<S>): Promise<void> | void;
  commands?: { [K in keyof Commands<S>]: (args: z.output<Commands<S>[K]['args']>, meta: CommandMeta) => Promise<z.input<Commands<S>[K]['result']>> | z.input<Commands<S>[K]['result']> };
  onMessage?: { [K in keyof ToAgent<S>]?: (msg: z.output<ToAgent<S>[K]>) => void };
}

export interface AgentModule<S extends PluginSpec> {
  readonly half: 'agent';
  readonly spec: S;
  readonly create: (ctx: AgentContext<S>) => AgentHalf<S>;
}

// ---------------------------------------------------------------------------------------------
// Controller half

export interface ReportMeta {
  nodeId: string;
  /** Per-node sequence number; never the same (node, seq) twice. */
  seq: number;
  ts: number;
}

export interface DeliverOptions {
  contentType?: string;
  /** Signs each attempt with X-Outpost-Signature; revealed only into the controller's 0600 outbox. */
  secret?: Secret;
  /** Deliveries sharing a key go out in order; default: the URL. */
  key?: string;
  /** Label in the delivery log, e.g. "prober.callback". */
  event?: string;
  /**
   * Caller-chosen id (idempotent enqueue: the same id twice is one delivery, while the first is pending,
   * dead, or among the last 2,000 delivered). The delivery's id is `<plugin>:<id>`; 1-120 letters,
   * digits, ".", "_", "-" or ":".
   */
  id?: string;
}

export interface PanelAction {
  /** Shown on the button. */
  label: string;
  method: 'POST' | 'PUT' | 'DELETE';
  /** A route of this plugin (admin auth; the dashboard adds its session and CSRF token). */
  path: string;
  confirm?: string;
}

export interface DashboardPanel {
  title: string;
  /**
   * An HTML fragment that shows no secret. Build it with the SDK's panel helpers (`table`, `badge`,
   * `keyValues`, `form`, `actionButton`, `html`), which escape every text; a plain string is taken as
   * markup, so anything embedded in it must go through `esc`. The dashboard's CSP allows no inline
   * script, event handler or style attribute. Rendered on every refresh for every signed-in browser:
   * keep it cheap and the same for everyone.
   */
  render(): Promise<string | Html> | string | Html;
}

/** A term of the singleton lease, as singleton work sees it (ControllerContext.singleton). */
export interface SingletonTerm {
  /** The lease's epoch: higher for every new holder. */
  epoch: number;
  /** Aborted when this controller loses the lease (or the plugin stops). */
  signal: AbortSignal;
  /** Timers for this term: stopped when it ends. */
  schedule: Scheduler;
  /**
   * Runs fn as this term's work, whoever calls it (a route handler, a report, a queue's callback):
   * its writes carry the term's epoch and are refused once another controller took over.
   */
  run<R>(fn: () => R): R;
}

/** One controller's answer to `ctx.peers.broadcast`. */
export type PeerAnswer = { controller: string; ok: true; result: unknown } | { controller: string; ok: false; error: string };

/**
 * The other controllers sharing this one's database, as one plugin sees them: calls to the same
 * plugin's `onPeer` handlers there, over an authenticated internal HTTP call. Bodies and results are
 * JSON values in which Buffers travel as raw bytes (they arrive as Buffers). On files (one controller)
 * there are none.
 */
export interface PeersContext {
  /** This controller's id (what NodeInfo.controller holds for nodes linked here). */
  readonly self: string;
  /** Other live controllers (link presence); [] on files or alone. */
  list(): Array<{ id: string }>;
  /** This plugin's onPeer[method] on one controller; rejects with an Error naming the controller and why. */
  call(controller: string, method: string, body: unknown, opts?: { timeoutMs?: number }): Promise<unknown>;
  /** On every other live controller at once; never rejects: one answer per controller. */
  broadcast(method: string, body: unknown, opts?: { timeoutMs?: number }): Promise<PeerAnswer[]>;
}

/** What singleton work's start returns: how to stop it (awaited before a next term's start). */
export type SingletonDispose = void | (() => unknown);

export interface ControllerContext<S extends PluginSpec> extends CommonContext<Cfg<S>> {
  /**
   * Singleton work: what must run on one controller at a time when several share one database
   * (decisions, callbacks, deliveries, dispatch). `start` runs when this controller becomes the lease
   * holder (at once on a single controller), and is disposed of when it loses the lease: its term's
   * timers stop, the function it returned runs. Every store, log and queue write made from it carries
   * the lease's epoch and is refused (StaleLeaseError) once another controller took over. Routes,
   * reports and event listeners stay on every controller. Returns a stop (also run when the plugin stops).
   */
  singleton(start: (term: SingletonTerm) => SingletonDispose | Promise<SingletonDispose>): () => Promise<void>;
  routes: { mount(routes: Route[]): void };
  /** Ports of the plugin's own besides the controller's server (e.g. a seed API for clients that server refuses). */
  listen: ListenContext;
  nodes: {
    list(): NodeInfo[];
    get(id: string): NodeInfo | undefined;
    /** By id, name or address. */
    resolve(ref: string): NodeInfo | undefined;
    /** The node `?node=` defaults to: the embedded local node, or the only node. */
    defaultNode(): NodeInfo | undefined;
    /**
     * The node `ref` names (id, name or address; undefined: the default node), linked and running
     * `plugin` (default this one), or throws NodeUnavailable (an HttpError) saying why: unknown node
     * (404), none named (400), down or plugin not running there (503). A route handler can let it through.
     */
    require(ref: string | undefined, plugin?: string): NodeInfo;
    on(event: 'up' | 'down', handler: (node: NodeInfo) => void): () => void;
  };
  command<K extends keyof Commands<S> & string>(nodeId: string, action: K, args: z.input<Commands<S>[K]['args']>, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<z.output<Commands<S>[K]['result']>>;
  /**
   * Calls to this plugin on the other controllers sharing the database (their ControllerHalf.onPeer),
   * e.g. to gather counts or fan a push out to the agents linked there.
   */
  peers: PeersContext;
  /** Best-effort to one node (forwarded when it is linked to another controller); false when dropped. */
  send<T extends keyof ToAgent<S> & string>(nodeId: string, type: T, msg: z.input<ToAgent<S>[T]>): boolean;
  /**
   * Best-effort to many (encoded once); returns how many links took it. Nodes linked to other
   * controllers are handed to those in one call per controller, and counted as taken once handed over.
   */
  broadcast<T extends keyof ToAgent<S> & string>(nodeIds: string[] | 'all', type: T, msg: z.input<ToAgent<S>[T]>): number;
  events: {
    /** Durable: resolves once the event is in the controller's event log (and so reaches its webhooks). */
    emit<E extends keyof Events<S> & string>(event: E, payload: z.input<Events<S>[E]>): Promise<void>;
    /** Events of a plugin named in `dependencies` (or core `node.*` events), validated against the schema this plugin expects. */
    on<T>(event: string, schema: z.ZodType<T>, handler: (payload: T) => void | Promise<void>): void;
  };
  webhooks: {
    /** Durable delivery of one body to one URL; resolves with the delivery id once on disk. */
    deliver(url: string, body: string, opts?: DeliverOptions): Promise<string>;
  };
}

export interface ControllerHalf<S extends PluginSpec> {
  start?(): Promise<void> | void;
  stop?(): Promise<void> | void;
  update?(config: Cfg<S>): Promise<void> | void;
  onReport?: { [K in keyof Reports<S>]?: (meta: ReportMeta, data: z.output<Reports<S>[K]>) => Promise<void> | void };
  onMessage?: { [K in keyof ToController<S>]?: (nodeId: string, msg: z.output<ToController<S>[K]>) => void };
  /**
   * What other controllers may ask this plugin (`ctx.peers.call/broadcast` there): method → handler of
   * the body, `from` being the calling controller's id. Its result (or its error's message) is the answer.
   * Not called on files; a stopped plugin's handlers answer an error.
   */
  onPeer?: Record<string, (body: any, from: string) => unknown | Promise<unknown>>;
  panel?: DashboardPanel;
}

export interface ControllerModule<S extends PluginSpec> {
  readonly half: 'controller';
  readonly spec: S;
  readonly create: (ctx: ControllerContext<S>) => ControllerHalf<S>;
}

// ---------------------------------------------------------------------------------------------
// define*

/** Declares a plugin's names and schemas; the literal types drive every context method's types. */
export function defineSpec<C extends z.ZodType, R extends SchemaMap = {}, K extends CommandMap = {}, TA extends SchemaMap = {}, TC extends SchemaMap = {}, E extends SchemaMap = {}>(spec: PluginSpec<C, R, K, TA, TC, E>): PluginSpec<C, R, K, TA, TC, E> {
  return spec;
}

export function definePlugin<S extends PluginSpec>(spec: S, halves: Omit<PluginDefinition<S>, 'spec'>): PluginDefinition<S> {
  return { spec, ...halves };
}

export function defineAgent<S extends PluginSpec>(spec: S, create: (ctx: AgentContext<S>) => AgentHalf<S>): AgentModule<S> {
  return { half: 'agent', spec, create };
}

export function defineController<S extends PluginSpec>(spec: S, create: (ctx: ControllerContext<S>) => ControllerHalf<S>): ControllerModule<S> {
  return { half: 'controller', spec, create };
}
