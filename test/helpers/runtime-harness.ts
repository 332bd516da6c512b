/**
 * The shared runner (runtime/) in-process, for its unit tests: an agent runtime and a controller
 * runtime on one temp data dir, joined by a loopback frame transport (the link's message frames, text
 * and binary, without the sockets), with a real node:http server for plugin routes, a real metrics registry and a
 * logger whose records the tests read back. Plugins come from definitions the test writes inline.
 */
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { NodeInfo, PluginDefinition } from '../../plugins/sdk/contract.ts';
import { restError } from '../../plugins/sdk/http.ts';
import { MetricsRegistry } from '../../plugins/sdk/metrics.ts';
import { AgentRuntime } from '../../runtime/agent-runtime.ts';
import { Boundary } from '../../runtime/boundary.ts';
import { ChannelHub, type ChannelPeer } from '../../runtime/channels.ts';
import { decodeBinaryMessage, type EncodedFrame } from '../../runtime/link-codec.ts';
import { ControllerRuntime, type ControllerRuntimeDeps } from '../../runtime/controller-runtime.ts';
import { createEventBus } from '../../runtime/events.ts';
import { createListenPort } from '../../runtime/listen.ts';
import { RouteTable } from '../../runtime/route-table.ts';
import { LocalApi } from '../../agent/local-api.ts';
import { NO_PEERS } from '../../runtime/context-parts.ts';

import type { LogLine } from '../../plugins/sdk/testing/index.ts';
export type { LogLine };

export interface Harness {
  dir: string;
  metrics: MetricsRegistry;
  lines: LogLine[];
  /** The port plugin routes answer on (agent runtime's routes). */
  port: number;
  agent: AgentRuntime;
  controller: ControllerRuntime;
  reports: Array<{ plugin: string; type: string; data: unknown }>;
  events: Array<{ event: string; data: unknown }>;
  deliveries: Array<{ url: string; body: string; event: string }>;
  transitions: Array<{ host: string; plugin: string; change: string; error?: string }>;
  /** What the controller's command RPC answers (default: runs the agent runtime's command). */
  commandAnswer?: (plugin: string, action: string, args: unknown) => Promise<unknown>;
  nodes: NodeInfo[];
  nodeEvents: EventEmitter;
  /** Each side's message hub; `receive` plays a frame from the peer. */
  hubs: { agent: ChannelHub; controller: ChannelHub };
  /** Agent reports go to the controller runtime like the link would (seq numbered). */
  deliverReports(): Promise<void>;
  close(): Promise<void>;
}

export function node(id: string, plugins: NodeInfo['plugins'] = []): NodeInfo {
  return { id, name: id, labels: {}, address: '127.0.0.1', state: 'up', connected: true, lastHeartbeat: Date.now(), since: null, plugins, local: false };
}

