/** Watchdog: a dead agent goes down, comes back up after restart, and one late heartbeat does not flap. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestController, TestAgent, until, sleep } from './helpers/cluster.ts';

interface Ev {
  ts: string;
  event: string;
  data: { node: { id: string; state: string }; previous: string };
}

async function eventsFor(c: TestController, nodeId: string): Promise<Ev[]> {
  const r = await c.api('GET', '/api/v1/events?limit=1000');
  assert.equal(r.status, 200);
  return (r.body.events as Ev[]).filter((e) => /^node\.(up|down)$/.test(e.event) && e.data?.node?.id === nodeId).reverse();
}

// One controller for the file, with heartbeats wider than the harness default (500 ms, down after 3
// missed, up after 2) so a loaded CI machine cannot fake an outage or a flap, and a short restart grace.
const GRACE = 6000;
let wide: TestController | undefined;
const wideController = async () => (wide ??= await TestController.start({ config: { heartbeat: { intervalMs: 500, downAfter: 3, upAfter: 2, restartGraceMs: GRACE } } }));
after(async () => {
  await wide?.stop();
});

test('SIGKILL an agent: node.down within the window; restart it: node.up again', async (t) => {
  const c = await wideController();
  const a = await TestAgent.start(c, { name: 'wd-kill' });
  try {
    await until('node up', async () => (await c.node(a.nodeId))?.state === 'up');
    // The state turns up at once; its event is listed once the event log has written it.
    const upEvents = await until('node.up event', async () => {
      const evs = await eventsFor(c, a.nodeId);
      return evs.length > 0 ? evs : undefined;
    });
    assert.deepEqual(upEvents.map((e) => e.event), ['node.up']);

    const killedAt = Date.now();
    await a.kill('SIGKILL');
    const down = await until('node.down event', async () => (await eventsFor(c, a.nodeId)).find((e) => e.event === 'node.down'), 15_000);
    const detectMs = Date.parse(down.ts) - killedAt;
    assert.equal(down.data.previous, 'up');
    assert.equal(down.data.node.state, 'down');
    // Not before the window could have passed (3 × 500 ms minus one beat already in flight).
    assert.ok(detectMs >= 1000, `went down ${detectMs} ms after the kill, before the window`);
    const node = await c.node(a.nodeId);
    assert.equal(node.state, 'down');
    assert.equal(node.connected, false);
    const status = await c.api('GET', '/api/v1/status');
    assert.equal(status.body.nodes.down, 1);

    await a.restart();
    const back = await until('node.up after restart', async () => {
      const evs = await eventsFor(c, a.nodeId);
      return evs.at(-1)?.event === 'node.up' && evs.length === 3 ? evs : undefined;
    });
    assert.deepEqual(back.map((e) => e.event), ['node.up', 'node.down', 'node.up']);
    assert.equal(back[2].data.previous, 'down');
    assert.equal((await c.node(a.nodeId)).state, 'up');
    // And it stays up: no flapping after the recovery.
    await sleep(1500);
    assert.deepEqual((await eventsFor(c, a.nodeId)).map((e) => e.event), ['node.up', 'node.down', 'node.up']);
    t.diagnostic(`node.down detected ${detectMs} ms after SIGKILL (window ${3 * 500} ms)`);
  } finally {
    await a.stop();
  }
});

test('one late heartbeat (agent paused for about one interval) does not flap the node', async () => {
  const c = await wideController();
  const a = await TestAgent.start(c, { name: 'wd-late' });
  try {
    await until('node up', async () => (await c.node(a.nodeId))?.state === 'up');
    await sleep(1000);
    const before = (await c.node(a.nodeId)).lastHeartbeat as number;
    const pid = a.proc.child.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      await sleep(600);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await until('heartbeats resume', async () => ((await c.node(a.nodeId)).lastHeartbeat as number) > before + 600);
    await sleep(1500);
    const evs = await eventsFor(c, a.nodeId);
    assert.deepEqual(evs.map((e) => e.event), ['node.up'], 'a single late heartbeat must not mark the node down');
    assert.equal((await c.node(a.nodeId)).state, 'up');
    assert.equal(a.proc.child.exitCode, null);
  } finally {
    await a.stop();
  }
});

test('after a controller restart, agents in reconnect backoff get a grace period; a dead one still goes down after it', async (t) => {
  const c = await wideController();
  // A slow reconnect backoff, as a real agent has after a controller outage (seconds, not the harness' 0.1 s).
  const slow = { link: { backoff: { baseDelay: 2, factor: 1.5, jitter: 0.2, maxDelay: 3 } } };
  const alive = await TestAgent.start(c, { name: 'wd-alive', config: slow });
  const dead = await TestAgent.start(c, { name: 'wd-dead', config: slow });
  try {
    await until('both up', async () => (await c.node(alive.nodeId))?.state === 'up' && (await c.node(dead.nodeId))?.state === 'up');
    c.proc.child.kill('SIGKILL');
    await c.proc.exited;
    await dead.kill('SIGKILL');
    await sleep(4000);
    // Taken before the spawn, so the controller's own start (when the grace begins) is later.
    const restartedAt = Date.now();
    await c.restart();
    await until('alive agent reconnected', async () => (await c.node(alive.nodeId))?.connected, 15_000);
    const down = await until('dead node declared down', async () => (await eventsFor(c, dead.nodeId)).find((e) => e.event === 'node.down'), 30_000);
    const afterMs = Date.parse(down.ts) - restartedAt;
    assert.ok(afterMs >= GRACE, `dead node declared down ${afterMs} ms after the restart, inside the ${GRACE} ms grace`);
    // The event log outlives the restart: only what happened since counts.
    const since = (await eventsFor(c, alive.nodeId)).filter((e) => Date.parse(e.ts) >= restartedAt);
    assert.deepEqual(since.map((e) => e.event), [], 'the live node must not flap down and up');
    assert.equal((await c.node(alive.nodeId)).state, 'up');
    t.diagnostic(`dead node declared down ${afterMs} ms after the controller restart (grace ${GRACE} ms)`);
  } finally {
    await alive.stop();
    await dead.stop();
  }
});
