/**
 * server-stats on the SDK test harness: both halves on the real runner in one process, a fake clock
 * driving the sampling schedule, /searchServer reached through inject(). Host-level metrics over a real
 * cluster stay in foundation-stats.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import serverStats from '../plugins/server-stats/index.ts';
import type { Sample } from '../plugins/server-stats/schema.ts';
import { testPlugin, type PluginHarness } from '../plugins/sdk/testing/index.ts';

type Spec = typeof serverStats.spec;
let h: PluginHarness<Spec>;
let memTotal: number;
const START = Date.UTC(2024, 5, 1, 12, 0, 0);

before(async () => {
  memTotal = Number(/^MemTotal:\s+(\d+) kB$/m.exec(await readFile('/proc/meminfo', 'utf8'))![1]) * 1024;
  h = await testPlugin({ plugin: serverStats, config: { interval: 10, diskInterval: 60 }, node: { name: 'stats-a' }, now: START, others: [{ id: 'n_silent', name: 'silent-node' }] });
  await h.settle();
});
after(() => h?.close());

const samples = () => h.reports.filter((r) => r.type === 'sample').map((r) => r.data as Sample);

function assertPercent(v: unknown, what: string): number {
  assert.equal(typeof v, 'number', `${what} is ${JSON.stringify(v)}`);
  assert.ok((v as number) >= 0 && (v as number) <= 100, `${what} = ${v}`);
  return v as number;
}

test('the agent half samples at start and every interval of the (fake) clock; samples are sane', async () => {
  assert.equal(samples().length, 1, 'one sample at start');
  await h.clock.tick(10_000);
  await h.settle();
  await h.clock.tick(10_000);
  await h.settle();
  const all = samples();
  assert.deepEqual(all.map((s) => s.ts), [START, START + 10_000, START + 20_000]);
  const s = all.at(-1)!;
  assertPercent(s.cpu.percent, 'cpu');
  assertPercent(s.memory.percent, 'memory');
  assertPercent(s.disk!.percent, 'disk');
  for (const m of s.disk!.mounts) assertPercent(m.percent, `disk ${m.mount}`);
  assert.ok(Math.abs(s.memory.total - memTotal) <= memTotal * 0.01, `memory.total ${s.memory.total} vs /proc/meminfo ${memTotal}`);
  assert.equal(s.memory.used, s.memory.total - s.memory.available);
  assert.ok(Number.isInteger(s.cpu.cores) && s.cpu.cores >= 1);
  assert.ok(h.reports.every((r) => r.error === undefined), 'the controller took every report');
});

test('the controller keeps the history per node: GET /api/v1/nodes/:id/stats, 404 for an unknown node', async () => {
  const r = await h.inject({ method: 'GET', url: '/api/v1/nodes/n1/stats' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.name, 'stats-a');
  assert.equal(r.json.latest.ts, samples().at(-1)!.ts);
  assert.deepEqual(r.json.history.map((x: Sample) => x.ts), samples().map((x) => x.ts));
  const missing = await h.inject({ method: 'GET', url: '/api/v1/nodes/n_000000000000/stats' });
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.json, { error: { status: 404, message: 'node n_000000000000 not found' } });
  assert.equal((await h.inject({ method: 'GET', url: '/api/v1/nodes/n1/stats', admin: false })).status, 401);
});

function assertSuccess(body: any): void {
  assert.deepEqual(Object.keys(body).sort(), ['code', 'data', 'message']);
  assert.equal(body.code, '1');
  assert.equal(body.message, '服务器状态信息查询成功');
  const d = body.data;
  for (const k of ['cpu', 'memory', 'hdd']) assert.match(d[k], /^\d{1,3}%$/, `${k} = ${d[k]}`);
  assert.equal(d.node_id, 'n1');
  assert.equal(d.node, 'stats-a');
  assert.equal(d.state, 'up');
  assert.equal(d.info, '');
  assert.equal(d.cpu, `${Math.round(assertPercent(d.cpu_percent, 'cpu_percent'))}%`);
  assert.equal(d.memory, `${Math.round(assertPercent(d.memory_percent, 'memory_percent'))}%`);
  assert.equal(d.hdd, `${Math.round(assertPercent(d.hdd_percent, 'hdd_percent'))}%`);
  assert.equal(d.sampled_at, new Date(samples().at(-1)!.ts).toISOString());
  assert.equal(d.load.length, 3);
}

function assertFailure(r: { status: number; json: any; text: string }, status: number, message: RegExp): void {
  assert.equal(r.status, status, r.text);
  assert.deepEqual(r.json, { code: '0', message: r.json?.message, data: {} });
  assert.match(r.json.message, message);
}

test('/searchServer: the Websoft9 envelope for GET and POST (JSON and form), node by name, id or address', async () => {
  assertSuccess((await h.inject({ method: 'GET', url: '/searchServer?node=stats-a' })).json);
  assertSuccess((await h.inject({ method: 'GET', url: '/searchServer?node=n1' })).json);
  assertSuccess((await h.inject({ method: 'GET', url: '/searchServer?node=127.0.0.1' })).json);
  assertSuccess((await h.inject({ method: 'POST', url: '/searchServer', body: { node: 'stats-a' } })).json);
  assertSuccess((await h.inject({ method: 'POST', url: '/searchServer', form: { node: 'n1' } })).json);
});

test('/searchServer failures keep the envelope: unknown node, no admin token, malformed body, silent node, no default among several', async () => {
  assertFailure(await h.inject({ method: 'GET', url: '/searchServer?node=ghost-node' }), 400, /unknown node "ghost-node"/);
  assertFailure(await h.inject({ method: 'POST', url: '/searchServer', form: { node: 'ghost-node' } }), 400, /ghost-node/);
  assertFailure(await h.inject({ method: 'GET', url: '/searchServer', admin: false }), 401, /admin token/);
  assertFailure(await h.inject({ method: 'POST', url: '/searchServer', body: '{"node": ', headers: { 'content-type': 'application/json' } }), 400, /malformed JSON/);
  assertFailure(await h.inject({ method: 'POST', url: '/searchServer', body: { node: { $ne: 1 } } }), 400, /node/);
  assertFailure(await h.inject({ method: 'GET', url: '/searchServer?node=silent-node' }), 404, /node silent-node has not reported stats yet/);
  assertFailure(await h.inject({ method: 'GET', url: '/searchServer' }), 400, /several nodes are enrolled: name one with the "node" parameter/);
});

test('gauges per node; the stats age follows the clock; a down node is said so in info', async () => {
  assertPercent(h.metric('outpost_node_cpu_percent', { node: 'stats-a', node_id: 'n1' }), 'cpu gauge');
  const total = h.metric('outpost_node_memory_total_bytes', { node: 'stats-a', node_id: 'n1' })!;
  assert.ok(Math.abs(total - memTotal) <= memTotal * 0.01);
  assert.equal(h.metric('outpost_node_stats_age_seconds', { node: 'stats-a', node_id: 'n1' }), 0);
  assert.equal(h.metric('outpost_node_cpu_percent', { node: 'silent-node', node_id: 'n_silent' }), undefined, 'no gauge without a sample');

  // Down: the agent goes on sampling into its outbox; the controller's figures age, and /searchServer says why.
  h.setNode('down');
  await h.clock.tick(25_000);
  await h.settle();
  assert.equal(h.metric('outpost_node_stats_age_seconds', { node: 'stats-a', node_id: 'n1' }), 25);
  const stale = (await h.inject({ method: 'GET', url: '/searchServer?node=stats-a' })).json.data;
  assert.equal(stale.state, 'down');
  assert.equal(stale.info, `node is down; figures are from ${new Date(START + 20_000).toISOString()}`);
  // Back up: the held samples arrive in order.
  h.setNode('up');
  await h.settle();
  assert.equal(h.metric('outpost_node_stats_age_seconds', { node: 'stats-a', node_id: 'n1' }), 5);
  const history = (await h.inject({ method: 'GET', url: '/api/v1/nodes/n1/stats' })).json.history.map((x: Sample) => x.ts);
  assert.deepEqual(history.slice(-2), [START + 30_000, START + 40_000]);
});

test('reports are checked at the controller: a wrong type is refused and counted, a replayed sample changes nothing', async () => {
  const last = samples().at(-1)!;
  await assert.rejects(h.report('sample', { ...last, ts: last.ts + 1, cpu: { percent: 'high', cores: 2 } } as never), /cpu\.percent/);
  assert.equal(h.metric('outpost_plugin_boundary_refused_total', { plugin: 'server-stats', kind: 'report', type: 'sample' }), 1);
  const before = (await h.inject({ method: 'GET', url: '/api/v1/nodes/n1/stats' })).json.history.length;
  await h.report('sample', last);
  assert.equal((await h.inject({ method: 'GET', url: '/api/v1/nodes/n1/stats' })).json.history.length, before, 'a replay is not history twice');
});

test('the sample command answers a fresh sample from the agent half', async () => {
  await h.clock.tick(1_000);
  const s = await h.command('sample', {});
  assert.equal(s.ts, h.clock.now());
  assert.deepEqual(h.commands.at(-1)!.error, undefined);
});

test('history survives a restart of the controller half (the samples log)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-stats-restart-'));
  await h.close();
  try {
    const first = await testPlugin({ plugin: serverStats, config: { interval: 10 }, dataDir: dir, now: START });
    await first.clock.tick(10_000);
    await first.settle();
    const seen = first.reports.map((r) => (r.data as Sample).ts);
    await first.close();
    const second = await testPlugin({ plugin: serverStats, config: { interval: 10 }, dataDir: dir, now: START + 60_000, halves: ['controller'] });
    try {
      const r = await second.inject({ method: 'GET', url: '/api/v1/nodes/n1/stats' });
      assert.deepEqual(r.json.history.map((x: Sample) => x.ts), seen);
    } finally {
      await second.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an older release\'s server-stats.json + journal are carried into the samples log once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-stats-legacy-'));
  try {
    const first = await testPlugin({ plugin: serverStats, config: { interval: 10 }, dataDir: join(dir, 'made'), now: START });
    await first.clock.tick(20_000);
    await first.settle();
    const samples = first.reports.map((r) => r.data as Sample);
    await first.close();
    assert.ok(samples.length >= 3, `${samples.length} samples made`);
    const pluginDir = join(dir, 'old', 'controller', 'plugins');
    await mkdir(pluginDir, { recursive: true });
    await writeFile(join(pluginDir, 'server-stats.json'), JSON.stringify({ history: { n1: samples.slice(0, 2) } }));
    await writeFile(join(pluginDir, 'server-stats.journal.jsonl'), samples.slice(2).map((sample) => JSON.stringify({ node: 'n1', sample })).join('\n') + '\n{"node":"n1","sam');
    for (let run = 0; run < 2; run++) {
      const h2 = await testPlugin({ plugin: serverStats, config: { interval: 10 }, dataDir: join(dir, 'old'), now: START + 60_000, halves: ['controller'] });
      try {
        const r = await h2.inject({ method: 'GET', url: '/api/v1/nodes/n1/stats' });
        assert.deepEqual(r.json.history.map((x: Sample) => x.ts), samples.map((x) => x.ts), `run ${run}: the old window and the journal's samples, the torn line skipped`);
      } finally {
        await h2.close();
      }
    }
    const files = await readdir(pluginDir);
    assert.ok(files.includes('server-stats.json.migrated') && files.includes('server-stats.journal.jsonl.migrated') && !files.includes('server-stats.json'), files.join(', '));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
