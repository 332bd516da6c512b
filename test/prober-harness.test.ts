/**
 * The prober on the plugin harness (fake clock): the round ticker runs while a new monitor is being
 * written, and no round of it may open before its probe nodes are picked (a round expecting no node
 * is decided "unknown" with nobody asked, which is what a flaky run of icmp-capability once showed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import prober from '../plugins/prober/index.ts';
import { testPlugin } from '../plugins/sdk/testing/index.ts';

const T0 = Date.UTC(2024, 0, 1);

test('rounds of a monitor created while the ticker runs all expect its probe node', async () => {
  const h = await testPlugin({ plugin: prober, config: { apps: { a: {} }, minInterval: 5, graceMs: 500 }, node: { id: 'n1', name: 'node-1', address: '127.0.0.1' }, now: T0 });
  try {
    await h.settle();
    for (let gid = 1; gid <= 20; gid++) {
      let done = false;
      const res = h.inject({ method: 'POST', url: '/operate_monitor', form: { app_name: 'a', group_id: String(gid), protocol: 'tcp', port: '9', interval: '5', timeout: '1', level: '4', record_ids: `${gid}01`, ips: '127.0.0.1', node_ips: 'node-1' } });
      void res.finally(() => (done = true));
      // The ticker's 250 ms period passes again and again until the monitor is on disk.
      while (!done) await h.clock.tick(250);
      assert.equal((await res).json.code, 1000);
    }
    await h.clock.tick(10_000);
    await h.settle();
    const { results } = (await h.inject({ method: 'GET', url: '/api/v1/prober/results' })).json;
    assert.ok(results.length >= 20, `rounds decided: ${results.length}`);
    const empty = results.filter((r: { nodes: string[] }) => r.nodes.length === 0).map((r: { group_id: number; timestamp: number }) => `${r.group_id}@${r.timestamp}`);
    assert.deepEqual(empty, [], 'rounds opened expecting no node');
  } finally {
    await h.close();
  }
});
