/** Plugin config: pushed from the controller and applied on agents without a restart; bad configs fail one plugin only. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestController, TestAgent, until, http, sleep } from './helpers/cluster.ts';
import { openRawLink, sampleReport } from './helpers/raw-link.ts';

const stateOf = async (a: TestAgent) => JSON.parse(await readFile(join(a.dataDir, 'state.json'), 'utf8'));

async function history(c: TestController, nodeId: string): Promise<Array<{ ts: number }>> {
  return (await c.api('GET', `/api/v1/nodes/${nodeId}/stats`)).body?.history ?? [];
}

function assertRestError(r: { status: number; body: any; text: string }, status: number, message: RegExp): void {
  assert.equal(r.status, status, r.text);
  assert.equal(r.body?.error?.status, status);
  assert.match(r.body.error.message, message);
}

// One controller and two agents for the file: starting processes is the slow part. The controller runs
// server-stats and a plugin that does not exist (failed); one agent's own file holds a bad server-stats config.
let c: TestController;
let bad: TestAgent;
let good: TestAgent;
before(async () => {
  c = await TestController.start({ config: { plugins: { 'server-stats': {}, 'no-such-plugin': { apiToken: 'hunter2-do-not-show', region: 'eu' } } } });
  bad = await TestAgent.start(c, { name: 'cfg-bad', plugins: { 'server-stats': { interval: 'often' } } });
  // Its file names another controller, as the sample config does: the one it joined must still win.
  good = await TestAgent.start(c, { name: 'cfg-good', plugins: { 'server-stats': { interval: 1, diskInterval: 5 }, 'no-such-plugin': {} }, config: { controller: 'http://controller.example.internal:7070' } });
});
after(async () => {
  await bad?.stop();
  await good?.stop();
  await c?.stop();
});

test('a plugin with an invalid config or an unknown name is reported failed while server-stats keeps running', async () => {
  // The bad agent's own file holds a bad server-stats config; the controller pushes none until an operator does.
  // Controller side: the unknown plugin is failed, server-stats runs, readiness says degraded.
  const plugins = (await c.api('GET', '/api/v1/plugins')).body.plugins;
  assert.equal(plugins.find((p: any) => p.name === 'server-stats').state, 'running');
  const missing = plugins.find((p: any) => p.name === 'no-such-plugin');
  assert.equal(missing.state, 'failed');
  assert.match(missing.error, /unknown plugin "no-such-plugin"/);
  const ready = await http('GET', `${c.url}/readyz`);
  assert.equal(ready.status, 503);
  assert.equal((await http('GET', `${c.url}/healthz`)).status, 200);
  // Its config is shown without secrets: with no schema to say which values are secrets, every value is masked.
  const cfg = await c.api('GET', '/api/v1/plugins/no-such-plugin/config');
  assert.deepEqual(cfg.body.config, { apiToken: '***', region: '***' });
  assert.ok(!cfg.text.includes('hunter2'));

  // Node side, from hello/heartbeat summaries.
  const badNode = await until('bad node reports its plugins', async () => {
    const n = await c.node(bad.nodeId);
    return n?.state === 'up' && n.plugins.length ? n : undefined;
  });
  assert.equal(badNode.plugins[0].name, 'server-stats');
  assert.equal(badNode.plugins[0].state, 'failed');
  assert.match(badNode.plugins[0].error, /interval/);
  const goodNode = await until('good node reports its plugins', async () => {
    const n = await c.node(good.nodeId);
    return n?.state === 'up' && n.plugins.length === 2 ? n : undefined;
  });
  assert.equal(goodNode.plugins.find((p: any) => p.name === 'server-stats').state, 'running');
  assert.match(goodNode.plugins.find((p: any) => p.name === 'no-such-plugin').error, /unknown plugin/);
  await until('good node keeps reporting stats', async () => (await history(c, good.nodeId)).length >= 2);
  const events = (await c.api('GET', '/api/v1/events?limit=1000')).body.events;
  assert.ok(events.some((e: any) => e.event === 'plugin.failed' && e.data.node?.id === bad.nodeId && e.data.plugin === 'server-stats'));
  // Both agent processes keep serving.
  assert.equal((await bad.local('GET', '/healthz')).status, 200);
  assert.equal((await bad.local('GET', '/v1/monitor')).body.plugins[0].state, 'failed');

  // An operator pushes a valid config: the failed plugin recovers on the running agent.
  assert.equal((await c.api('PUT', '/api/v1/plugins/server-stats/config', { interval: 1, diskInterval: 5 })).status, 200);
  await until('bad node recovered', async () => (await c.node(bad.nodeId))?.plugins[0]?.state === 'running');
  await until('recovered node reports stats', async () => (await history(c, bad.nodeId)).length >= 1);
});

test('a pushed config is persisted on the agent and applied without restarting it; bad pushes are refused naming the field', async () => {
  // Runs after the failure test above, whose last push set interval 1 everywhere.
  const a = good;
  await until('samples every second', async () => (await history(c, a.nodeId)).length >= 3);
  const pid = a.proc.child.pid;

  const pushedAt = Date.now();
  const put = await c.api('PUT', '/api/v1/plugins/server-stats/config', { interval: 3, diskInterval: 5 });
  assert.equal(put.status, 200, put.text);
  assert.equal(put.body.config.interval, 3);
  assert.deepEqual((await c.api('GET', '/api/v1/plugins/server-stats/config')).body, { plugin: 'server-stats', config: { interval: 3, diskInterval: 5 } });

  await until('agent persisted the pushed config', async () => (await stateOf(a)).pushed?.['server-stats']?.interval === 3);
  assert.deepEqual((await stateOf(a)).pushed['server-stats'], { interval: 3, diskInterval: 5 });
  await a.proc.waitFor(/plugin config applied/);

  // The new spacing shows in the samples that follow.
  const after = await until(
    'three samples at the new interval',
    async () => {
      const h = (await history(c, a.nodeId)).filter((s) => s.ts > pushedAt + 500);
      return h.length >= 3 ? h : undefined;
    },
    30_000,
  );
  const gaps = after.slice(1).map((s, i) => s.ts - after[i].ts);
  assert.ok(gaps.every((g) => g >= 2500), `gaps after the push: ${gaps.join(', ')} ms`);

  // Same process all along.
  assert.equal(a.proc.child.pid, pid);
  assert.equal(a.proc.child.exitCode, null);
  assert.equal((await a.local('GET', '/healthz')).status, 200);
  assert.doesNotMatch(a.proc.output(), /Outpost agent \S+ serving on port \d+[\s\S]*Outpost agent \S+ serving on port/);

  // Bad pushes: 400 naming the field, nothing changes.
  assertRestError(await c.api('PUT', '/api/v1/plugins/server-stats/config', { interval: 'x' }), 400, /interval/);
  assertRestError(await c.api('PUT', '/api/v1/plugins/server-stats/config', { config: { interval: 0 } }), 400, /interval/);
  assertRestError(await c.api('PUT', '/api/v1/plugins/server-stats/config', { interval: 2, bogus: true }), 400, /bogus/);
  assertRestError(await c.api('PUT', '/api/v1/plugins/server-stats/config', [1, 2]), 400, /JSON object/);
  assertRestError(await c.api('PUT', '/api/v1/plugins/nope/config', { interval: 2 }), 404, /nope/);
  assertRestError(await c.api('GET', '/api/v1/plugins/nope/config'), 404, /nope/);
  assert.equal((await c.api('GET', '/api/v1/plugins/server-stats/config')).body.config.interval, 3);
  assert.equal((await stateOf(a)).pushed['server-stats'].interval, 3);

  // A push made while the agent is offline reaches it when it reconnects.
  await a.kill('SIGKILL');
  assert.equal((await c.api('PUT', '/api/v1/plugins/server-stats/config', { interval: 4 })).status, 200);
  await a.restart();
  await until('config applied on reconnect', async () => (await stateOf(a)).pushed?.['server-stats']?.interval === 4);
});

test('config pushes in quick succession leave exactly one sampler running, at the last interval', async () => {
  // Rapid pushes reach the agent while it is still restarting the plugin for the previous one.
  for (const interval of [1, 2, 1, 2]) assert.equal((await c.api('PUT', '/api/v1/plugins/server-stats/config', { interval, diskInterval: 5 })).status, 200);
  const last = await c.api('PUT', '/api/v1/plugins/server-stats/config', { interval: 3, diskInterval: 5 });
  assert.equal(last.status, 200);
  await until('last config persisted', async () => (await stateOf(good)).pushed['server-stats'].interval === 3);
  await sleep(1500);
  const from = Date.now();
  await sleep(10_000);
  const samples = (await history(c, good.nodeId)).filter((s) => s.ts > from);
  // One sampler every 3 s makes 3 or 4 samples in 10 s; a leftover sampler from an earlier push makes more.
  assert.ok(samples.length >= 2 && samples.length <= 4, `${samples.length} samples in 10 s at interval 3: ${samples.map((s) => s.ts - from).join(', ')}`);
  const gaps = samples.slice(1).map((s, i) => s.ts - samples[i].ts);
  assert.ok(gaps.every((g) => g >= 2500), `gaps ${gaps.join(', ')} ms`);
});

test('reports arriving while config pushes restart the plugin are applied, not dropped', async () => {
  const enrolled = await http('POST', `${c.url}/api/v1/enroll`, { body: { token: await c.joinToken(), name: 'cfg-burst' } });
  const link = await openRawLink(c.url, enrolled.body.credential);
  await link.hello(enrolled.body.nodeId);
  const N = 1000;
  const t0 = Date.now();
  for (let seq = 1; seq <= N; seq++) link.send(sampleReport(seq, t0));
  // Each push restarts server-stats on the controller while the burst is being applied (history stays > N).
  for (const historyMinutes of [61, 60, 61, 60, 61, 60]) assert.equal((await c.api('PUT', '/api/v1/plugins/server-stats/config', { interval: 3, diskInterval: 5, historyMinutes })).status, 200);
  await until('burst acknowledged', () => link.acked() === N, 30_000);
  link.ws.close();
  assert.equal((await history(c, enrolled.body.nodeId)).length, N);
  assert.equal((await c.api('DELETE', `/api/v1/nodes/${enrolled.body.nodeId}`)).status, 200);
});

test('an agent whose config names another controller links to the one it joined, and says so', async () => {
  await until('cfg-good up', async () => (await c.node(good.nodeId))?.state === 'up');
  assert.match(good.proc.output(), /config names another controller than the one this agent joined/);
});
