/** server-stats values, Websoft9's /searchServer envelope, and /metrics as valid Prometheus text. */
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
  await until('first stats', async () => (await c.api('GET', '/searchServer')).body?.code === '1', 30_000);
  memTotal = Number(/^MemTotal:\s+(\d+) kB$/m.exec(await readFile('/proc/meminfo', 'utf8'))![1]) * 1024;
});
after(async () => {
  await a?.stop();
  await c?.stop();
});

const searchServer = (init: { method?: string; query?: string; body?: string; type?: string; token?: string | null } = {}) =>
  http('' + (init.method ?? 'GET'), `${c.url}/searchServer${init.query ?? ''}`, {
    token: init.token === null ? undefined : (init.token ?? c.adminToken),
    raw: init.body,
    headers: init.type ? { 'content-type': init.type } : {},
  });

function assertPercent(v: unknown, what: string): number {
  assert.equal(typeof v, 'number', `${what} is ${JSON.stringify(v)}`);
  assert.ok((v as number) >= 0 && (v as number) <= 100, `${what} = ${v}`);
  return v as number;
}

function assertSuccess(body: any, nodeId: string): void {
  assert.deepEqual(Object.keys(body).sort(), ['code', 'data', 'message']);
  assert.equal(body.code, '1');
  assert.equal(typeof body.message, 'string');
  const d = body.data;
  for (const k of ['cpu', 'memory', 'hdd']) {
    assert.match(d[k], /^\d{1,3}%$/, `${k} = ${d[k]}`);
    assert.ok(Number.parseInt(d[k]) <= 100);
  }
  assert.equal(d.node_id, nodeId);
  assert.equal(d.node, 'stats-a');
  assert.equal(d.cpu, `${Math.round(assertPercent(d.cpu_percent, 'cpu_percent'))}%`);
  assert.equal(d.memory, `${Math.round(assertPercent(d.memory_percent, 'memory_percent'))}%`);
  assert.equal(d.hdd, `${Math.round(assertPercent(d.hdd_percent, 'hdd_percent'))}%`);
  assert.ok(Math.abs(d.memory_total - memTotal) <= memTotal * 0.01, `memory_total ${d.memory_total} vs /proc/meminfo ${memTotal}`);
  assert.ok(d.memory_used > 0 && d.memory_used <= d.memory_total);
  assert.ok(d.hdd_total > 0 && d.hdd_used >= 0 && d.hdd_used <= d.hdd_total);
  assert.ok(Number.isInteger(d.cpu_cores) && d.cpu_cores >= 1);
  assert.equal(d.load.length, 3);
  for (const l of d.load) assert.ok(typeof l === 'number' && l >= 0);
  assert.ok(d.uptime > 0);
  assert.ok(d.network.rxPerSec >= 0 && d.network.txPerSec >= 0);
}

function assertFailure(r: { status: number; body: any; text: string }, status: number, message: RegExp): void {
  assert.equal(r.status, status, r.text);
  assert.deepEqual(r.body, { code: '0', message: r.body?.message, data: {} });
  assert.match(r.body.message, message);
}

test('samples are sane: percentages within 0-100, memory total equals /proc/meminfo', async () => {
  const r = await c.api('GET', `/api/v1/nodes/${a.nodeId}/stats`);
  assert.equal(r.status, 200);
  const s = r.body.latest;
  assertPercent(s.cpu.percent, 'cpu');
  assertPercent(s.memory.percent, 'memory');
  assertPercent(s.disk.percent, 'disk');
  for (const m of s.disk.mounts) assertPercent(m.percent, `disk ${m.mount}`);
  assert.ok(Math.abs(s.memory.total - memTotal) <= memTotal * 0.01, `memory.total ${s.memory.total} vs ${memTotal}`);
  assert.ok(s.memory.available >= 0 && s.memory.available <= s.memory.total);
  assert.equal(s.memory.used, s.memory.total - s.memory.available);
  for (const h of r.body.history) {
    assertPercent(h.cpu.percent, 'history cpu');
    assertPercent(h.memory.percent, 'history memory');
  }
  assert.ok(r.body.history.length >= 1);
  const missing = await c.api('GET', '/api/v1/nodes/n_000000000000/stats');
  assert.equal(missing.status, 404);
  assert.match(missing.body.error.message, /n_000000000000/);
});

test('/searchServer: exact Websoft9 envelope for GET and POST (JSON and form), node by name or id, default node', async () => {
  assertSuccess((await searchServer()).body, a.nodeId);
  assertSuccess((await searchServer({ query: '?node=stats-a' })).body, a.nodeId);
  assertSuccess((await searchServer({ query: `?node=${a.nodeId}` })).body, a.nodeId);
  assertSuccess((await searchServer({ method: 'POST', body: JSON.stringify({ node: 'stats-a' }), type: 'application/json' })).body, a.nodeId);
  assertSuccess((await searchServer({ method: 'POST', body: `node=${a.nodeId}`, type: 'application/x-www-form-urlencoded' })).body, a.nodeId);
  assertSuccess((await searchServer({ method: 'POST' })).body, a.nodeId);
});

test('/searchServer failures keep the envelope: unknown node, no admin token, malformed body, node without stats, several nodes', async () => {
  assertFailure(await searchServer({ query: '?node=ghost-node' }), 400, /ghost-node/);
  assertFailure(await searchServer({ method: 'POST', body: 'node=ghost-node', type: 'application/x-www-form-urlencoded' }), 400, /ghost-node/);
  assertFailure(await searchServer({ token: null }), 401, /admin token/);
  assertFailure(await searchServer({ token: 'opa_wrong' }), 401, /admin token/);
  assertFailure(await searchServer({ method: 'POST', body: '{"node": ', type: 'application/json' }), 400, /malformed JSON/);
  assertFailure(await searchServer({ method: 'POST', body: JSON.stringify({ node: { $ne: 1 } }), type: 'application/json' }), 400, /node/);
  // A second node, enrolled but silent: named, it has no stats; unnamed, the default is ambiguous.
  const token = await c.joinToken();
  const enrolled = await http('POST', `${c.url}/api/v1/enroll`, { body: { token, name: 'silent-node' } });
  assert.equal(enrolled.status, 201);
  try {
    assertFailure(await searchServer({ query: '?node=silent-node' }), 404, /silent-node/);
    assertFailure(await searchServer(), 400, /node/);
    assertSuccess((await searchServer({ query: '?node=stats-a' })).body, a.nodeId);
  } finally {
    assert.equal((await c.api('DELETE', `/api/v1/nodes/${enrolled.body.nodeId}`)).status, 200);
  }
  assert.equal((await http('GET', `${c.url}/healthz`)).status, 200);
});

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
