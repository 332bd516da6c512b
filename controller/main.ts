import { createLog, type Log } from '../plugins/sdk/log.ts';
import { createEventBus } from '../runtime/events.ts';
import { MetricsRegistry } from '../plugins/sdk/metrics.ts';
import { HttpServer } from '../runtime/http-server.ts';
import { restError } from '../plugins/sdk/http.ts';
import type { ControllerConfig } from './config.ts';
import { Identity } from './identity.ts';
import { JoinTokens } from './tokens.ts';
import { Registry } from './registry.ts';
import { LinkServer } from './link-server.ts';
import { ControllerPluginHost } from './plugin-host.ts';
import { Outbox } from './webhooks/outbox.ts';
import { Subscriptions } from './webhooks/subscriptions.ts';
import { Fanout } from './webhooks/fanout.ts';
import { restRoutes } from './rest.ts';
import { EventLog } from './event-log.ts';
import { StorageHealth } from '../plugins/sdk/durable/health.ts';
import { Sessions } from './sessions.ts';
import { processMetrics } from '../runtime/process-metrics.ts';
import { dashboardRoutes } from './dashboard/routes.ts';
import { sessionAdmission } from './dashboard/guard.ts';
import { VERSION } from '../plugins/sdk/version.ts';
import { openControllerStorage, type ControllerStorage } from '../runtime/storage/controller-storage.ts';
import { ChannelHub } from '../runtime/channels.ts';
import { NO_PEERS } from '../runtime/context-parts.ts';
import { openForwarding } from './peers/open.ts';
import { openCluster, type ControllerCluster } from './cluster.ts';

export interface ControllerHandle {
  port: number;
  url: string;
  /** Set on first start only: the plain admin token, to print once. */
  newAdminToken?: string;
  identity: Identity;
  tokens: JoinTokens;
  registry: Registry;
  plugins: ControllerPluginHost;
  /** Best-effort plugin messages to and from the nodes (the runner's ChannelPort). */
  channels: ChannelHub;
  /** This controller's id, the singleton lease and link presence. */
  cluster: ControllerCluster;
  stop(): Promise<void>;
}

export async function startController(config: ControllerConfig, opts: { log?: Log; adminToken?: string } = {}): Promise<ControllerHandle> {
  const log = opts.log ?? createLog('controller');
  const bus = createEventBus((event, err) => log.error({ event, err: (err as Error)?.message }, 'event listener failed'));
  const metrics = new MetricsRegistry();
  const stopProcessMetrics = processMetrics(metrics, 'outpost_controller');

  const storage = new StorageHealth();
  // First: everything below opens its stores under the data dir, which this may mount on PostgreSQL.
  const store = await openControllerStorage(config.store, config.dataDir, { health: storage, log });
  try {
    return await startOnStore(config, opts, { log, bus, metrics, stopProcessMetrics, storage, store });
  } catch (err) {
    stopProcessMetrics();
    await store.close();
    throw err;
  }
}

/** How far back the fan-out catch-up looks: well inside what the delivered-ids memory covers. */
const CATCH_UP_WINDOW_MS = 60_000;

