/**
 * Both /metrics endpoints through Prometheus' own checker, on a cluster as deployed: agents in
 * network namespaces serving their metrics on port 7071, one of them cut off. promtool is required:
 * its absence fails the run (test/e2e/run.sh installs the Debian `prometheus` package).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startNetnsCluster } from './lib/netns-cluster.ts';
import { until } from '../helpers/cluster.ts';
import { parsePrometheus as parsePromStrict, valueOf as promValue } from '../helpers/prom.ts';

function promtoolCheck(what: string, text: string): void {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) throw new Error(`promtool is required for this test and could not run (${r.error.message}); install the Debian package "prometheus"`);
  assert.equal(r.status, 0, `promtool check metrics rejected the ${what} metrics:\n${r.stdout}${r.stderr}`);
  assert.equal(`${r.stdout}${r.stderr}`.trim(), '', `promtool reported problems for the ${what} metrics`);
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200, `${url}/metrics answered ${res.status}`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return res.text();
}

test('promtool accepts the controller and agent metrics, with a node cut off', async (t) => {
  const c = await startNetnsCluster({ nodes: 2 });
  try {
    await until('stats from both nodes', async () => {
      const fam = parsePromStrict(await scrape(c.controller.url));
      return c.agents.every((a) => promValue(fam, 'outpost_node_cpu_percent', { node_id: a.nodeId }) !== undefined);
    }, 30_000);
    await c.cutOff(1);
    await c.waitState(1, 'down');

    const ctlText = await scrape(c.controller.url);
    promtoolCheck('controller', ctlText);
    const ctl = parsePromStrict(ctlText);
    assert.equal(promValue(ctl, 'outpost_nodes', { state: 'up' }), 1);
    assert.equal(promValue(ctl, 'outpost_nodes', { state: 'down' }), 1);
    assert.equal(promValue(ctl, 'outpost_node_up', { node_id: c.nodeIds[1] }), 0);
    assert.ok((promValue(ctl, 'outpost_link_messages_total', { type: 'hb' }) ?? 0) > 0);
    assert.ok(ctl.has('outpost_webhook_outbox_depth') && ctl.has('outpost_webhook_failures_total'));
    assert.ok(ctl.has('outpost_controller_event_loop_lag_seconds'));
    assert.ok(!ctlText.includes(c.controller.adminToken));

    await scrape(c.agentUrl(0));
    const agentText = await scrape(c.agentUrl(0));
    promtoolCheck('agent', agentText);
    const agent = parsePromStrict(agentText);
    assert.equal(promValue(agent, 'outpost_agent_link_connected'), 1);
    // The first scrape is counted once it is answered, so the second one sees it.
    assert.ok((promValue(agent, 'outpost_agent_http_requests_total', { route: '/metrics', status: '200' }) ?? 0) >= 1);
    t.diagnostic(`controller: ${ctl.size} families; agent: ${agent.size} families; both pass promtool check metrics`);
  } finally {
    await c.stop();
  }
});
