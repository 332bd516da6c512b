/**
 * ctx.peers and forwarding on a single controller (lowdb): nothing changes. The peer test plugin
 * (test/helpers/peer-plugin.ts) on a real controller and agent: no peers (list and broadcast empty,
 * a call names the controller it cannot reach), commands and messages as before, the node shown
 * linked to this controller, and no internal endpoint (404). The SDK's harness offers no peers by
 * default, and stand-ins when a plugin test asks for them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { TestAgent, TestController, until } from './helpers/cluster.ts';
import { PEER_PLUGIN, writePeerPlugin } from './helpers/peer-plugin.ts';
import { HARNESS_CONTROLLER, testPlugin } from '../plugins/sdk/testing/index.ts';
import type { PluginDefinition } from '../plugins/sdk/contract.ts';

test('on a single controller ctx.peers is empty, commands and messages are unchanged, and the internal endpoint does not exist', async () => {
  const dir = await writePeerPlugin();
  const c = await TestController.start({ config: { pluginDirs: [dir], plugins: { 'server-stats': {}, [PEER_PLUGIN]: {} } } });
  let agent: TestAgent | undefined;
  try {
    agent = await TestAgent.start(c, { name: 'solo', plugins: { [PEER_PLUGIN]: {} }, config: { pluginDirs: [dir] } });
    const self = (await c.api('GET', '/api/v1/status')).body.controller.id;
    await until('the node linked here with the plugin running', async () => {
      const n = (await c.api('GET', `/api/v1/nodes/${agent!.nodeId}`)).body.node;
      return n?.connected && n.controller === self && n.plugins.some((p: any) => p.name === PEER_PLUGIN && p.state === 'running');
    }, 20_000);

    const peers = (await c.api('POST', '/api/v1/zz-fwd/peers', { to: 'ctl_other' })).body;
    assert.deepEqual(peers, { self, list: [], call: { ok: false, error: 'controller ctl_other is not a live peer of this one', status: null }, broadcast: [] });

    assert.deepEqual((await c.api('POST', '/api/v1/zz-fwd/one', { node: 'solo', text: 'here' })).body, { ok: true, result: { text: 'here', node: 'solo' } });
    assert.deepEqual((await c.api('POST', '/api/v1/zz-fwd/one', { node: 'solo', fail: true })).body, { ok: false, error: 'refused on purpose by solo', status: null });
    assert.deepEqual((await c.api('POST', '/api/v1/zz-fwd/one', { node: 'solo', plugin: 'app-store' })).body, { ok: false, error: 'app-store is not enabled on node solo', status: 503 });
    assert.deepEqual((await c.api('POST', '/api/v1/zz-fwd/send', { nodes: 'all', count: 3, size: 100 })).body, { took: 3 });
    await until('pongs', async () => (await c.api('GET', '/api/v1/zz-fwd/state')).body.got[agent!.nodeId]?.length === 3);

    const internal = await fetch(`${c.url}/internal/v1/peer`, { method: 'POST', body: 'x' });
    assert.equal(internal.status, 404);
    assert.equal(c.proc.output().includes('set cluster.advertiseUrl'), false, 'no advice about peers on files');

    await agent.stop();
    await until('the node not linked', async () => (await c.api('GET', `/api/v1/nodes/${agent!.nodeId}`)).body.node?.connected === false);
    const n = (await c.api('GET', `/api/v1/nodes/${agent.nodeId}`)).body.node;
    assert.equal(n.controller, undefined, 'no controller once the link is gone');
    assert.deepEqual((await c.api('POST', '/api/v1/zz-fwd/one', { node: 'solo' })).body, { ok: false, error: 'node solo is down: its agent is not connected', status: 503 });
  } finally {
    await agent?.stop().catch(() => undefined);
    await c.stop();
  }
});

test('the SDK harness offers no peers by default, and stand-ins that answer through the wire when asked', async () => {
  const dir = await writePeerPlugin();
  const plugin = (await import(join(dir, PEER_PLUGIN, 'index.ts'))).default as PluginDefinition;
  const alone = await testPlugin({ plugin });
  try {
    assert.deepEqual((await alone.inject({ method: 'POST', url: '/api/v1/zz-fwd/peers', body: { to: 'ctl_x' } })).json, {
      self: HARNESS_CONTROLLER,
      list: [],
      call: { ok: false, error: 'controller ctl_x is not a live peer of this one', status: null },
      broadcast: [],
    });
    assert.equal(alone.node.controller, HARNESS_CONTROLLER);
  } finally {
    await alone.close();
  }
  const seen: unknown[] = [];
  const h = await testPlugin({
    plugin,
    peers: {
      list: ['ctl_b', 'ctl_c'],
      answer: (controller, method, body: any) => {
        seen.push({ controller, method, buffer: Buffer.isBuffer(body.bytes) });
        if (controller === 'ctl_c') throw new Error('down for the test');
        return { self: controller, bytes: Buffer.concat([body.bytes, Buffer.from('?')]) };
      },
    },
  });
  try {
    const r = (await h.inject({ method: 'POST', url: '/api/v1/zz-fwd/peers', body: { to: 'ctl_b', text: 'yo' } })).json as any;
    assert.deepEqual(r.list, [{ id: 'ctl_b' }, { id: 'ctl_c' }]);
    assert.deepEqual(r.call, { ok: true, result: { self: 'ctl_b', bytes: 'yo?', buffer: true } });
    assert.deepEqual(r.broadcast, [
      { controller: 'ctl_b', ok: true, result: { self: 'ctl_b', bytes: 'yo?', buffer: true } },
      { controller: 'ctl_c', ok: false, error: 'controller ctl_c answered whoami: down for the test' },
    ]);
    assert.ok(seen.every((s: any) => s.buffer), 'bodies reach the stand-ins with their Buffers');
  } finally {
    await h.close();
  }
});
