import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { TestController, TestAgent, until, http, freePort as closedPort } from './helpers/cluster.ts';
// The reader's own rejection cases are tested with it in foundation-stats.test.ts.
import { parsePrometheus as parsePromStrict, valueOf as promValue } from './helpers/prom.ts';

const WEBHOOK_SECRET = 'whsec_metrics_test_0123456789abcdef';


function promtool(): string | undefined {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? 'promtool' : undefined;
}

test('controller and agent /metrics are valid Prometheus text with every required family', async (t) => {
  const c = await TestController.start();
  const agents: TestAgent[] = [];
  try {
    const port = await closedPort();
    const sub = await c.api('POST', '/api/v1/webhooks', { url: `http://127.0.0.1:${port}/hook`, secret: WEBHOOK_SECRET, events: ['node.up', 'node.down'] });
    assert.equal(sub.status, 201, sub.text);
    agents.push(await TestAgent.start(c, { name: 'm-one' }), await TestAgent.start(c, { name: 'm-two' }));
    const [one, two] = agents;
    await until('both nodes up', async () => (await c.node(one.nodeId))?.state === 'up' && (await c.node(two.nodeId))?.state === 'up', 30_000);
    await until('a stats sample from each node', async () => {
      const fam = parsePromStrict((await http('GET', `${c.url}/metrics`)).text);
      return promValue(fam, 'outpost_node_cpu_percent', { node: 'm-one' }) !== undefined && promValue(fam, 'outpost_node_cpu_percent', { node: 'm-two' }) !== undefined;
    }, 30_000);
    await two.kill();
    await until('m-two down', async () => (await c.node(two.nodeId))?.state === 'down', 30_000);
    // Traffic the HTTP counters must show: a listed route, a bad request, an unknown path.
    assert.equal((await c.api('GET', '/api/v1/nodes')).status, 200);
    assert.equal((await c.api('GET', '/api/v1/events?limit=0')).status, 400);
    assert.equal((await http('GET', `${c.url}/no/such/path`)).status, 404);
    assert.equal((await http('GET', `http://127.0.0.1:${one.port}/no/such/path`)).status, 404);
    await until('a failed webhook attempt', async () => (promValue(parsePromStrict((await http('GET', `${c.url}/metrics`)).text), 'outpost_webhook_failures_total') ?? 0) > 0, 30_000);

    const res = await http('GET', `${c.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const ctl = parsePromStrict(res.text);
    const v = (name: string, labels: Record<string, string> = {}) => {
      const x = promValue(ctl, name, labels);
      assert.notEqual(x, undefined, `controller metric ${name}${JSON.stringify(labels)} missing`);
      return x!;
    };
    assert.equal(v('outpost_nodes', { state: 'up' }), 1);
    assert.equal(v('outpost_nodes', { state: 'down' }), 1);
    assert.equal(v('outpost_node_up', { node: 'm-one' }), 1);
    assert.equal(v('outpost_node_up', { node: 'm-two' }), 0);
    assert.equal(v('outpost_node_connected', { node: 'm-two' }), 0);
    assert.ok(v('outpost_node_last_heartbeat_timestamp_seconds', { node: 'm-one' }) > Date.now() / 1000 - 60);
    assert.ok(v('outpost_link_messages_total', { type: 'hb' }) > 0);
    assert.ok(v('outpost_link_messages_total', { type: 'hello' }) >= 2);
    assert.ok(v('outpost_reports_applied_total', { plugin: 'server-stats' }) > 0);
    assert.ok(v('outpost_webhook_outbox_depth') >= 1, 'deliveries to a dead receiver stay queued');
    assert.ok(v('outpost_webhook_failures_total') > 0);
    assert.ok(v('outpost_webhook_attempts_total') > 0);
    assert.ok(ctl.has('outpost_webhook_dead_total'));
    assert.ok(v('outpost_http_requests_total', { route: '/api/v1/nodes', method: 'GET', status: '200' }) >= 1);
    assert.ok(v('outpost_http_requests_total', { route: '/api/v1/events', status: '400' }) >= 1);
    assert.ok(v('outpost_http_requests_total', { route: 'unmatched', status: '404' }) >= 1);
    assert.ok(v('outpost_controller_event_loop_lag_seconds') >= 0);
    assert.ok(v('outpost_controller_cpu_seconds_total') > 0);
    assert.ok(v('outpost_controller_gc_pause_seconds_total', { kind: 'minor' }) > 0, 'a controller that served all this has collected young garbage');
    for (const kind of ['major', 'incremental', 'weakcb']) assert.ok(v('outpost_controller_gc_pause_seconds_total', { kind }) >= 0, kind);
    assert.ok(v('outpost_controller_gc_pause_max_seconds') >= 0);
    assert.ok(v('outpost_controller_resident_memory_bytes') > 0);
    assert.equal(v('outpost_plugin_running', { plugin: 'server-stats' }), 1);
    for (const name of ['outpost_node_cpu_percent', 'outpost_node_memory_used_bytes', 'outpost_node_memory_total_bytes', 'outpost_node_uptime_seconds', 'outpost_node_load1']) {
      assert.ok(v(name, { node: 'm-one', node_id: one.nodeId }) >= 0, name);
    }

    // A scraper taking per-node series from another controller leaves them out here.
    const lean = await http('GET', `${c.url}/metrics?skip=outpost_node_&skip=outpost_webhook_`);
    assert.equal(lean.status, 200);
    const leanFams = parsePromStrict(lean.text);
    assert.ok(![...leanFams.keys()].some((name) => name.startsWith('outpost_node_') || name.startsWith('outpost_webhook_')), 'skipped families are left out');
    assert.equal(promValue(leanFams, 'outpost_nodes', { state: 'up' }), 1, 'outpost_nodes is not an outpost_node_ family');
    for (const bad of ['', 'outpost-node']) {
      const r = await http('GET', `${c.url}/metrics?skip=${bad}`);
      assert.equal(r.status, 400);
      assert.equal(JSON.parse(r.text).error.message, `skip: '${bad}' is not a metric name prefix (e.g. skip=outpost_node_)`);
    }

    const ares = await http('GET', `http://127.0.0.1:${one.port}/metrics`);
    assert.equal(ares.status, 200);
    const agt = parsePromStrict(ares.text);
    assert.equal(promValue(agt, 'outpost_agent_link_connected'), 1);
    assert.equal(promValue(agt, 'outpost_agent_plugin_running', { plugin: 'server-stats' }), 1);
    assert.ok((promValue(agt, 'outpost_agent_outbox_depth') ?? -1) >= 0);
    assert.equal(promValue(agt, 'outpost_agent_outbox_dropped_total'), 0);
    assert.ok((promValue(agt, 'outpost_agent_http_requests_total', { route: 'unmatched', status: '404' }) ?? 0) >= 1);
    assert.ok((promValue(agt, 'outpost_agent_event_loop_lag_seconds') ?? -1) >= 0);
    assert.ok((promValue(agt, 'outpost_agent_cpu_seconds_total') ?? 0) > 0);

    for (const text of [res.text, ares.text]) {
      assert.ok(!text.includes(c.adminToken), 'admin token must not appear in metrics');
      assert.ok(!text.includes(WEBHOOK_SECRET), 'webhook secret must not appear in metrics');
    }

    const tool = promtool();
    if (!tool) {
      t.diagnostic('promtool not on PATH: the promtool check runs in test/e2e/metrics.e2e.ts');
      return;
    }
    for (const [what, text] of [['controller', res.text], ['agent', ares.text]]) {
      const r: ReturnType<typeof spawnSync> = spawnSync(tool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.equal(r.status, 0, `promtool check metrics (${what}): ${r.stdout}${r.stderr}`);
    }
  } finally {
    await Promise.allSettled(agents.map((a) => a.stop()));
    await c.stop();
  }
});
