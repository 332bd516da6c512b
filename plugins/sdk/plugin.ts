import type { z } from 'zod';
import type { Log } from './log.ts';
import type { Store } from './store.ts';
import type { Scheduler } from './scheduler.ts';
import type { EventBus } from './events.ts';
import type { Metrics } from './metrics.ts';
import type { Route } from './http.ts';
import type { Capabilities } from './capabilities.ts';
import type { Html } from './html.ts';

export interface NodeIdentity {
  id: string;
  name: string;
  labels: Record<string, string>;
  address: string;
}

export interface NodeInfo extends NodeIdentity {
  state: 'up' | 'down' | 'unknown';
  lastHeartbeat: number | null;
  plugins: Array<{ name: string; state: string; error?: string }>;
  local: boolean;
  /** The agent's link is open (its hello arrived); commands reach it even before its state is "up". */
  connected: boolean;
  /** What the node's host can do (from its agent's last hello; absent before the first). */
  capabilities?: Capabilities;
}

interface CommonContext<C> {
  /** Validated plugin config. */
  config: C;
  log: Log;
  /** The plugin's own store (one file, `<plugin>.json`). Open more with `openStore(name, defaults)`. */
  store: Store<Record<string, unknown>>;
  openStore<T extends object>(name: string, defaults: T): Promise<Store<T>>;
  schedule: Scheduler;
  dataDir: string;
}

export interface AgentContext<C = unknown> extends CommonContext<C> {
  node: NodeIdentity;
  /** What this host can do, detected at agent start (e.g. icmp: false when ping is not installed). */
  capabilities: Capabilities;
  /** Durable: written to the outbox before it resolves, delivered at least once, in order. */
  report(type: string, data: unknown): Promise<void>;
  /** Mounts routes on the agent's local HTTP server. */
  http: { mount(routes: Route[]): void };
  metrics: Metrics;
}

export interface ControllerContext<C = unknown> extends CommonContext<C> {
  routes: { mount(routes: Route[]): void };
  nodes: {
    list(): NodeInfo[];
    get(id: string): NodeInfo | undefined;
    /** The node `?node=` defaults to: the embedded local node, or the only node. */
    defaultNode(): NodeInfo | undefined;
    /** Finds a node by id, name or address. */
    resolve(ref: string): NodeInfo | undefined;
    /**
     * The node `ref` names (id, name or address; undefined: the default node) if `plugin` can take
     * commands there; otherwise throws NodeUnavailable saying why (unknown node, none named, down:
     * no link, plugin not enabled or not running, with its error).
     */
    require(ref: string | undefined, plugin: string): NodeInfo;
    on(event: 'up' | 'down', handler: (node: NodeInfo) => void): () => void;
  };
  /** RPC to the plugin's agent side on a node; rejects with a clear error when the node is down or the deadline passes. */
  command(nodeId: string, action: string, args?: unknown, timeoutMs?: number): Promise<unknown>;
  webhooks: {
    /** Fans an event out to the webhook subscriptions that want it. */
    emit(event: string, payload: unknown): Promise<void>;
    /** Durable delivery of one body to one URL (plugin callbacks). Resolves once queued on disk. */
    deliver(url: string, body: string, opts?: DeliverOptions): Promise<string>;
  };
  events: import('./events.ts').EventBus;
  metrics: Metrics;
  /** Pushes a new config for this plugin to agents (persisted, re-sent on reconnect). */
  pushConfig?(config: unknown): Promise<void>;
}

export interface DeliverOptions {
  contentType?: string;
  /** Signs each attempt with X-Outpost-Signature; kept only in the controller's 0600 outbox file. */
  secret?: string;
  /** Deliveries sharing a key go out in order; default: the URL. */
  key?: string;
  /** Label shown in the delivery log, e.g. "prober.callback". */
  event?: string;
}

export interface AgentPlugin {
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
  /** Handles a controller command; the resolved value is the reply's data, a throw its error. */
  onCommand?(action: string, args: unknown): Promise<unknown> | unknown;
}

export interface ReportMeta {
  nodeId: string;
  /** Per-node sequence number; the host never delivers the same (node, seq) twice. */
  seq: number;
  ts: number;
}

export interface DashboardPanel {
  title: string;
  /**
   * Returns an HTML fragment that shows no secret. Build it with the SDK's panel helpers (`table`,
   * `badge`, `keyValues`, `form`, `actionButton`, `html`), which escape every text; a plain string is
   * taken as markup, so anything embedded in it must go through `esc`. The dashboard's CSP allows no
   * inline script, event handler or style attribute. Rendered again on every refresh (every few
   * seconds) for every signed-in browser: keep it cheap and the same for everyone.
   */
  render(): Promise<string | Html> | string | Html;
}

export interface ControllerPlugin {
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
  onReport?(meta: ReportMeta, type: string, data: unknown): Promise<void> | void;
  panel?: DashboardPanel;
}

export interface PluginDefinition<S extends z.ZodType = z.ZodType> {
  name: string;
  config: S;
  agent?: (ctx: AgentContext<z.infer<S>>) => AgentPlugin;
  controller?: (ctx: ControllerContext<z.infer<S>>) => ControllerPlugin;
  /** Event names this plugin emits; webhook subscriptions may name them. */
  events?: string[];
}

export function definePlugin<S extends z.ZodType>(def: PluginDefinition<S>): PluginDefinition<S> {
  return def;
}

export type { EventBus };
