import { createLog, type Log } from '../plugins/sdk/log.ts';
import { createEventBus } from '../plugins/sdk/events.ts';
import { MetricsRegistry } from '../plugins/sdk/metrics.ts';
import { HttpServer } from '../plugins/sdk/http-server.ts';
import { restError } from '../plugins/sdk/http.ts';
import type { ControllerConfig } from './config.ts';
import { Identity } from './identity.ts';
import { JoinTokens } from './tokens.ts';
import { Registry } from './registry.ts';
import { LinkServer } from './link-server.ts';
import { ControllerPluginHost } from './plugin-host.ts';
import { Outbox } from './webhooks/outbox.ts';
import { CORE_EVENTS, Subscriptions } from './webhooks/subscriptions.ts';
import { restRoutes } from './rest.ts';
import { RecentEvents } from './recent-events.ts';
import { Sessions } from './sessions.ts';
import { processMetrics } from '../plugins/sdk/process-metrics.ts';
import { dashboardRoutes } from './dashboard/routes.ts';
import { crossSiteReason } from './dashboard/guard.ts';
import { VERSION } from '../plugins/sdk/version.ts';

export interface ControllerHandle {
  port: number;
  url: string;
  /** Set on first start only: the plain admin token, to print once. */
  newAdminToken?: string;
  identity: Identity;
  tokens: JoinTokens;
  registry: Registry;
  plugins: ControllerPluginHost;
  stop(): Promise<void>;
}

