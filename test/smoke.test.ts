import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestController, TestAgent, until } from './helpers/cluster.ts';

test('a joined agent comes up and reports stats', async () => {
  const c = await TestController.start();
  const a = await TestAgent.start(c, { name: 'smoke' });
  try {
    await until('node up', async () => (await c.node(a.nodeId))?.state === 'up');
    const r = await until('stats', async () => {
      const x = await c.api('GET', `/searchServer?node=smoke`);
      return x.body?.code === '1' ? x : undefined;
    });
    assert.match(r.body.data.cpu, /^\d+%$/);
  } finally {
    await a.stop();
    await c.stop();
  }
});
