import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startNetnsCluster } from './lib/netns-cluster.ts';
import { sleep } from '../helpers/cluster.ts';

/** Scheduling slack on a busy 2-core CI machine, on top of the watchdog window itself. */
const SLACK_MS = 1500;

test('three namespaced nodes: a cut-off node goes down within the watchdog window and comes back', async (t) => {
  const c = await startNetnsCluster({ nodes: 3 });
  try {
    const nodes = (await c.controller.api('GET', '/api/v1/nodes')).body.nodes as Array<{ id: string; state: string; address: string }>;
    assert.equal(nodes.length, 3);
    assert.deepEqual(nodes.map((n) => n.address).sort(), c.net.nodes.map((n) => n.ip).sort());

    // The agents answer on their own namespace addresses, not on loopback.
    const monitor = await fetch(`${c.agentUrl(0)}/healthz`);
    assert.equal(monitor.status, 200);

    await c.cutOff(1);
    const tookDown = await c.waitState(1, 'down', 20_000);
    assert.ok(tookDown <= c.downWindowMs() + SLACK_MS, `down after ${tookDown} ms, window ${c.downWindowMs()} ms`);
    // The cut is real: the host cannot reach the node either.
    const unreachable = await fetch(`${c.agentUrl(1)}/healthz`, { signal: AbortSignal.timeout(1000) }).then(() => false, () => true);
    assert.ok(unreachable, 'a cut-off node must not answer');
    // The other two keep their heartbeats: cutting one node must not disturb the rest.
    await sleep(c.downWindowMs());
    assert.equal(await c.state(0), 'up');
    assert.equal(await c.state(2), 'up');

    await c.restore(1);
    const tookUp = await c.waitState(1, 'up', 30_000);
    t.diagnostic(`down detected ${tookDown} ms after the cut (window ${c.downWindowMs()} ms); up ${tookUp} ms after restore`);
    const after = (await c.controller.api('GET', '/api/v1/nodes')).body.nodes as Array<{ state: string }>;
    assert.deepEqual(after.map((n) => n.state), ['up', 'up', 'up']);
  } finally {
    await c.stop();
  }
});