async function startOnStore(
  config: ControllerConfig,
  opts: { adminToken?: string },
  { log, bus, metrics, stopProcessMetrics, storage, store }: { log: Log; bus: ReturnType<typeof createEventBus>; metrics: MetricsRegistry; stopProcessMetrics: () => void; storage: StorageHealth; store: ControllerStorage },
): Promise<ControllerHandle> {
  const { identity, newAdminToken } = await Identity.open(config.dataDir, opts.adminToken ?? (process.env.OUTPOST_ADMIN_TOKEN || undefined));
  const tokens = await JoinTokens.open(config.dataDir);
  const events = await EventLog.open(config.dataDir, { bus, log, health: storage });
  const registry = await Registry.open(config.dataDir, config.heartbeat, events, log.child({ part: 'registry' }), config.defaultNode);
  const outbox = await Outbox.open(config.dataDir, config.webhooks, log.child({ part: 'webhooks' }), {
    attempts: metrics.counter('outpost_webhook_attempts_total', 'Webhook delivery attempts.'),
    failures: metrics.counter('outpost_webhook_failures_total', 'Webhook delivery attempts that failed.'),
    dead: metrics.counter('outpost_webhook_dead_total', 'Webhook deliveries given up after the max age.'),
  }, storage);
  const subs = await Subscriptions.open(config.dataDir, outbox, () => events.lastSeq());
  const fanout = new Fanout(events, subs, outbox, log.child({ part: 'webhooks' }));
  fanout.start();
  const sessions = await Sessions.open(config.dataDir);

  const httpRequests = metrics.counter('outpost_http_requests_total', 'HTTP requests by route, method and status.');
  const http = new HttpServer({
    log,
    maxBody: config.maxBodyBytes,
    trustProxy: config.trustProxy,
    isAdmin: (headers, method) => {
      const m = /^Bearer (.+)$/.exec(headers['authorization'] ?? '');
      // A session cookie rides along on any same-site request: it counts only from our own origin and, to change anything, with its CSRF token.
      return m ? identity.isAdminToken(m[1]) : sessionAdmission(sessions, headers, method, config.publicUrl);
    },
    observe: (route, method, status) => httpRequests.inc({ route, method, status: String(status) }),
  });

  const channels = new ChannelHub(
    metrics.counter('outpost_link_messages_dropped_total', 'Best-effort plugin messages dropped, by plugin and reason (link_down, overflow of a node send queue, no_handler on receipt).'),
    log.child({ part: 'channels' }),
    config.channels,
  );
  metrics.gaugeFn('outpost_link_messages_queued', 'Best-effort plugin messages waiting for each node link to drain.', () => channels.depths().map(([id, n]) => [{ node_id: id }, n]));
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
    channels,
  );
  registry.onDeletedElsewhere((id) => link.kick(id, 'node deleted'));
  let advertisedUrl: string | undefined;
  const cluster = await openCluster({ dataDir: config.dataDir, store, leaseTtlMs: config.cluster.leaseTtlMs, intervalMs: config.heartbeat.intervalMs, links: () => link.linkedNodes(), linked: (id) => registry.linkState(id), url: () => advertisedUrl, health: storage, log });
  registry.setCluster({ self: cluster.id, elsewhere: (id) => cluster.linkedAt(id) });
  registry.onLinkChange(() => cluster.linksChanged());
  // Several controllers on one database: commands, messages and plugins' peer calls reach the others.
  const forwarding = store.db
    ? await openForwarding({ dataDir: config.dataDir, cluster, registry, link, channels, plugins: () => plugins, app: http.app, metrics, log: log.child({ part: 'peers' }) })
    : undefined;
  plugins = new ControllerPluginHost({
    dataDir: config.dataDir,
    log,
    http,
    registry,
    link,
    subs,
    outbox,
    bus,
    events,
    metrics,
    health: storage,
    commandTimeoutMs: config.commandTimeoutMs,
    pluginDirs: config.pluginDirs,
    command: forwarding ? (...a) => forwarding.command(...a) : (...a) => link.command(...a),
    channels: forwarding?.channels() ?? channels,
    peers: forwarding?.peerPort() ?? { ...NO_PEERS, self: () => cluster.id },
    singleton: (what, start) => cluster.singleton(what, start),
  });

  metrics.gaugeFn('outpost_nodes', 'Enrolled nodes by state.', () => {
    const { up, down, unknown } = registry.counts();
    return Object.entries({ up, down, unknown }).map(([state, v]) => [{ state }, v]);
  });
  const nodeSamples = metrics.perScrape(() => registry.metricSamples());
  metrics.gaugeFn('outpost_node_up', 'Whether each node is up (1) or not (0).', () => nodeSamples().up);
  metrics.gaugeFn('outpost_node_connected', 'Whether each node has its link open (1) or not (0).', () => nodeSamples().connected);
  metrics.gaugeFn('outpost_node_last_heartbeat_timestamp_seconds', 'Time of the last heartbeat from each node since the Unix epoch in seconds.', () => nodeSamples().lastHeartbeat);
  metrics.gaugeFn('outpost_node_agent_outbox_depth', 'Reports waiting in each node agent outbox, as of its last heartbeat.', () => nodeSamples().outbox);
  metrics.gaugeFn('outpost_link_connections', 'Agents connected over the link.', () => link.connectedCount());
  // Read at each scrape (the queue may be in a database, so not from inside render); kept when the read fails.
  let outboxDepth = 0;
  metrics.gaugeFn('outpost_webhook_outbox_depth', 'Webhook deliveries waiting to be delivered.', () => outboxDepth);
  metrics.counterFn('outpost_store_write_errors_total', 'Failed writes to durable storage, by errno code (ENOSPC: disk full).', () => storage.errorCounts());
  metrics.gaugeFn('outpost_store_failing', 'Durable stores whose last write failed.', () => storage.problems().length);
  metrics.gaugeFn('outpost_plugin_running', 'Whether each controller plugin is running (1) or not (0).', () => plugins.status().map((p) => [{ plugin: p.name }, p.state === 'running' ? 1 : 0]));

  bus.on('node.down', (p) => log.warn({ node: (p as { node: { name: string } }).node.name }, 'node down'));
  bus.on('node.up', (p) => log.info({ node: (p as { node: { name: string } }).node.name }, 'node up'));

  link.mount(http.app);
  http.mount(restRoutes({ identity, tokens, registry, link, plugins, subs, outbox, fanout, events, log, version: VERSION, cluster }));
  http.mount([
    { method: 'GET', path: '/healthz', auth: 'none', error: restError, handler: () => ({ json: { status: 'ok' } }) },
    {
      method: 'GET',
      path: '/readyz',
      auth: 'none',
      error: restError,
      handler: () => {
        const failed = plugins.status().filter((p) => p.state === 'failed');
        // A full disk: what the controller acknowledges could not be kept, so it is not ready.
        const storageProblems = storage.problems();
        if (failed.length || storageProblems.length) return { status: 503, json: { status: 'degraded', failed, storage: storageProblems } };
        return { json: { status: 'ready' } };
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      auth: 'none',
      error: restError,
      handler: async (req) => {
        const skip = req.queryAll['skip'] ?? [];
        const bad = skip.find((prefix) => !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix));
        if (bad !== undefined) return restError(400, `skip: '${bad}' is not a metric name prefix (e.g. skip=outpost_node_)`);
        outboxDepth = await outbox.depth().catch(() => outboxDepth);
        return { text: await metrics.renderAsync({ skip }), contentType: 'text/plain; version=0.0.4; charset=utf-8' };
      },
    },
    { method: 'GET', path: '/api/v1/routes', auth: 'admin', error: restError, handler: () => ({ json: { routes: http.listRoutes() } }) },
  ]);
  http.mount(dashboardRoutes({ identity, sessions, registry, plugins, events, outbox, subs, tokens, publicUrl: config.publicUrl, version: VERSION, cluster }));

  plugins.setFileConfigs(config.plugins);
  await plugins.startAll(config.plugins);
  http.finish((path) => restError(404, `no route for ${path}`));

  // Singleton work: on this controller only while it holds the lease (on files: always).
  cluster.singleton('watchdog', () => {
    registry.start(undefined, () => cluster.linkedElsewhere());
    return () => registry.stop();
  });
  cluster.singleton('webhook deliveries', () => {
    outbox.start();
    return () => outbox.pause();
  });
  if (store.db) {
    // The fan-out position is shared: a controller that died between recording an event and queueing
    // its deliveries may have been passed by another's fan-out. The holder queues again what recent
    // events of others would deliver (known delivery ids are skipped) when it takes the lease and when
    // a controller goes away.
    cluster.singleton('event fan-out catch-up', (term) => {
      const catchUp = (why: string) => {
        const recent = events.recordedElsewhereSince(Date.now() - CATCH_UP_WINDOW_MS);
        if (term.signal.aborted || recent.length === 0) return;
        fanout.catchUp(recent).then(
          () => log.info({ why, events: recent.length }, 'webhook deliveries of recent events checked'),
          (err) => log.warn({ why, err: (err as Error).message }, 'could not check the webhook deliveries of recent events'),
        );
      };
      catchUp('this controller took the singleton lease');
      return cluster.onPeersLost((ids) => catchUp(`controller ${ids.join(', ')} went away`));
    });
  }
  const port = await http.listen(config.host, config.port);
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const own = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const url = config.publicUrl ?? own;
  advertisedUrl = config.cluster.advertiseUrl ?? own;
  if (store.db && !config.cluster.advertiseUrl && host !== config.host) log.warn({ advertised: advertisedUrl }, 'other controllers will call this one at a loopback address: set cluster.advertiseUrl when controllers run on several machines');
  cluster.start();
  log.info({ url, version: VERSION }, 'controller listening');

  return {
    port,
    url,
    newAdminToken,
    identity,
    tokens,
    registry,
    plugins,
    channels,
    cluster,
    async stop() {
      // The lease first: a survivor takes over at once instead of at the expiry.
      await cluster.stop();
      forwarding?.close();
      registry.stop();
      fanout.stop();
      await outbox.stop();
      link.closeAll();
      await plugins.stopAll();
      http.close();
      stopProcessMetrics();
      await store.close();
    },
  };
}
