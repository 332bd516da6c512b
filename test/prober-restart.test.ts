import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestController, TestAgent, until, stopProc } from './helpers/cluster.ts';
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

test('SIGKILL in the middle of a burst of operate_monitor: every acknowledged monitor is there after the restart', async (t) => {
  const c = await TestController.start({ config: { plugins: { prober: { apps: { shop: {} }, minInterval: 5 } } } });
  try {
    const acked = new Map<number, string>();
    const writes = new Map<number, number>();
    let next = 1;
    let killed = false;
    // Inserts, and updates of groups already acknowledged (new records), as fast as the controller answers.
    const client = async () => {
      while (!killed && next <= 2000) {
        const n = next++;
        const group = n % 3 === 0 && acked.size > 0 ? [...acked.keys()][n % acked.size] : n;
        const records = `${group}01:${group}02:${n}`;
        // Counted when sent: a write cut off by the kill may still have landed.
        writes.set(group, (writes.get(group) ?? 0) + 1);
        try {
          const r = await postForm(`${c.url}/operate_monitor`, { app_name: 'shop', group_id: group, record_ids: records, ips: '127.0.0.1:127.0.0.2:127.0.0.3', interval: 5, timeout: 1 });
          if (r.body?.code === 1000) acked.set(group, records);
        } catch {
          return; // died under this request: not acknowledged
        }
      }
    };
    const clients = Array.from({ length: 8 }, client);
    await until('100 monitors acknowledged', () => acked.size >= 100, 60_000, 10);
    killed = true;
    await stopProc(c.proc, 'SIGKILL');
    await Promise.all(clients);
    await c.restart();
    const groups: any[] = (await c.api('GET', '/api/v1/prober/groups')).body.groups;
    const stored = new Map(groups.map((g) => [g.group_id as number, g.records.map((r: any) => String(r.record_id)).join(':')]));
    const lost = [...acked.keys()].filter((g) => !stored.has(g));
    assert.deepEqual(lost, [], 'acknowledged groups missing after the restart');
    // Where one write was sent, the stored records are exactly the acknowledged ones (concurrent updates of one group may land in either order).
    const wrong = [...acked].filter(([g, records]) => writes.get(g) === 1 && stored.get(g) !== records);
    assert.deepEqual(wrong, [], 'groups stored with other records than acknowledged');
    t.diagnostic(`${acked.size} groups acknowledged before the kill, ${stored.size} stored after the restart`);
  } finally {
    await c.stop();
  }
});
