/**
 * jobs on real processes: a controller and two agents on loopback, callbacks to a real receiver that
 * checks them as an application would. Timing, headers and body, retries, the timeout, cancel of a
 * running attempt, and a node killed mid-attempt (the task moves to the other node).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appPayload } from '../plugins/jobs/sign.ts';
import { formatLocal } from '../plugins/jobs/runtime.ts';
import { TestAgent, TestController, http, until } from './helpers/cluster.ts';
import { JobsClient, QUIET, type JobsApp } from './helpers/jobs-client.ts';
import { JobsReceiver } from './helpers/jobs-receiver.ts';

let c: TestController;
let agents: TestAgent[] = [];
const NAMES = ['edge-a', 'edge-b'];
let rcv: JobsReceiver;
let jobs: JobsClient;
let app: JobsApp;

before(async () => {
  rcv = await JobsReceiver.start();
  c = await TestController.start({ config: { plugins: { jobs: { leaseGraceSec: 5, listen: { host: '127.0.0.1', port: 0 } } } }, env: QUIET });
  agents = await Promise.all(NAMES.map((name) => TestAgent.start(c, { name, plugins: { jobs: {} }, env: QUIET })));
  await until('both agents run jobs', async () => {
    const nodes = (await c.api('GET', '/api/v1/nodes')).body.nodes;
    return nodes.filter((n: any) => n.state === 'up' && n.plugins.some((p: any) => p.name === 'jobs' && p.state === 'running')).length === 2;
  }, 30_000);
  // Signed as the original's clients sign (app_key), on the plugin's node:http port.
  jobs = await JobsClient.onListenPort(c);
  app = await jobs.createApp({ appName: 'shop', linkUrl: rcv.url(), step: 1, retryTotal: 2 });
  rcv.secret = app.secretKey;
  rcv.answer = (call) => {
    if (call.path === '/hold') return 'hold';
    const tag = (call.data as { tag?: string } | undefined)?.tag;
    if (tag === 'flaky' && call.attempt <= 2) return { status: 500, body: 'not yet' };
    if (tag === 'never') return { body: 'nope' };
    return { body: 'success' };
  };
});

after(async () => {
  for (const a of agents) await a.stop();
  await c?.stop();
  await rcv?.close();
});

test('delayed tasks are called back in runtime order, never before their runtime and within a second after it', async () => {
  const t0 = Date.now();
  const dues = [2600, 1400, 2000, 3200, 1700].map((d) => t0 + d);
  const ids = await Promise.all(dues.map((due, i) => jobs.createTask(app, { taskNo: `timed-${i}`, content: { i }, runtime: new Date(due).toISOString() })));
  // The original's format, whole seconds in Asia/Shanghai.
  const localDue = Math.ceil((t0 + 2000) / 1000) * 1000;
  const localId = await jobs.createTask(app, { taskNo: 'timed-local', content: { local: true }, runtime: formatLocal(localDue, 'Asia/Shanghai') });
  const all = [...ids.map((id, i) => [id, dues[i]] as const), [localId, localDue] as const];
  for (const [id, due] of all) {
    const [call] = await rcv.waitFor(id);
    assert.ok(call.at >= due, `task ${id} called ${due - call.at} ms before its runtime`);
    assert.ok(call.at - due < 1000, `task ${id} called ${call.at - due} ms after its runtime`);
  }
  const order = [...all].sort((a, b) => a[1] - b[1]).map(([id]) => rcv.of(id)[0].at);
  assert.deepEqual(order, [...order].sort((a, b) => a - b), 'called back in runtime order');
});

test('the callback as a receiver checks it: signed headers, body signature, idempotency headers, content as written', async () => {
  const content = '{"order":12345678901234567890,"note":"\\u00e9t\\u00e9","list":[1.50,null]}';
  const r = await jobs.signed(app, 'POST', '/task/create', undefined);
  assert.equal(r.body.code, 1, 'a body is required');
  // On the controller's own port, with the header name its server accepts.
  const onController = new JobsClient(c);
  const created = await http('POST', `${c.url}/task/create`, { raw: `{"content":${content}}`, headers: { ...onController.headers(app), 'content-type': 'application/json' } });
  const id: number = created.body.data.taskId;
  const [call] = await rcv.waitFor(id);
  assert.equal(call.method, 'POST');
  assert.equal(call.headers['content-type'], 'application/json');
  assert.equal(call.body, `{"data":${content}}`);
  assert.ok(call.signedOk, 'app_key, nonce, timestamps, payload, signature verify with the secretKey');
  assert.ok(call.bodySignedOk, 'X-Outpost-Signature verifies over the body');
  assert.equal(call.headers.app_key, app.appKey);
  assert.equal(call.headers.payload, appPayload('shop'));
  assert.ok(Math.abs(Number(call.headers.timestamps) - call.at / 1000) < 5);
  assert.equal(call.taskId, id);
  assert.equal(call.attempt, 1);
  const t = await jobs.until(app, id, 'success', (x) => x.status === 2);
  assert.match(t.attempts[0].node, /^edge-[ab]$/);
});

test('retries: 1 + retryTotal attempts, step seconds after each failure; the last failure fails the task', async () => {
  const id = await jobs.createTask(app, { taskNo: 'flaky', content: { tag: 'flaky' } });
  const calls = await rcv.waitFor(id, 3);
  const t = await jobs.until(app, id, 'success after two failures', (x) => x.status === 2);
  assert.deepEqual(t.attempts.map((a: any) => [a.n, a.statusCode]), [[1, 500], [2, 500], [3, 200]]);
  assert.match(t.attempts[0].error, /^HTTP 500: "not yet"$/);
  for (let i = 1; i < 3; i++) {
    const gap = calls[i].at - calls[i - 1].at;
    assert.ok(gap >= 1000, `retry ${i} came ${gap} ms after the previous attempt, before step (1 s)`);
    assert.ok(gap < 3000, `retry ${i} came ${gap} ms after the previous attempt`);
  }
  const never = await jobs.createTask(app, { taskNo: 'never', content: { tag: 'never' } });
  const failed = await jobs.until(app, never, 'failed', (x) => x.status === 4, 20_000);
  assert.equal(failed.attempts.length, 3, '1 + retryTotal (2)');
  assert.equal(failed.error, 'HTTP 200 but the body is "nope", not "success"');
  assert.equal(rcv.of(never).length, 3);
});

test('timeout: the request is aborted at the deadline and the attempt fails', async () => {
  const slow = await jobs.createApp({ appName: 'slow', linkUrl: rcv.url('/hold'), retryTotal: 0 });
  const id = await jobs.createTask(slow, { content: 1, timeout: 700 });
  const t = await jobs.until(slow, id, 'failed by its timeout', (x) => x.status === 4);
  assert.equal(t.attempts[0].error, 'timed out after 700 ms');
  assert.ok(t.attempts[0].elapsedMs >= 700 && t.attempts[0].elapsedMs < 5000, String(t.attempts[0].elapsedMs));
  await until('the receiver saw the connection cut', () => rcv.of(id)[0]?.aborted);
});

test('cancel of a running task aborts the request on its node; the task ends cancelled whatever the receiver does', async () => {
  const held = await jobs.createApp({ appName: 'held', linkUrl: rcv.url('/hold'), retryTotal: 3 });
  const id = await jobs.createTask(held, { content: 1, timeout: 60_000 });
  await rcv.waitFor(id);
  assert.equal((await jobs.task(held, id)).status, 1);
  const r = await jobs.signed(held, 'POST', '/task/cancel', { id });
  assert.equal(r.body.code, 0, r.text);
  assert.equal(r.body.data.task.status, 3);
  await until('the node aborted the request', () => rcv.of(id)[0].aborted);
  const t = await jobs.until(held, id, 'the attempt closed as cancelled', (x) => x.attempts[0].elapsedMs !== null);
  assert.equal(t.status, 3);
  assert.equal(t.attempts[0].error, 'cancelled');
  assert.equal(rcv.of(id).length, 1, 'no retry after a cancel');
  const events = (await c.api('GET', '/api/v1/events?limit=500')).body.events.filter((e: any) => e.event === 'jobs.task.finished' && e.data.id === id);
  assert.deepEqual(events.map((e: any) => e.data.state), ['cancelled']);
});

test('a node killed mid-attempt: the task goes to the other node, and the receiver can dedupe on X-Outpost-Task', async () => {
  const kill = await jobs.createApp({ appName: 'kill', linkUrl: rcv.url('/kill'), retryTotal: 0 });
  let first = true;
  const answer = rcv.answer;
  rcv.answer = (call) => {
    if (call.path !== '/kill') return answer(call);
    if (first) {
      first = false;
      return 'hold';
    }
    return { body: 'success' };
  };
  const id = await jobs.createTask(kill, { content: 1, timeout: 60_000 });
  await rcv.waitFor(id);
  const running = await jobs.task(kill, id);
  const victim = agents[NAMES.indexOf(running.attempts[0].node)];
  await victim.kill('SIGKILL');
  const t = await jobs.until(kill, id, 'success on the other node', (x) => x.status === 2, 20_000);
  assert.equal(t.attempts.length, 2);
  assert.match(t.attempts[0].error, /went down during the attempt/);
  assert.notEqual(t.attempts[1].node, t.attempts[0].node);
  const calls = rcv.of(id);
  assert.deepEqual(calls.map((x) => [x.taskId, x.attempt]), [[id, 1], [id, 2]]);
});