export async function startController(config: ControllerConfig, opts: { log?: Log; adminToken?: string } = {}): Promise<ControllerHandle> {
  const log = opts.log ?? createLog('controller');
  const bus = createEventBus((event, err) => log.error({ event, err: (err as Error)?.message }, 'event listener failed'));
  const metrics = new MetricsRegistry();
  const stopProcessMetrics = processMetrics(metrics, 'outpost_controller');

  const { identity, newAdminToken } = await Identity.open(config.dataDir, opts.adminToken ?? process.env.OUTPOST_ADMIN_TOKEN);
  const tokens = await JoinTokens.open(config.dataDir);
  const registry = await Registry.open(config.dataDir, config.heartbeat, bus, config.defaultNode);
  const outbox = await Outbox.open(config.dataDir, config.webhooks, log.child({ part: 'webhooks' }), {
    attempts: metrics.counter('outpost_webhook_attempts_total', 'Webhook delivery attempts.'),
    failures: metrics.counter('outpost_webhook_failures_total', 'Webhook delivery attempts that failed.'),
    dead: metrics.counter('outpost_webhook_dead_total', 'Webhook deliveries given up after the max age.'),
  });
  const subs = await Subscriptions.open(config.dataDir, outbox);
  const sessions = new Sessions();
  const events = await RecentEvents.open(config.dataDir, log);

  const httpRequests = metrics.counter('outpost_http_requests_total', 'HTTP requests by route, method and status.');
  const http = new HttpServer({
    log,
    maxBody: config.maxBodyBytes,
    trustProxy: config.trustProxy,
    isAdmin: (headers) => {
      const m = /^Bearer (.+)$/.exec(headers['authorization'] ?? '');
      // A session cookie rides along on any same-site request, so it only counts from our own origin (no CSRF on the REST API).
      return m ? identity.isAdminToken(m[1]) : sessions.valid(headers) && !crossSiteReason(headers, config.publicUrl);
    },
    observe: (route, method, status) => httpRequests.inc({ route, method, status: String(status) }),
  });

  // eslint-disable-next-line prefer-const
  let plugins: ControllerPluginHost;
  const link = new LinkServer(
    identity,
    registry,
    {
      configFor: () => plugins.configs(),
      onReport: (meta, plugin, type, data) => plugins.onReport(meta, plugin, type, data),
    },
    log.child({ part: 'link' }),
    config.heartbeat.intervalMs,
    {
      messages: metrics.counter('outpost_link_messages_total', 'Messages received from agents, by type.'),
      reports: metrics.counter('outpost_reports_applied_total', 'Agent reports applied, by plugin.'),
      reportFailures: metrics.counter('outpost_report_failures_total', 'Agent reports whose handler failed, by plugin.'),
      violations: metrics.counter('outpost_link_violations_total', 'Link connections closed for a malformed, out-of-bounds or oversized message, by message type and reason.'),
    },
  );
  plugins = new ControllerPluginHost({ dataDir: config.dataDir, log, http, registry, link, subs, outbox, bus, metrics, commandTimeoutMs: config.commandTimeoutMs });

  metrics.gaugeFn('outpost_nodes', 'Enrolled nodes by state.', () => {
    const { up, down, unknown } = registry.counts();
    return Object.entries({ up, down, unknown }).map(([state, v]) => [{ state }, v]);
  });
  metrics.gaugeFn('outpost_node_up', 'Whether each node is up (1) or not (0).', () => registry.list().map((n) => [{ node: n.name, node_id: n.id }, n.state === 'up' ? 1 : 0]));
  const perNode = (pick: (n: ReturnType<Registry['list']>[number]) => number | null) => () =>
    registry.list().flatMap((n): Array<[Record<string, string>, number]> => {
      const v = pick(n);
      return v === null ? [] : [[{ node: n.name, node_id: n.id }, v]];
    });
  metrics.gaugeFn('outpost_node_connected', 'Whether each node has its link open (1) or not (0).', perNode((n) => (n.connected ? 1 : 0)));
  metrics.gaugeFn('outpost_node_last_heartbeat_timestamp_seconds', 'Time of the last heartbeat from each node since the Unix epoch in seconds.', perNode((n) => (n.lastHeartbeat ? n.lastHeartbeat / 1000 : null)));
  metrics.gaugeFn('outpost_node_agent_outbox_depth', 'Reports waiting in each node agent outbox, as of its last heartbeat.', perNode((n) => n.outbox));
  metrics.gaugeFn('outpost_link_connections', 'Agents connected over the link.', () => link.connectedCount());
  metrics.gaugeFn('outpost_webhook_outbox_depth', 'Webhook deliveries waiting to be delivered.', () => outbox.depth());
  metrics.gaugeFn('outpost_plugin_running', 'Whether each controller plugin is running (1) or not (0).', () => plugins.status().map((p) => [{ plugin: p.name }, p.state === 'running' ? 1 : 0]));

  for (const ev of CORE_EVENTS) {
    bus.on(ev, async (payload) => {
      // subs.emit picks its receivers synchronously, so only subscriptions that existed when the event
      // happened get it; waiting for the event-log write first would hand it to later ones too.
      await Promise.all([subs.emit(ev, payload), events.push(ev, payload)]);
    });
  }
  bus.on('node.down', (p) => log.warn({ node: (p as { node: { name: string } }).node.name }, 'node down'));
  bus.on('node.up', (p) => log.info({ node: (p as { node: { name: string } }).node.name }, 'node up'));

  link.mount(http.app);
  http.mount(restRoutes({ identity, tokens, registry, link, plugins, subs, outbox, bus, events, log, version: VERSION }));
  http.mount([
    { method: 'GET', path: '/healthz', auth: 'none', error: restError, handler: () => ({ json: { status: 'ok' } }) },
    {
      method: 'GET',
      path: '/readyz',
      auth: 'none',
      error: restError,
      handler: () => {
        const failed = plugins.status().filter((p) => p.state === 'failed');
        return failed.length ? { status: 503, json: { status: 'degraded', failed } } : { json: { status: 'ready' } };
      },
    },
    { method: 'GET', path: '/metrics', auth: 'none', error: restError, handler: () => ({ text: metrics.render(), contentType: 'text/plain; version=0.0.4; charset=utf-8' }) },
    { method: 'GET', path: '/api/v1/routes', auth: 'admin', error: restError, handler: () => ({ json: { routes: http.listRoutes() } }) },
  ]);
  http.mount(dashboardRoutes({ identity, sessions, registry, plugins, events, outbox, subs, publicUrl: config.publicUrl, version: VERSION }));

  plugins.setFileConfigs(config.plugins);
  await plugins.startAll(config.plugins);
  http.finish((path) => restError(404, `no route for ${path}`));

  registry.start();
  outbox.start();
  const port = await http.listen(config.host, config.port);
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = config.publicUrl ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info({ url, version: VERSION }, 'controller listening');

  return {
    port,
    url,
    newAdminToken,
    identity,
    tokens,
    registry,
    plugins,
    async stop() {
      registry.stop();
      outbox.stop();
      link.closeAll();
      await plugins.stopAll();
      http.close();
      stopProcessMetrics();
    },
  };
}
