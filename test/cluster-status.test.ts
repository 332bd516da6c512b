/**
 * GET /api/v1/status on a single controller on files: its id (kept across restarts in its data dir),
 * the lease it holds from start to stop (epoch 1: a single controller behaves as before), its links,
 * the store; admin only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { http, TestAgent, TestController, until } from './helpers/cluster.ts';

test('status: controller id stable across a kill -9, lease held at epoch 1 on files, links of this controller, store health', async () => {
  const c = await TestController.start();
  let agent: TestAgent | undefined;
  try {
    agent = await TestAgent.start(c, { name: 'status-a' });
    const s = await until('the link counted', async () => {
      const r = await c.api('GET', '/api/v1/status');
      return r.status === 200 && r.body.controllers?.[0]?.links === 1 ? r.body : undefined;
    });
    assert.match(s.controller.id, /^ctl_[0-9a-f]{16}$/);
    assert.equal((await readFile(join(c.dataDir, 'controller-id'), 'utf8')).trim(), s.controller.id);
    assert.deepEqual({ ...s.lease }, { name: 'singleton', held: true, holder: s.controller.id, epoch: 1, expiresAt: null, ttlMs: null });
    assert.deepEqual(s.controllers, [{ id: s.controller.id, self: true, links: 1, nodes: [agent.nodeId], url: c.url, expiresAt: null }]);
    assert.deepEqual(s.store, { kind: 'lowdb', healthy: true, problems: [] });
    assert.equal(s.nodes.total, 1, 'the older fields stay');
    assert.equal((await http('GET', `${c.url}/api/v1/status`)).status, 401, 'admin only');

    await c.restart('SIGKILL');
    const again = (await c.api('GET', '/api/v1/status')).body;
    assert.equal(again.controller.id, s.controller.id, 'the same id after a restart on the same data dir');
    assert.equal(again.lease.held, true);
  } finally {
    await agent?.stop();
    await c.stop();
  }
});