export async function harness(defs: PluginDefinition[], opts: { retryMs?: number } = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-runtime-'));
  const lines: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const metrics = new MetricsRegistry();
  const boundary = new Boundary(metrics.counter('outpost_plugin_boundary_refused_total', 'refused'));
  const load = async (name: string) => {
    const def = defs.find((d) => d.spec.name === name);
    if (!def) throw new Error(`unknown plugin "${name}"`);
    return def;
  };
  const retry = { baseMs: opts.retryMs ?? 30, maxMs: 200 };
  const transitions: Harness['transitions'] = [];

  // The link's frames, both ways, without sockets: what one hub sends the other receives.
  const dropped = metrics.counter('outpost_test_messages_dropped_total', 'dropped');
  const agentHub = new ChannelHub(dropped, log);
  const controllerHub = new ChannelHub(dropped, log);
  const peer = (to: ChannelHub, from: string): ChannelPeer => ({
    buffered: () => 0,
    write(frame: EncodedFrame) {
      const m = frame.binary ? decodeBinaryMessage(frame.data) : JSON.parse(String(frame.data));
      setImmediate(() => to.receive(from, m));
      return true;
    },
  });
  agentHub.attach('', peer(controllerHub, 'n1'));
  controllerHub.attach('n1', peer(agentHub, ''));

  const api = new LocalApi({ log, isAdmin: () => true });
  const reports: Harness['reports'] = [];
  const h: Partial<Harness> = { dir, metrics, lines, reports, events: [], deliveries: [], transitions, nodes: [node('n1')], nodeEvents: new EventEmitter() };
  const agent = new AgentRuntime({
    dataDir: join(dir, 'agent'),
    log,
    metrics,
    node: { id: 'n1', name: 'n1', labels: {}, address: '127.0.0.1' },
    capabilities: {},
    routes: new RouteTable(api),
    report: async (plugin, type, data) => void reports.push({ plugin, type, data }),
    channels: agentHub,
    listen: createListenPort(log),
    boundary,
    load,
    retry,
    onTransition: (plugin, change, error) => transitions.push({ host: 'agent', plugin, change, error }),
  });
  const bus = createEventBus((event, err) => log.error({ event, err: (err as Error)?.message }, 'listener failed'));
  const directory: ControllerRuntimeDeps['nodes'] = {
    list: () => h.nodes!,
    get: (id) => h.nodes!.find((n) => n.id === id),
    resolve: (ref) => h.nodes!.find((n) => n.id === ref || n.name === ref),
    defaultNode: () => h.nodes![0],
    require: (ref) => h.nodes!.find((n) => n.id === ref)!,
    on: (event, handler) => {
      h.nodeEvents!.on(event, handler);
      return () => void h.nodeEvents!.off(event, handler);
    },
  };
  const controller = new ControllerRuntime({
    peers: NO_PEERS,
    // A single controller: singleton work runs at once, for the whole run.
    singleton: (_what, start) => {
      const ac = new AbortController();
      const d = Promise.resolve(start({ epoch: 1, signal: ac.signal }));
      return async () => {
        ac.abort();
        await (await d)?.();
      };
    },
    dataDir: join(dir, 'controller'),
    log,
    metrics,
    routes: new RouteTable(new LocalApi({ log, isAdmin: () => true })),
    nodes: directory,
    command: (_node, plugin, action, args, timeoutMs) => (h.commandAnswer ? h.commandAnswer(plugin, action, args) : agent.command(plugin, action, args, Date.now() + timeoutMs)),
    commandTimeoutMs: 5000,
    channels: controllerHub,
    listen: createListenPort(log),
    events: {
      async record(event, data) {
        h.events!.push({ event, data });
        bus.emit(event, data);
      },
      on: (event, handler) => bus.on(event, handler),
    },
    deliver: async (url, body, o) => {
      h.deliveries!.push({ url, body, event: o.event });
      return `dl_${h.deliveries!.length}`;
    },
    boundary,
    load,
    retry,
    onTransition: (plugin, change, error) => transitions.push({ host: 'controller', plugin, change, error }),
  });
  api.finish((path) => restError(404, `no route for ${path}`));
  const port = await api.listen('127.0.0.1', 0);
  let seq = 0;
  return Object.assign(h, {
    port,
    hubs: { agent: agentHub, controller: controllerHub },
    agent,
    controller,
    async deliverReports() {
      for (const r of reports.splice(0)) await controller.report({ nodeId: 'n1', seq: ++seq, ts: Date.now() }, r.plugin, r.type, r.data);
    },
    async close() {
      await agent.runner.stopAll();
      await controller.runner.stopAll();
      api.close();
      await rm(dir, { recursive: true, force: true });
    },
  }) as Harness;
}

/** Polls until fn is truthy (no timing assertion: a deadline only ends a test that would hang). */
export async function eventually<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The value of one series in the exposition, or 0. */
export function metricValue(metrics: MetricsRegistry, name: string, labels: Record<string, string>): number {
  const want = Object.keys(labels).sort().map((k) => `${k}="${labels[k]}"`).join(',');
  const line = metrics.render().split('\n').find((l) => l.startsWith(want ? `${name}{${want}} ` : `${name} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}
