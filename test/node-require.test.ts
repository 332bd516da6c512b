/**
 * Commands reach a node as soon as its link is open, before its first heartbeats make it "up"; only
 * a node without a link is refused. `ctx.nodes.require(ref, plugin)` says exactly why a node cannot
 * take a plugin's commands, seen here through app-store's Websoft9 routes and the prober's REST route.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { TestAgent, TestController, until, type ApiResponse } from './helpers/cluster.ts';

const NO_SOCKET = '/nonexistent/outpost-require.sock';
/** The agents run on this machine: without a Docker Engine here the refusal names that cause too (agent/capabilities.ts). */
const HAS_DOCKER = (() => {
  try {
    return statSync('/var/run/docker.sock').isSocket();
  } catch {
    return false;
  }
})();
let c: TestController;
let plain: TestAgent;
let nodock: TestAgent;

before(async () => {
  // Beats 30 s apart: a node counts as "up" only after its second beat, so for the whole test it is
  // linked but still "unknown" — the window in which commands used to be refused.
  c = await TestController.start({ config: { heartbeat: { intervalMs: 30_000, downAfter: 3, upAfter: 2 }, plugins: { prober: {}, 'app-store': {} } } });
  [plain, nodock] = await Promise.all([
    TestAgent.start(c, { name: 'plain', plugins: { prober: {} } }),
    TestAgent.start(c, { name: 'nodock', plugins: { prober: {}, 'app-store': { socketPath: NO_SOCKET } } }),
  ]);
  for (const a of [plain, nodock]) await until(`${a.nodeId} linked`, async () => (await c.node(a.nodeId))?.connected === true, 20_000);
});

after(async () => {
  await Promise.all([plain?.stop(), nodock?.stop()]);
  await c?.stop();
});

function websoft9(r: ApiResponse, status: number, message: string): void {
  assert.equal(r.status, status, r.text);
  assert.deepEqual(r.body, { code: '0', message, data: {} });
}

function rest(r: ApiResponse, status: number, message: string): void {
  assert.equal(r.status, status, r.text);
  assert.deepEqual(r.body, { error: { status, message } });
}

test('a linked node whose heartbeats have not made it "up" yet takes commands', async () => {
  const node = await c.node(plain.nodeId);
  assert.equal(node.state, 'unknown', 'premise: linked, not up yet');
  const r = await c.api('GET', '/api/v1/prober/nodes/plain');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.node, 'plain');
  assert.equal(typeof r.body.status.groups, 'number');
});

test('require: each refusal is exact (unknown, unnamed, plugin not enabled, plugin failed with its error)', async () => {
  const notEnabled = HAS_DOCKER
    ? 'app-store is not enabled on node plain'
    : 'Docker is not available on node plain: no Docker Engine socket at /var/run/docker.sock (install and start Docker, e.g. apt-get install docker.io), so app-store is not enabled there';
  websoft9(await c.api('GET', '/getAllAppInfo?node=plain'), 503, notEnabled);
  const failed = (await c.node(nodock.nodeId)).plugins.find((p: { name: string }) => p.name === 'app-store');
  assert.equal(failed.state, 'failed');
  assert.match(failed.error, /Docker Engine unreachable at \/nonexistent\/outpost-require\.sock/);
  websoft9(await c.api('GET', '/getAllAppInfo?node=nodock'), 503, `app-store on node nodock is failed: ${failed.error}`);
  rest(await c.api('GET', `/api/v1/apps/nodock/nginx/secrets`), 503, `app-store on node nodock is failed: ${failed.error}`);
  websoft9(await c.api('GET', '/getAllAppInfo?node=ghost'), 404, 'unknown node "ghost"');
  rest(await c.api('GET', '/api/v1/prober/nodes/ghost'), 404, 'unknown node "ghost"');
  websoft9(await c.api('GET', '/getAllAppInfo'), 400, 'several nodes are enrolled: name one with the "node" parameter');
});

test('require: a node whose link is gone is down, at once (no watchdog delay)', async () => {
  await plain.kill('SIGKILL');
  const r = await until('the link of plain closed', async () => {
    const x = await c.api('GET', '/api/v1/prober/nodes/plain');
    return x.status === 503 ? x : undefined;
  });
  rest(r, 503, 'node plain is down: its agent is not connected');
  websoft9(await c.api('GET', '/getAllAppInfo?node=plain'), 503, 'node plain is down: its agent is not connected');
  assert.notEqual((await c.node(plain.nodeId)).state, 'down', 'the watchdog has not decided yet: the link alone refuses');
});
