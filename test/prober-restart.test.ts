import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestController, TestAgent, until } from './helpers/cluster.ts';
import { startTarget, startReceiver, postForm } from './prober-fixtures.ts';

const INTERVAL = 5;

test('a controller killed mid-round loses no monitor and no callback', async () => {
  const [target, receiver] = await Promise.all([startTarget(), startReceiver()]);
  const c = await TestController.start({
    config: {
      plugins: { prober: { apps: { shop: { callbackUrl: `${receiver.url}/cb`, callbackSecret: 'restart-secret-1' } }, minInterval: 5, graceMs: 1500 } },
      webhooks: { baseDelayMs: 100, maxDelayMs: 500 },
    },
  });
  const agent = await TestAgent.start(c, { name: 'r1', plugins: { prober: {} } });
  try {
    await until('a live probe node', async () => (await c.api('GET', '/api/v1/prober/groups')).body?.probe_nodes?.some((n: any) => n.live), 30_000);
    const r = await postForm(`${c.url}/operate_monitor`, { app_name: 'shop', group_id: 5, record_ids: '501:502', ips: '127.0.0.1:127.0.0.1', interval: INTERVAL, timeout: 1, port: target.port, path: '/ok' });
    assert.equal(r.body.code, 1000);
    const stamps = () => [...new Set(receiver.received.map((x) => Number(new URLSearchParams(x.body).get('timestamp'))))].sort((a, b) => a - b);
    await until('a first callback', () => stamps().length >= 1, 30_000);
    const first = stamps()[0];

    // Callbacks now pile up in the outbox, then the controller dies in the middle of a round.
    receiver.failing = true;
    await until('a refused callback attempt', () => receiver.refused >= 1, 30_000);
    const ms = INTERVAL * 1000;
    await new Promise((res) => setTimeout(res, ms - (Date.now() % ms) + ms / 2));
    const killedRound = Math.floor(Date.now() / ms) * INTERVAL;
    await c.restart('SIGKILL');

    const groups = (await c.api('GET', '/api/v1/prober/groups')).body.groups;
    assert.deepEqual(groups.map((g: any) => [g.app_name, g.group_id, g.records.length]), [['shop', 5, 2]], 'the monitor survived');
    receiver.failing = false;
    const want = killedRound + 2 * INTERVAL;
    await until(`callbacks up to round ${want}`, () => stamps().at(-1)! >= want, 60_000, 200);
    const got = stamps().filter((t) => t <= want);
    const expected: number[] = [];
    for (let t = first; t <= want; t += INTERVAL) expected.push(t);
    assert.deepEqual(got, expected, 'one callback for every round, including the one in progress at the crash and those queued before it');
    for (const x of receiver.received) {
      const result = JSON.parse(new URLSearchParams(x.body).get('result')!);
      assert.deepEqual(result.map((e: any) => e.record_id).sort(), ['501', '502']);
      assert.ok(result.every((e: any) => e.status === '1'));
    }
  } finally {
    await agent.stop();
    await c.stop();
    await target.close();
    await receiver.close();
  }
});

test('add_node: with autoEnrollAgents off, an agent probes only once its address is added', async () => {
  const c = await TestController.start({ config: { plugins: { prober: { apps: { shop: {} }, autoEnrollAgents: false, minInterval: 5 } } } });
  const agent = await TestAgent.start(c, { name: 'enrolled', plugins: { prober: {} } });
  try {
    await until('node up', async () => (await c.node(agent.nodeId))?.state === 'up', 30_000);
    assert.deepEqual((await c.api('GET', '/api/v1/prober/groups')).body.probe_nodes, [], 'not a probe node before add_node');
    const add = await postForm(`${c.url}/add_node`, { node_ip: '127.0.0.1', passwd: 'agent-node-passwd' });
    assert.equal(add.body.code, 1000, JSON.stringify(add.body));
    assert.equal(add.body.info.kind, 'agent');
    assert.equal(add.body.info.node, 'enrolled');
    const nodes = (await c.api('GET', '/api/v1/prober/groups')).body.probe_nodes;
    assert.deepEqual(nodes.map((n: any) => [n.name, n.kind, n.live]), [['enrolled', 'agent', true]]);
    const r = await postForm(`${c.url}/operate_monitor`, { app_name: 'shop', group_id: 1, record_ids: '1', ips: '127.0.0.1', interval: 5, timeout: 1, node_ips: '127.0.0.1' });
    assert.equal(r.body.code, 1000, JSON.stringify(r.body));
    assert.deepEqual(r.body.info.nodes, ['enrolled'], 'node_ips pins by address');
  } finally {
    await agent.stop();
    await c.stop();
  }
});
