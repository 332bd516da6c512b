/**
 * The jobs plugin and the event log with three controllers on one real PostgreSQL: an application
 * created on A is usable on B; a task created on B is dispatched by the lease holder A (the agent
 * links to A) and called back once; a cancel on C stops a task held for later; a nonce accepted on
 * one controller is refused on another (replayed after, or sent to both at once); events recorded on
 * B (and A and C) are listed by every controller with the same seqs, and delivered once to a webhook subscribed on C.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestAgent, TestController, until } from '../helpers/cluster.ts';
import { JobsClient } from '../helpers/jobs-client.ts';
import { JobsReceiver } from '../helpers/jobs-receiver.ts';
import { startReceiver } from './lib/receiver.ts';
import { controllersOn, postgresForFile } from './lib/postgres.ts';
import { statusOf as status } from './lib/lease.ts';

const pg = postgresForFile();


test('jobs and events across three controllers: app on A used on B, task from B dispatched by A once, cancel on C, nonce replay refused elsewhere, events of B listed by A and delivered once to a webhook made on C', async () => {
  const url = await pg.createDatabase();
  const rcv = await JobsReceiver.start();
  rcv.answer = () => ({ body: 'success' });
  const rx = await startReceiver();
  const config = { plugins: { jobs: {} }, webhooks: { baseDelayMs: 200, maxDelayMs: 400 } };
  const adminToken = `opa_test_jobs_${Date.now().toString(36)}`;
  const start = controllersOn(pg, url, { config, adminToken });
  const cs: TestController[] = [];
  let agent: TestAgent | undefined;
  try {
    const a = await start();
    cs.push(a);
    await until('A holds the lease', async () => (await status(a))?.lease?.held === true, 15_000);
    cs.push(await start(), await start());
    const [, b, c] = cs;
    agent = await TestAgent.start(a, { name: 'jobs-node', plugins: { jobs: {} } });
    await until('the node runs jobs', async () => (await a.node(agent!.nodeId))?.plugins?.some((p: { name: string; state: string }) => p.name === 'jobs' && p.state === 'running'), 30_000);

    // ---- an application created on A, used through B ----
    const onA = new JobsClient(a);
    const onB = new JobsClient(b);
    const onC = new JobsClient(c);
    const app = await onA.createApp({ appName: 'multi', linkUrl: rcv.url('/cb'), retryTotal: 0 });
    rcv.secret = app.secretKey;
    const fromB = await until('B accepts a task of the app made on A', async () => {
      const r = await onB.signed(app, 'POST', '/task/create', { taskNo: 'from-b', content: { tag: 'b' } });
      return r.body?.code === 0 ? (r.body.data.taskId as number) : undefined;
    }, 5000, 20);

    // ---- dispatched by the holder A (the node links to A), called back once ----
    const [call] = await rcv.waitFor(fromB, 1, 15_000);
    assert.ok(call.signedOk, 'signed with the secret made on A');
    await onB.until(app, fromB, 'success seen on B', (t) => t.status === 2);
    await onC.until(app, fromB, 'success seen on C', (t) => t.status === 2);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(rcv.of(fromB).length, 1, 'called back once');

    // Ids and taskNos are one space: tasks created on all three at once get distinct ids; a taskNo taken on one is refused on another.
    const ids = await Promise.all([onA, onB, onC].flatMap((x, i) => [0, 1, 2].map((k) => x.createTask(app, { taskNo: `burst-${i}-${k}`, content: { tag: 'burst' } }))));
    assert.equal(new Set(ids).size, ids.length, `distinct ids: ${ids.join(',')}`);
    const dup = await onC.signed(app, 'POST', '/task/create', { taskNo: 'burst-0-0', content: {} });
    assert.equal(dup.body?.code, 1);
    assert.match(dup.body.msg, /already exists/);
    for (const id of ids) await rcv.waitFor(id, 1, 15_000);

    // ---- cancel on C of a task held for later ----
    const later = await onB.createTask(app, { taskNo: 'later', content: { tag: 'later' }, runtime: new Date(Date.now() + 3000).toISOString() });
    const cancelled = await onC.signed(app, 'POST', '/task/cancel', { id: later });
    assert.equal(cancelled.body?.code, 0, cancelled.text);
    await onA.until(app, later, 'cancelled seen on the holder', (t) => t.status === 3);
    await new Promise((r) => setTimeout(r, 4500));
    assert.equal(rcv.of(later).length, 0, 'never called back');
    assert.equal((await onA.task(app, later)).status, 3);

    // ---- a nonce accepted on one controller is refused on another ----
    const h = onA.headers(app);
    const first = await onA.signed(app, 'POST', '/task/create', { taskNo: 'nonce-1', content: {} }, h);
    assert.equal(first.body?.code, 0, first.text);
    const replayed = await new JobsClient(b).signed(app, 'POST', '/task/create', { taskNo: 'nonce-2', content: {} }, { ...h, 'app-key': app.appKey });
    assert.equal(replayed.status, 401, replayed.text);
    assert.match(replayed.body.msg, /nonce: already used/);
    // Both at once, 20 times: one of each pair is accepted.
    for (let i = 0; i < 20; i++) {
      const same = onA.headers(app);
      const both = await Promise.all([onB, onC].map((x, k) => x.signed(app, 'POST', '/task/create', { taskNo: `race-${i}-${k}`, content: {} }, same)));
      const accepted = both.filter((r) => r.body?.code === 0).length;
      assert.equal(accepted, 1, `pair ${i}: ${both.map((r) => `${r.status} ${r.text}`).join(' | ')}`);
      assert.ok(both.some((r) => r.status === 401));
    }

    // ---- events: recorded on B, listed by A in one sequence, delivered once to a webhook subscribed on C ----
    assert.equal((await c.api('POST', '/api/v1/webhooks', { url: rx.url, events: ['test.ping'] })).status, 201);
    for (let i = 0; i < 10; i++) {
      const r = await [b, a, c][i % 3].api('POST', '/api/v1/events/test', { message: `ping ${i}` });
      assert.equal(r.status, 202, r.text);
    }
    const listed = await until('A lists every ping', async () => {
      const evs = (await a.api('GET', '/api/v1/events?limit=1000')).body?.events?.filter((e: any) => e.event === 'test.ping');
      return evs?.length === 10 ? evs : undefined;
    }, 10_000, 50);
    const seqs = listed.map((e: any) => e.seq);
    assert.equal(new Set(seqs).size, 10, 'one seq each');
    for (const x of [b, c]) {
      const evs = (await x.api('GET', '/api/v1/events?limit=1000')).body.events.filter((e: any) => e.event === 'test.ping');
      assert.deepEqual(evs.map((e: any) => `${e.seq}/${e.id}`), listed.map((e: any) => `${e.seq}/${e.id}`), `${x.url} lists the same events in the same order`);
    }
    await until('ten deliveries', () => rx.requests.filter((r) => r.headers['x-outpost-event'] === 'test.ping').length >= 10, 15_000);
    await new Promise((r) => setTimeout(r, 1500));
    const delivered = rx.requests.filter((r) => r.headers['x-outpost-event'] === 'test.ping').map((r) => r.json.id as string);
    assert.equal(delivered.length, 10, 'each event delivered once');
    assert.deepEqual(new Set(delivered), new Set(listed.map((e: any) => e.id)));
  } finally {
    await agent?.stop();
    for (const x of cs.reverse()) await x.stop();
    await rcv.close();
    await rx.close();
  }
});
