import { networkInterfaces } from 'node:os';
import { timingSafeEqual } from 'node:crypto';
import { createLog, type Log } from '../plugins/sdk/log.ts';
import { MetricsRegistry } from '../plugins/sdk/metrics.ts';
import { LocalApi } from './local-api.ts';
import { restError } from '../plugins/sdk/http.ts';
import { VERSION } from '../plugins/sdk/version.ts';
import type { AgentConfig } from './config.ts';
import { openAgentState } from './state.ts';
import { join } from './join.ts';
import { AgentOutbox } from './outbox.ts';
import { LinkClient } from './link-client.ts';
import { reportProblem } from '../runtime/link.ts';
import { AgentPluginHost } from './plugin-host.ts';
import { processMetrics } from '../runtime/process-metrics.ts';
import { ChannelHub } from '../runtime/channels.ts';
import { StorageHealth } from '../plugins/sdk/durable/health.ts';
import { detectCapabilities } from './capabilities.ts';

export interface AgentHandle {
  port: number;
  nodeId: string;
  link: LinkClient;
  plugins: AgentPluginHost;
  outbox: AgentOutbox;
  /** Best-effort plugin messages to and from the controller (the runner's ChannelPort). */
  channels: ChannelHub;
  stop(): Promise<void>;
}

/** First non-internal IPv4, else loopback: what other systems most likely reach this node at. */
export function detectAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function startAgent(config: AgentConfig, opts: { log?: Log; joinToken?: string; local?: boolean } = {}): Promise<AgentHandle> {
  const log = opts.log ?? createLog('agent');
  const state = await openAgentState(config.dataDir);
  const address = config.address ?? detectAddress();

  if (!state.data.credential) {
    const token = opts.joinToken ?? process.env.OUTPOST_JOIN_TOKEN;
    if (!config.controller || !token) throw new Error('this agent has not joined a controller yet: run `outpost agent join --controller URL --token T` first');
    await join(state, { controller: config.controller, token, name: config.name, labels: config.labels, address, local: opts.local });
    log.info({ node: state.data.nodeId }, 'joined controller');
  }
  const nodeId = state.data.nodeId!;
  const controller = state.data.controller ?? config.controller!;
  if (config.controller && config.controller.replace(/\/+$/, '') !== controller) {
    // The credential belongs to the controller joined; a different URL in the config is not followed silently.
    log.warn({ joined: controller, config: config.controller }, 'config names another controller than the one this agent joined; linking to the joined one (its credential is only valid there)');
  }

  const capabilities = detectCapabilities();
  for (const [name, c] of Object.entries(capabilities)) if (!c.available) log.warn({ capability: name, reason: c.reason }, `${name} is not available on this node`);

  const metrics = new MetricsRegistry();
  const stopProcessMetrics = processMetrics(metrics, 'outpost_agent');
  const storage = new StorageHealth();
  const outbox = await AgentOutbox.open(config.dataDir, config.link.outboxMax, { log: log.child({ part: 'outbox' }), health: storage });
  const channels = new ChannelHub(
    metrics.counter('outpost_agent_link_messages_dropped_total', 'Best-effort plugin messages dropped, by plugin and reason (link_down, overflow of the send queue, no_handler on receipt).'),
    log.child({ part: 'channels' }),
    config.channels,
  );
  metrics.gaugeFn('outpost_agent_link_messages_queued', 'Best-effort plugin messages waiting for the link to the controller to drain.', () => channels.depths().reduce((n, [, d]) => n + d, 0));
  const httpRequests = metrics.counter('outpost_agent_http_requests_total', 'HTTP requests to the agent by route, method and status.');
  const http = new LocalApi({
    log,
    maxBody: config.maxBodyBytes,
    observe: (route, method, status) => httpRequests.inc({ route, method, status: String(status) }),
    isAdmin: (headers) => {
      const m = /^Bearer (.+)$/.exec(headers['authorization'] ?? '');
      return !!m && sameSecret(m[1], state.data.apiToken!);
    },
  });

  // The link is created after the host, but reports only need it to exist by the time they are sent.
  let link: LinkClient | undefined;
  const plugins = new AgentPluginHost(
    {
      dataDir: config.dataDir,
      log,
      http,
      metrics,
      health: storage,
      node: { id: nodeId, name: state.data.name ?? config.name, labels: config.labels, address },
      capabilities,
      state,
      report: async (plugin, type, data) => {
        // Refused here, where the plugin sees the error: queued, it would be replayed into a closed link forever.
        const problem = reportProblem(plugin, type, data);
        if (problem) throw new Error(problem);
        await outbox.add(plugin, type, data);
        link?.kick();
      },
      channels,
      pluginDirs: config.pluginDirs,
    },
    config.plugins,
  );

  metrics.gaugeFn('outpost_agent_outbox_depth', 'Reports waiting for the controller to acknowledge them.', () => outbox.size());
  metrics.counterFn('outpost_agent_outbox_dropped_total', 'Reports dropped because the outbox was full.', () => outbox.dropped());
  metrics.counterFn('outpost_agent_store_write_errors_total', 'Failed writes to durable storage (the report outbox), by errno code (ENOSPC: disk full).', () => storage.errorCounts());
  metrics.gaugeFn('outpost_agent_store_failing', 'Durable stores whose last write failed.', () => storage.problems().length);
  metrics.counterFn('outpost_agent_link_dead_total', 'Links dropped because the controller stopped answering pings and heartbeats.', () => link?.deadLinks ?? 0);
  metrics.gaugeFn('outpost_agent_link_connected', 'Whether the link to the controller is up (1) or not (0).', () => (link?.state === 'connected' ? 1 : 0));
  metrics.gaugeFn('outpost_agent_plugin_running', 'Whether each plugin is running (1) or not (0).', () => plugins.status().map((p) => [{ plugin: p.name }, p.state === 'running' ? 1 : 0]));

  http.mount([
    {
      // Alive (200) either way; a store that cannot be written (a full disk: reports are refused) shows as degraded.
      method: 'GET',
      path: '/healthz',
      auth: 'none',
      error: restError,
      handler: () => {
        const problems = storage.problems();
        return { json: problems.length ? { status: 'degraded', node: nodeId, storage: problems } : { status: 'ok', node: nodeId } };
      },
    },
    {
      // CocoaSyncer's probe target: 200 while the node serves, with its business code in the body.
      method: 'GET',
      path: '/v1/monitor',
      auth: 'none',
      error: restError,
      handler: () => ({
        json: {
          statusCode: 200,
          statusString: 'MafuMafu~',
          nodeName: state.data.name ?? config.name,
          nodeId,
          link: link?.state ?? 'disconnected',
          linkError: link?.lastError,
          plugins: plugins.status(),
          capabilities,
          outbox: outbox.size(),
          storage: storage.problems(),
        },
      }),
    },
    { method: 'GET', path: '/metrics', auth: 'none', error: restError, handler: () => ({ text: metrics.render(), contentType: 'text/plain; version=0.0.4; charset=utf-8' }) },
    { method: 'GET', path: '/v1/routes', auth: 'admin', error: restError, handler: () => ({ json: { routes: http.listRoutes() } }) },
  ]);

  await plugins.startAll();
  http.finish((path) => restError(404, `no route for ${path}`));
  const port = await http.listen(config.host, config.port);

  link = new LinkClient({
    controller,
    nodeId,
    credential: state.data.credential!,
    version: VERSION,
    labels: config.labels,
    address,
    capabilities,
    backoff: config.link.backoff,
    window: config.link.window,
    outbox,
    log: log.child({ part: 'link' }),
    plugins: () => plugins.status(),
    onWelcome: async (configs) => {
      for (const [name, c] of Object.entries(configs)) await plugins.applyConfig(name, c);
    },
    onConfig: (name, c) => plugins.applyConfig(name, c),
    channels,
    onCommand: (plugin, action, args, deadline) => plugins.command(plugin, action, args, deadline),
  });
  link.start();
  log.info({ node: nodeId, port, controller }, 'agent started');

  return {
    port,
    nodeId,
    link,
    plugins,
    outbox,
    channels,
    async stop() {
      link?.stop();
      await plugins.stopAll();
      http.close();
      stopProcessMetrics();
      await outbox.close();
    },
  };
}
