/**
 * Lazy halves: a host imports only its own half of the plugins it runs. A real agent started with
 * the CLI, running server-stats and prober, maps no uWebSockets.js library and never resolves
 * dockerode or hyper-express; the controls (an agent running app-store, the controller itself) show
 * the same checks do see those modules when they are loaded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ROOT, TestAgent, TestController, tempDir, until } from './helpers/cluster.ts';

const HOOK = join(ROOT, 'test/helpers/module-log.mjs');
const UWS = /uws_[\w]+\.node|uWebSockets/;

async function loggedAgent(c: TestController, name: string, plugins: Record<string, unknown>) {
  const log = join(await tempDir('outpost-modules-'), 'modules.txt');
  const agent = await TestAgent.start(c, { name, plugins, env: { NODE_OPTIONS: `--import=${HOOK}`, OUTPOST_TEST_MODULE_LOG: log } });
  return { agent, log, modules: async () => (await readFile(log, 'utf8')).split('\n').filter(Boolean), maps: () => readFile(`/proc/${agent.proc.child.pid}/maps`, 'utf8') };
}

test('an agent running server-stats and prober loads neither uWS nor dockerode, nor any controller half', async () => {
  const c = await TestController.start();
  const lean = await loggedAgent(c, 'lean', { 'server-stats': { interval: 1, diskInterval: 5 }, prober: {} });
  const docker = await loggedAgent(c, 'docker', { 'app-store': { socketPath: join(ROOT, 'no-docker-here.sock') } });
  try {
    await until('both agents report their plugins', async () => {
      const [a, b] = await Promise.all([c.node(lean.agent.nodeId), c.node(docker.agent.nodeId)]);
      return a?.plugins?.length === 2 && a.plugins.every((p: { state: string }) => p.state === 'running') && b?.plugins?.length === 1;
    }, 30_000);
    await until('a server-stats sample', async () => (await c.api('GET', '/searchServer?node=lean')).body?.code === '1');

    const modules = await lean.modules();
    const has = (re: RegExp) => modules.filter((m) => re.test(m));
    assert.ok(has(/plugins\/prober\/agent\.ts$/).length && has(/plugins\/server-stats\/agent\.ts$/).length, 'the module log sees the agent halves');
    assert.deepEqual(has(/node_modules\/(dockerode|hyper-express|uWebSockets\.js|systeminformation)\//), [], 'no dockerode, hyper-express, uWS or systeminformation');
    assert.deepEqual(has(/plugins\/[^/]+\/(controller|api|rest|panel)\.ts$|plugins\/app-store\//), [], 'no controller half, no plugin it does not run');
    assert.deepEqual(has(/\/controller\/[^/]+\.ts$/), [], 'nothing of the controller process');
    assert.doesNotMatch(await lean.maps(), UWS, 'no uWS library mapped');

    // The controls: the same checks see what is loaded.
    assert.ok((await docker.modules()).some((m) => /node_modules\/dockerode\//.test(m)), 'an agent running app-store loads dockerode');
    assert.match(await readFile(`/proc/${c.proc.child.pid}/maps`, 'utf8'), UWS, 'the controller maps uWS');
  } finally {
    for (const a of [lean, docker]) {
      await a.agent.stop();
      await rm(dirname(a.log), { recursive: true, force: true });
    }
    await c.stop();
  }
});
