/**
 * A real controller and agent running server-stats: /searchServer answers over the real link, and both
 * hosts' /metrics are valid Prometheus text. The plugin's own behaviour (sampling, envelopes, failures,
 * history, gauges) is tested on the SDK harness in server-stats.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { TestController, TestAgent, until, http } from './helpers/cluster.ts';
import { parsePrometheus, valueOf } from './helpers/prom.ts';

let c: TestController;
let a: TestAgent;
let memTotal: number;

before(async () => {
  // Heartbeats slower than the harness default: these tests check node state, which must not flap on a loaded machine.
  c = await TestController.start({ config: { heartbeat: { intervalMs: 1000, downAfter: 3, upAfter: 2 } } });
  a = await TestAgent.start(c, { name: 'stats-a', plugins: { 'server-stats': { interval: 1, diskInterval: 5 } } });
  await until('node up', async () => (await c.node(a.nodeId))?.state === 'up', 30_000);
  const first = await until('first stats through /searchServer', async () => {
    const r = await c.api('GET', '/searchServer');
    return r.body?.code === '1' ? r.body : undefined;
  }, 30_000);
  assert.equal(first.data.node_id, a.nodeId);
  memTotal = Number(/^MemTotal:\s+(\d+) kB$/m.exec(await readFile('/proc/meminfo', 'utf8'))![1]) * 1024;
});
after(async () => {
  await a?.stop();
  await c?.stop();
});

function assertPercent(v: unknown, what: string): number {
  assert.equal(typeof v, 'number', `${what} is ${JSON.stringify(v)}`);
  assert.ok((v as number) >= 0 && (v as number) <= 100, `${what} = ${v}`);
  return v as number;
}

test('controller /metrics is valid Prometheus text with node and stats gauges', async () => {
  const r = await http('GET', `${c.url}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const m = parsePrometheus(r.text);
  assert.equal(valueOf(m, 'outpost_nodes', { state: 'up' }), 1);
  assert.equal(valueOf(m, 'outpost_node_up', { node: 'stats-a', node_id: a.nodeId }), 1);
  assert.equal(valueOf(m, 'outpost_link_connections'), 1);
  assertPercent(valueOf(m, 'outpost_node_cpu_percent', { node: 'stats-a' }), 'cpu gauge');
  assertPercent(valueOf(m, 'outpost_node_memory_used_percent', { node: 'stats-a' }), 'memory gauge');
  assertPercent(valueOf(m, 'outpost_node_disk_used_percent', { node: 'stats-a' }), 'disk gauge');
  const total = valueOf(m, 'outpost_node_memory_total_bytes', { node: 'stats-a' })!;
  assert.ok(Math.abs(total - memTotal) <= memTotal * 0.01);
  assert.ok(valueOf(m, 'outpost_reports_applied_total', { plugin: 'server-stats' })! >= 1);
  assert.ok(valueOf(m, 'outpost_node_uptime_seconds', { node: 'stats-a' })! > 0);
  assert.equal(m.get('outpost_reports_applied_total')!.type, 'counter');
  assert.equal(m.get('outpost_node_cpu_percent')!.type, 'gauge');
});

test('agent /metrics is valid Prometheus text with link, outbox and plugin gauges', async () => {
  const r = await a.local('GET', '/metrics');
  assert.equal(r.status, 200);
  const m = parsePrometheus(r.text);
  assert.equal(valueOf(m, 'outpost_agent_link_connected'), 1);
  assert.equal(valueOf(m, 'outpost_agent_plugin_running', { plugin: 'server-stats' }), 1);
  assert.ok(valueOf(m, 'outpost_agent_outbox_depth')! >= 0);
  assert.ok(valueOf(m, 'outpost_agent_resident_memory_bytes')! > 0);
});

test('the Prometheus parser rejects what promtool rejects', () => {
  const ok = '# HELP up_total Ups.\n# TYPE up_total counter\nup_total{a="x\\"y",b="1"} 3\n# HELP g A gauge.\n# TYPE g gauge\ng -Inf\ng{x="1"} NaN 1700000000000\n';
  assert.equal(parsePrometheus(ok).get('g')!.samples.length, 2);
  const bad: Record<string, string> = {
    'no trailing newline': '# HELP g x\n# TYPE g gauge\ng 1',
    'bad metric name': '# HELP 1g x\n# TYPE 1g gauge\n1g 1\n',
    'bad value': '# HELP g x\n# TYPE g gauge\ng one\n',
    'unquoted label': '# HELP g x\n# TYPE g gauge\ng{a=1} 1\n',
    'bad escape': '# HELP g x\n# TYPE g gauge\ng{a="\\t"} 1\n',
    'duplicate label': '# HELP g x\n# TYPE g gauge\ng{a="1",a="2"} 1\n',
    'reserved label': '# HELP g x\n# TYPE g gauge\ng{__a="1"} 1\n',
    'duplicate series': '# HELP g x\n# TYPE g gauge\ng{a="1"} 1\ng{a="1"} 2\n',
    'type after samples': '# HELP g x\ng 1\n# TYPE g gauge\n',
    'two TYPE lines': '# HELP g x\n# TYPE g gauge\n# TYPE g gauge\ng 1\n',
    'unknown type': '# HELP g x\n# TYPE g meter\ng 1\n',
    'split family': '# HELP g x\n# TYPE g gauge\ng{a="1"} 1\n# HELP h x\n# TYPE h gauge\nh 1\ng{a="2"} 1\n',
    'no help': '# TYPE g gauge\ng 1\n',
    'counter without _total': '# HELP c x\n# TYPE c counter\nc 1\n',
    'gauge with _total': '# HELP g_total x\n# TYPE g_total gauge\ng_total 1\n',
    'non-base unit': '# HELP d_milliseconds x\n# TYPE d_milliseconds gauge\nd_milliseconds 1\n',
    'missing value': '# HELP g x\n# TYPE g gauge\ng{a="1"}\n',
    'bad timestamp': '# HELP g x\n# TYPE g gauge\ng 1 soon\n',
  };
  for (const [why, text] of Object.entries(bad)) assert.throws(() => parsePrometheus(text), Error, why);
});
