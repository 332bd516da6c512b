/**
 * jobs across a controller kill -9: tasks acknowledged before the crash are all there; tasks that fell
 * due while it was down run promptly after the restart, each once; an attempt in flight at the crash
 * reports through the agent's outbox and does not run again; a nonce used before the crash stays used.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestAgent, TestController, sleep, until } from './helpers/cluster.ts';
import { JobsClient, QUIET, type JobsApp } from './helpers/jobs-client.ts';
import { JobsReceiver } from './helpers/jobs-receiver.ts';

let c: TestController;
let agent: TestAgent;
let rcv: JobsReceiver;
let jobs: JobsClient;
let app: JobsApp;

before(async () => {
  rcv = await JobsReceiver.start();
  c = await TestController.start({ config: { plugins: { jobs: { leaseGraceSec: 30 } } }, env: QUIET });
  agent = await TestAgent.start(c, { name: 'edge', plugins: { jobs: {} }, env: QUIET });
  jobs = new JobsClient(c);
  app = await jobs.createApp({ appName: 'crash', linkUrl: rcv.url(), retryTotal: 0 });
  rcv.secret = app.secretKey;
  rcv.answer = (call) => (call.path === '/hold' ? 'hold' : { body: 'success' });
  await until('the agent runs jobs', async () => (await c.node(agent.nodeId))?.plugins?.some((p: any) => p.name === 'jobs' && p.state === 'running'), 30_000);
});

after(async () => {
  await agent?.stop();
  await c?.stop();
  await rcv?.close();
});

async function nodeRunsJobs(): Promise<void> {
  await until('the agent is back with jobs running', async () => {
    const n = await c.node(agent.nodeId);
    return n?.connected && n.plugins?.some((p: any) => p.name === 'jobs' && p.state === 'running');
  }, 30_000);
}

test('kill -9 of the controller: nothing acknowledged is lost, tasks due during the outage run once, promptly after the restart', async () => {
  const t0 = Date.now();
  // Due while the controller is down, and one due well after it is back.
  const firstDue = t0 + 4000;
  const during = await Promise.all(Array.from({ length: 20 }, (_, i) => jobs.createTask(app, { taskNo: `during-${i}`, content: { i }, runtime: new Date(firstDue + i * 50).toISOString() })));
  const laterDue = Date.now() + 12_000;
  const afterwards = await jobs.createTask(app, { taskNo: 'after', content: { after: true }, runtime: new Date(laterDue).toISOString() });
  const headers = jobs.headers(app);
  assert.equal((await jobs.signed(app, 'GET', `/task/detail?id=${during[0]}`, undefined, headers)).body.code, 0);
  assert.ok(Date.now() < firstDue, 'the tasks were created before they fell due');
  // Down until every one of them is due, however fast the restart.
  await c.restart('SIGKILL', firstDue + 20 * 50 + 500);
  const restartedAt = Date.now();
  // A nonce accepted before the crash is still used.
  const replay = await jobs.signed(app, 'GET', `/task/detail?id=${during[0]}`, undefined, headers);
  assert.equal(replay.status, 401);
  assert.match(replay.body.msg, /nonce: already used/);
  await nodeRunsJobs();
  for (const id of during) {
    const calls = await rcv.waitFor(id, 1, 20_000);
    assert.ok(calls[0].at >= restartedAt, `task ${id} ran before the controller was back`);
  }
  const last = Math.max(...during.map((id) => rcv.of(id)[0].at));
  assert.ok(last - restartedAt < 10_000, `the overdue tasks ran ${last - restartedAt} ms after the restart`);
  for (const id of during) await jobs.until(app, id, 'success', (t) => t.status === 2);
  // The task due after the restart runs at its time, not at once.
  const [call] = await rcv.waitFor(afterwards, 1, 20_000);
  assert.ok(call.at >= laterDue && call.at - laterDue < 1000, `due ${laterDue}, called ${call.at}`);
  await sleep(500);
  for (const id of [...during, afterwards]) assert.equal(rcv.of(id).length, 1, `task ${id} ran once`);
});

test('an attempt in flight at the crash: its outcome comes through the agent outbox after the restart; the task does not run again', async () => {
  const held = await jobs.createApp({ appName: 'crash-held', linkUrl: rcv.url('/hold'), retryTotal: 0 });
  const id = await jobs.createTask(held, { content: 1, timeout: 30_000 });
  await rcv.waitFor(id);
  assert.equal((await jobs.task(held, id)).status, 1);
  await c.restart('SIGKILL');
  // The receiver answers now, after the crash: the agent keeps the outcome in its outbox until the controller acknowledges it.
  assert.ok(rcv.release(id), 'the callback was still held open by the agent');
  const t = await jobs.until(held, id, 'success from the outbox', (x) => x.status === 2, 20_000);
  assert.equal(t.attempts.length, 1);
  await sleep(1000);
  assert.equal(rcv.of(id).length, 1, `no second callback: ${JSON.stringify(t)}`);
  const events = (await c.api('GET', '/api/v1/events?limit=500')).body.events.filter((e: any) => e.event === 'jobs.task.finished' && e.data.id === id);
  assert.equal(events.length, 1, JSON.stringify(events));
});
