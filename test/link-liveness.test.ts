/** A frozen controller is noticed by its agents: link reported down, then back after it thaws (issue 9, C13). */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestController, TestAgent, until, sleep } from './helpers/cluster.ts';
import { parsePrometheus, valueOf } from './helpers/prom.ts';

const HB = 500;
let c: TestController | undefined;
let a: TestAgent | undefined;
after(async () => {
  c?.proc.child.kill('SIGCONT');
  await a?.stop();
  await c?.stop();
});

async function monitor(): Promise<{ link: string; linkError?: string }> {
  return (await a!.local('GET', '/v1/monitor')).body;
}

async function deadLinks(): Promise<number> {
  return valueOf(parsePrometheus((await a!.local('GET', '/metrics')).text), 'outpost_agent_link_dead_total') ?? -1;
}

test('SIGSTOP on the controller: the agent reports its link down, and reconnects after SIGCONT', async (t) => {
  c = await TestController.start({ config: { heartbeat: { intervalMs: HB, downAfter: 3, upAfter: 2 } } });
  a = await TestAgent.start(c, { name: 'frozen-peer' });
  await until('node up', async () => (await c!.node(a!.nodeId))?.state === 'up');
  // A live, idle link is never given up: several deadlines pass without a false alarm.
  await sleep(HB * 6);
  assert.equal((await monitor()).link, 'connected');
  assert.equal(await deadLinks(), 0);

  c.proc.child.kill('SIGSTOP');
  const frozenAt = Date.now();
  // Generous timeout for a loaded machine; the agent's own deadline is 2 intervals, checked every half interval.
  const down = await until('agent reports the link down', async () => {
    const m = await monitor();
    return m.link !== 'connected' && m;
  }, 30_000, 50);
  t.diagnostic(`link reported down ${Date.now() - frozenAt} ms after SIGSTOP (heartbeat interval ${HB} ms)`);
  assert.match(down.linkError ?? '', /controller did not answer for \d+ ms/);
  assert.equal(await deadLinks(), 1);

  c.proc.child.kill('SIGCONT');
  await until('agent reconnected', async () => (await monitor()).link === 'connected', 30_000);
  await until('controller sees the node connected and up', async () => {
    const n = await c!.node(a!.nodeId);
    return n?.connected && n.state === 'up';
  }, 30_000);
  assert.equal((await monitor()).linkError, undefined);
});
