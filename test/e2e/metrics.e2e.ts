/**
 * Both /metrics endpoints through Prometheus' own checker and a real Prometheus server scraping them,
 * on a cluster as deployed: agents in network namespaces serving their metrics on port 7071, one of
 * them cut off. promtool and prometheus are required: their absence fails the run (test/e2e/run.sh
 * installs the Debian `prometheus` package).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startNetnsCluster } from './lib/netns-cluster.ts';
import { freePort, tempDir, until } from '../helpers/cluster.ts';
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

/** One instant query against a Prometheus server: label set → value. */
async function promQuery(base: string, query: string): Promise<Array<{ metric: Record<string, string>; value: number }>> {
  const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(query)}`, { signal: AbortSignal.timeout(5000) });
  const body: any = await res.json();
  assert.equal(body.status, 'success', JSON.stringify(body));
  return body.data.result.map((r: any) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

test('a Prometheus server scrapes the controller and both agents; a cut-off node reads up 0 and down', async (t) => {
  const c = await startNetnsCluster({ nodes: 2 });
  const dir = await tempDir('outpost-prometheus-');
  const port = await freePort();
  const hostPort = (url: string) => new URL(url).host;
  await writeFile(
    join(dir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, scrape_timeout: 900ms }',
      'scrape_configs:',
      `  - job_name: outpost-controller`,
      `    static_configs: [{ targets: ['${hostPort(c.controller.url)}'] }]`,
      `  - job_name: outpost-agent`,
      `    static_configs: [{ targets: [${c.agents.map((_a, i) => `'${hostPort(c.agentUrl(i))}'`).join(', ')}] }]`,
      '',
    ].join('\n'),
  );
  const prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  prom.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-3000)));
  const spawned = new Promise<void>((resolve, reject) => {
    prom.once('spawn', resolve);
    prom.once('error', (err) => reject(new Error(`prometheus is required for this test and could not run (${err.message}); install the Debian package "prometheus"`)));
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    await spawned;
    const up = async () => Object.fromEntries((await promQuery(base, 'up')).map((r) => [r.metric.instance, r.value]));
    const targets = [c.controller.url, c.agentUrl(0), c.agentUrl(1)].map(hostPort);
    await until('Prometheus scraped all three targets', async () => {
      const u = await up().catch(() => ({}) as Record<string, number>);
      return targets.every((x) => u[x] === 1);
    }, 60_000, 500).catch((err) => {
      throw new Error(`${(err as Error).message}; prometheus log ends: ${log}`);
    });
    await until('node stats in Prometheus', async () => (await promQuery(base, 'outpost_node_cpu_percent')).length === 2, 30_000, 500);
    assert.equal((await promQuery(base, 'outpost_nodes{state="up"}'))[0]?.value, 2);

    await c.cutOff(1);
    await c.waitState(1, 'down');
    await until('the cut-off agent scrapes as down and the controller counts it down', async () => {
      const u = await up();
      const down = await promQuery(base, 'outpost_nodes{state="down"}');
      const nodeUp = await promQuery(base, `outpost_node_up{node_id="${c.nodeIds[1]}"}`);
      return u[targets[2]] === 0 && u[targets[1]] === 1 && u[targets[0]] === 1 && down[0]?.value === 1 && nodeUp[0]?.value === 0;
    }, 30_000, 500);
    t.diagnostic('Prometheus 2.x scraped controller + 2 agents every 1 s; after the cut: up{agent1} 0, outpost_nodes{state="down"} 1');
  } finally {
    const exited = new Promise((r) => prom.once('exit', r));
    if (prom.exitCode === null && prom.pid) {
      prom.kill('SIGKILL');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
    await c.stop();
  }
});
