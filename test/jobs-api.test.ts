/**
 * The jobs plugin's Serendipity API on the real runner (plugins/sdk/testing: both halves in one
 * process, the routes through the runtime's request path, a real clock and a real receiver): every
 * route's validation and envelope, the signature rules made sound, ownership, duplicates, cancel and
 * re-run, the event, the waiting state and where secrets must not show.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jobs from '../plugins/jobs/index.ts';
import { appPayload, serendipitySignature, signedHeaders } from '../plugins/jobs/sign.ts';
import { testPlugin, until, type PluginHarness } from '../plugins/sdk/testing/index.ts';
import { JobsReceiver } from './helpers/jobs-receiver.ts';

type H = PluginHarness<typeof jobs.spec>;
interface App {
  appKey: string;
  appName: string;
  secretKey: string;
}

let h: H;
let rcv: JobsReceiver;
let shop: App;
let blog: App;

const sign = (a: App, ms = Date.now()) => signedHeaders(a.appKey, a.appName, a.secretKey, ms);
const signed = (a: App, method: 'GET' | 'POST', url: string, body?: unknown, headers: Record<string, string> = sign(a)) => h.inject({ method, url, body, headers, admin: false });

async function createApp(body: Record<string, unknown>): Promise<App> {
  const r = await h.inject({ method: 'POST', url: '/application/create', body });
  assert.equal(r.json.code, 0, r.text);
  return { appKey: r.json.data.appKey, appName: String(body.appName), secretKey: r.json.data.secretKey };
}

async function createTask(a: App, body: Record<string, unknown>): Promise<number> {
  const r = await signed(a, 'POST', '/task/create', body);
  assert.equal(r.json.code, 0, r.text);
  return r.json.data.taskId;
}

const detail = async (a: App, id: number) => (await signed(a, 'GET', `/task/detail?id=${id}`)).json;
const later = (ms: number) => new Date(Date.now() + ms).toISOString();

before(async () => {
  rcv = await JobsReceiver.start();
  h = await testPlugin({ plugin: jobs, clock: 'real', config: { rateLimit: { perAppIp: { max: 1000, windowSec: 60 }, perIp: { max: 1000, windowSec: 60 } } } });
  await h.settle();
  shop = await createApp({ appName: 'shop', linkUrl: rcv.url(), step: 0, retryTotal: 0 });
  blog = await createApp({ appName: 'blog', linkUrl: rcv.url('/blog'), step: 0, retryTotal: 0 });
  rcv.secret = shop.secretKey;
});

after(async () => {
  await h?.close();
  await rcv?.close();
});

test('application/create needs the admin token and answers the envelope, never HTML', async () => {
  const r = await h.inject({ method: 'POST', url: '/application/create', body: { appName: 'x', linkUrl: 'http://127.0.0.1/' }, admin: false });
  assert.equal(r.status, 401);
  assert.deepEqual(r.json, { code: 1, msg: r.json.msg, data: [] });
  assert.match(r.json.msg, /admin token required/);
  const bad = await h.inject({ method: 'POST', url: '/application/create', body: '{"appName":', headers: { 'content-type': 'application/json' } });
  assert.equal(bad.status, 200);
  assert.match(bad.json.msg, /^malformed JSON body/);
  assert.deepEqual(bad.json.data, []);
});

test('application/create: validation names each field; names are unique; the answer is a usable signed header set', async () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ linkUrl: 'http://127.0.0.1/' }, /^appName: required/],
    [{ appName: 'a'.repeat(101), linkUrl: 'http://127.0.0.1/' }, /^appName: must be a string of 1 to 100 characters$/],
    [{ appName: 'ok', linkUrl: 'ftp://127.0.0.1/' }, /^linkUrl: must be an http/],
    [{ appName: 'ok', linkUrl: `http://127.0.0.1/${'x'.repeat(190)}` }, /^linkUrl: /],
    [{ appName: 'ok', linkUrl: 'http://127.0.0.1/', step: 3601 }, /^step: must be an integer from 0 to 3600$/],
    [{ appName: 'ok', linkUrl: 'http://127.0.0.1/', retryTotal: 11 }, /^retryTotal: must be an integer from 0 to 10$/],
    [{ appName: 'ok', linkUrl: 'http://127.0.0.1/', step: 'ten' }, /^step: /],
    [{ appName: 'shop', linkUrl: 'http://127.0.0.1/' }, /^appName: "shop" is already taken/],
  ];
  for (const [body, msg] of cases) {
    const r = await h.inject({ method: 'POST', url: '/application/create', body });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.code, 1, r.text);
    assert.match(r.json.msg, msg);
  }
  const r = await h.inject({ method: 'POST', url: '/application/create', body: { appName: '帅的批爆', linkUrl: 'https://127.0.0.1/cb', remark: '呵呵' } });
  assert.deepEqual(Object.keys(r.json.data).sort(), ['appKey', 'nonce', 'payload', 'secretKey', 'signature', 'timestamps']);
  assert.equal(r.json.data.payload, 'f3c5fa5b2b4045bcb1132ddece49c0f4', 'md5(appName), as the document shows');
  assert.match(r.json.data.appKey, /^[A-Za-z0-9]{16}$/);
  assert.match(r.json.data.secretKey, /^[A-Za-z0-9]{32}$/);
  // The answer's header set works, once.
  const { nonce, timestamps, signature, payload, appKey } = r.json.data;
  const headers = { app_key: appKey, nonce, timestamps, payload, signature };
  const first = await h.inject({ method: 'POST', url: '/task/create', body: { content: 1, runtime: '2099-01-01 00:00:00' }, headers, admin: false });
  assert.equal(first.json.code, 0, first.text);
  const again = await h.inject({ method: 'POST', url: '/task/create', body: { content: 1, runtime: '2099-01-01 00:00:00' }, headers, admin: false });
  assert.equal(again.status, 401);
  assert.match(again.json.msg, /nonce: already used/);
});

test('signed routes refuse, with 401 and the envelope: missing headers, unknown app_key, window, payload, wrong key, replay', async () => {
  const now = Date.now();
  const h0 = sign(shop);
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{}, /missing signed headers: app_key, nonce, timestamps, payload, signature/],
    [{ ...h0, app_key: 'NoSuchAppKey0000' }, /unknown app_key/],
    [sign(shop, now - 301_000), /\d+ s in the past, outside the ±300 s window/],
    [sign(shop, now + 302_000), /in the future, outside the ±300 s window/],
    [{ ...h0, payload: 'f3c5fa5b2b4045bcb1132ddece49c0f4', signature: serendipitySignature(h0.timestamps, h0.nonce, 'f3c5fa5b2b4045bcb1132ddece49c0f4', shop.secretKey) }, /payload: must be md5\(appName\) of this application/],
    [{ ...h0, signature: serendipitySignature(h0.timestamps, h0.nonce, h0.payload, blog.secretKey) }, /signature: does not match/],
    [{ ...h0, nonce: 'tampered' + h0.nonce.slice(8) }, /signature: does not match/],
  ];
  for (const route of [['POST', '/task/create'], ['GET', '/task/detail?id=1'], ['POST', '/task/cancel'], ['POST', '/nsq/publish']] as const) {
    for (const [headers, msg] of cases) {
      const r = await signed(shop, route[0], route[1], route[0] === 'POST' ? { content: 1, id: 1, task_id: 1 } : undefined, headers);
      assert.equal(r.status, 401, `${route[1]}: ${r.text}`);
      assert.equal(r.json.code, 1);
      assert.deepEqual(r.json.data, []);
      assert.match(r.json.msg, msg, route[1]);
    }
  }
  // Inside the window on both sides.
  await createTask(shop, { content: 1, runtime: '2099-01-01 00:00:00' });
  // 5 s inside: timestamps are whole seconds (up to 1 s older than the clock) and the requests above took time.
  const edge = sign(shop, now - 295_000);
  assert.equal((await signed(shop, 'POST', '/task/create', { content: 1, runtime: '2099-01-01 00:00:00' }, edge)).json.code, 0);
  // A replay of an accepted request is refused and creates nothing.
  const before = h.metric('outpost_jobs_tasks', { state: 'pending' });
  const replay = await signed(shop, 'POST', '/task/create', { content: 1, runtime: '2099-01-01 00:00:00' }, edge);
  assert.equal(replay.status, 401);
  assert.match(replay.json.msg, /nonce: already used; sign every request with a fresh nonce/);
  assert.equal(h.metric('outpost_jobs_tasks', { state: 'pending' }), before);
  assert.ok((h.metric('outpost_jobs_requests_refused_total', { status: '401' }) ?? 0) >= 25);
});

test('a refused request changes nothing: a bad body or a duplicate taskNo leaves no task and does not burn the nonce', async () => {
  const headers = sign(shop);
  const bad = await signed(shop, 'POST', '/task/create', { content: 1, timeout: 0 }, headers);
  assert.equal(bad.status, 200);
  assert.equal(bad.json.code, 1);
  assert.equal(bad.json.msg, 'timeout: must be an integer from 1 to 3600000');
  // The same headers then work: the refusal did not keep the nonce.
  const good = await signed(shop, 'POST', '/task/create', { taskNo: 'refused-then-ok', content: 1, runtime: '2099-01-01 00:00:00' }, headers);
  assert.equal(good.json.code, 0, good.text);
  const dupHeaders = sign(shop);
  const dup = await signed(shop, 'POST', '/task/create', { taskNo: 'refused-then-ok', content: 2 }, dupHeaders);
  assert.equal(dup.json.code, 1);
  assert.match(dup.json.msg, /^taskNo: "refused-then-ok" already exists for this application/);
  assert.equal((await signed(shop, 'POST', '/task/create', { taskNo: 'refused-then-ok-2', content: 2, runtime: '2099-01-01 00:00:00' }, dupHeaders)).json.code, 0);
});

test('task/create: every field is validated by name, with code 1 and HTTP 200', async () => {
  const cases: Array<[unknown, RegExp]> = [
    [{}, /^content: required/],
    [{ content: 1, timeout: 3_600_001 }, /^timeout: must be an integer from 1 to 3600000$/],
    [{ content: 1, timeout: 'soon' }, /^timeout: /],
    [{ content: 1, taskNo: '' }, /^taskNo: must be a string of 1 to 128 characters$/],
    [{ content: 1, name: 5 }, /^name: must be a string/],
    [{ content: 1, runtime: 'next week' }, /^runtime: "next week" is not "Y-m-d H:i:s" \(Asia\/Shanghai\), ISO 8601 with an offset, or "@<unix seconds>"$/],
    [{ content: 1, runtime: 1e13 }, /^runtime: .* after the year 9999 \(milliseconds\? send seconds\)$/],
    [[1, 2], /^body must be a JSON object$/],
  ];
  for (const [body, msg] of cases) {
    const r = await signed(shop, 'POST', '/task/create', body);
    assert.equal(r.status, 200);
    assert.equal(r.json.code, 1, JSON.stringify(body));
    assert.match(r.json.msg, msg);
  }
  const malformed = await h.inject({ method: 'POST', url: '/task/create', body: '{"content": 1,}', headers: { ...sign(shop), 'content-type': 'application/json' }, admin: false });
  assert.equal(malformed.json.code, 1);
  assert.match(malformed.json.msg, /^malformed JSON body/);
  // Every runtime form the original's clients send.
  for (const runtime of ['2099-01-01 08:00:00', '2099-01-01T00:00:00Z', '2099-01-01T08:00:00+08:00', '@4070908800', 4070908800]) {
    const id = await createTask(shop, { content: 1, runtime });
    assert.equal((await detail(shop, id)).data.task.runtime, '2099-01-01 08:00:00', String(runtime));
  }
});

test('detail, cancel and publish validate their id; the original\'s extra fields are ignored', async () => {
  const id = await createTask(shop, { content: 1, runtime: '2099-01-01 00:00:00' });
  const d = await signed(shop, 'GET', `/task/detail?id=${id}&coroutine_id=7&service_id=consul-1`);
  assert.equal(d.json.code, 0);
  assert.deepEqual(Object.keys(d.json.data.task).sort(), ['attempts', 'error', 'id', 'name', 'nextRunAt', 'runtime', 'status', 'taskNo', 'timeout']);
  assert.equal(d.json.data.task.status, 0);
  for (const [method, url, body, msg] of [
    ['GET', '/task/detail', undefined, /^id: required/],
    ['GET', '/task/detail?id=abc', undefined, /^id: must be an integer/],
    ['POST', '/task/cancel', {}, /^id: required/],
    ['POST', '/task/cancel', { id: 0 }, /^id: must be an integer from 1/],
    ['POST', '/nsq/publish', { id: 1 }, /^task_id: required/],
    ['POST', '/nsq/publish', { task_id: 'one' }, /^task_id: must be an integer/],
    ['GET', '/task/detail?id=999999', undefined, /^no task 999999 for this application$/],
    ['POST', '/task/cancel', { id: 999999 }, /^no task 999999 for this application$/],
  ] as const) {
    const r = await signed(shop, method, url, body);
    assert.equal(r.json.code, 1, url);
    assert.match(r.json.msg, msg, url);
  }
});

test('ownership: another application gets the answer an unknown id gets, and changes nothing', async () => {
  const id = await createTask(shop, { taskNo: 'mine', content: 1, runtime: '2099-01-01 00:00:00' });
  for (const [method, url, body] of [['GET', `/task/detail?id=${id}`, undefined], ['POST', '/task/cancel', { id }], ['POST', '/nsq/publish', { task_id: id }]] as const) {
    const r = await signed(blog, method, url, body);
    assert.deepEqual(r.json, { code: 1, msg: `no task ${id} for this application`, data: [] });
  }
  assert.equal((await detail(shop, id)).data.task.status, 0);
  // taskNo is unique per application: blog may use shop's.
  assert.ok((await createTask(blog, { taskNo: 'mine', content: 1, runtime: '2099-01-01 00:00:00' })) > id);
});

test('concurrent creates of one taskNo: exactly one wins', async () => {
  const results = await Promise.all(Array.from({ length: 20 }, () => signed(shop, 'POST', '/task/create', { taskNo: 'race', content: 1, runtime: '2099-01-01 00:00:00' })));
  const won = results.filter((r) => r.json.code === 0);
  assert.equal(won.length, 1, results.map((r) => r.text).join('\n'));
  for (const r of results.filter((x) => x.json.code !== 0)) assert.match(r.json.msg, /taskNo: "race" already exists/);
});

test('a due task is called back once with signed headers and the content as written; detail shows the attempt; the event is recorded', async () => {
  const content = '{"order":12345678901234567890,"price":1.50,"tags":["a"]}';
  const r = await h.inject({ method: 'POST', url: '/task/create', body: `{"taskNo":"exact","content":${content},"name":"exact content","runtime":"${later(300)}"}`, headers: { ...sign(shop), 'content-type': 'application/json' }, admin: false });
  const id = r.json.data.taskId;
  const [c] = await rcv.waitFor(id);
  assert.equal(c.body, `{"data":${content}}`, 'spliced in, not re-serialised');
  assert.ok(c.signedOk && c.bodySignedOk);
  assert.equal(c.headers.app_key, shop.appKey);
  assert.equal(c.headers.payload, appPayload('shop'), 'payload = md5(appName), as in requests');
  assert.match(String(c.headers.nonce), /^[A-Za-z0-9]{16}$/);
  assert.equal(c.attempt, 1);
  const t = await until('success recorded', async () => {
    const d = (await detail(shop, id)).data.task;
    return d.status === 2 ? d : undefined;
  });
  assert.equal(t.attempts.length, 1);
  assert.equal(t.attempts[0].node, 'node-1');
  assert.equal(t.attempts[0].statusCode, 200);
  assert.equal(t.attempts[0].error, null);
  await until('the event', () => h.events.find((e) => e.event === 'jobs.task.finished' && (e.payload as { id: number }).id === id));
  const ev = h.events.find((e) => (e.payload as { id: number }).id === id)!.payload as Record<string, unknown>;
  assert.equal(ev.state, 'success');
  assert.equal(ev.appName, 'shop');
  assert.equal((ev.attempts as unknown[]).length, 1);
});

test('cancel: a pending task never runs; a finished one cannot be cancelled; publish re-runs a finished task', async () => {
  const id = await createTask(shop, { content: { cancel: true }, runtime: later(400) });
  const c = await signed(shop, 'POST', '/task/cancel', { id });
  assert.equal(c.json.code, 0, c.text);
  assert.equal(c.json.msg, 'Killed');
  assert.equal(c.json.data.task.status, 3);
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(rcv.of(id).length, 0, 'a cancelled pending task never runs');
  const again = await signed(shop, 'POST', '/task/cancel', { id });
  assert.equal(again.json.msg, `task ${id} already finished (cancelled): nothing to cancel`);
  // Re-run (the original's manual re-publish): runs now, the runtime being past.
  const p = await signed(shop, 'POST', '/nsq/publish', { task_id: id });
  assert.equal(p.json.code, 0, p.text);
  await rcv.waitFor(id);
  await until('re-run succeeded', async () => (await detail(shop, id)).data.task.status === 2);
  const pending = await createTask(shop, { content: 1, runtime: '2099-01-01 00:00:00' });
  const refused = await signed(shop, 'POST', '/nsq/publish', { task_id: pending });
  assert.equal(refused.json.msg, `task ${pending} is pending: only a finished task can be published again`);
});

test('admin REST and the panel: applications without secrets, tasks, cancel and re-run', async () => {
  const apps = await h.inject({ method: 'GET', url: '/api/v1/jobs/apps' });
  assert.equal(apps.status, 200);
  assert.ok(apps.json.apps.some((a: { appName: string }) => a.appName === 'shop'));
  const id = await createTask(shop, { taskNo: 'admin-cancel', content: 1, runtime: '2099-01-01 00:00:00' });
  const list = await h.inject({ method: 'GET', url: '/api/v1/jobs/tasks?state=pending&limit=5' });
  assert.equal(list.json.tasks[0].id, id);
  assert.equal((await h.inject({ method: 'GET', url: '/api/v1/jobs/tasks?state=bogus' })).status, 400);
  assert.equal((await h.inject({ method: 'GET', url: '/api/v1/jobs/tasks/424242' })).status, 404);
  const c = await h.inject({ method: 'POST', url: `/api/v1/jobs/tasks/${id}/cancel` });
  assert.equal(c.json.task.state, 'cancelled');
  assert.equal((await h.inject({ method: 'POST', url: `/api/v1/jobs/tasks/${id}/cancel` })).status, 400);
  assert.equal((await h.inject({ method: 'POST', url: `/api/v1/jobs/tasks/${id}/rerun`, admin: false })).status, 401);
  const made = await h.inject({ method: 'POST', url: '/api/v1/jobs/apps', body: { appName: 'from-panel', linkUrl: 'http://127.0.0.1:9/', step: '5', retryTotal: '1' } });
  assert.equal(made.status, 201, made.text);
  assert.equal(made.json.app.step, 5);
  assert.match(made.json.secretKey, /^[A-Za-z0-9]{32}$/);
  const panel = String(await h.controller.panels().find((p) => p.plugin === 'jobs')!.panel.render());
  assert.match(panel, /from-panel/);
  assert.match(panel, new RegExp(`data-task="${id}"`));
  assert.match(panel, /Re-run/);
});

test('secrets: never in listings, the panel, logs, metrics or the files other than the 0600 apps log', async () => {
  const secrets = [shop.secretKey, blog.secretKey];
  const texts = [
    (await h.inject({ method: 'GET', url: '/api/v1/jobs/apps' })).text,
    (await h.inject({ method: 'GET', url: '/api/v1/jobs/tasks' })).text,
    String(await h.controller.panels().find((p) => p.plugin === 'jobs')!.panel.render()),
    JSON.stringify(h.logs),
    h.metrics('controller'),
    h.metrics('agent'),
    JSON.stringify(h.events),
    JSON.stringify(h.reports),
  ];
  for (const t of texts) for (const s of secrets) assert.equal(t.includes(s), false, `a secret shows in: ${t.slice(0, 200)}`);
  const dir = join(h.dataDir, 'controller', 'plugins');
  for (const f of await readdir(dir)) if (f.startsWith('jobs.')) assert.equal((await stat(join(dir, f))).mode & 0o077, 0, `${f} is private`);
});

test('no node can take a due task: it waits and says why in detail, the gauge and the panel', async () => {
  const w = await testPlugin({ plugin: jobs, clock: 'real', halves: ['controller'], config: { labels: { pool: 'edge' } } });
  try {
    const r = await w.inject({ method: 'POST', url: '/application/create', body: { appName: 'w', linkUrl: rcv.url('/w') } });
    const app = { appKey: r.json.data.appKey, appName: 'w', secretKey: r.json.data.secretKey };
    const c = await w.inject({ method: 'POST', url: '/task/create', body: { content: 1 }, headers: sign(app), admin: false });
    const id = c.json.data.taskId;
    const d = await until('waiting shown', async () => {
      const x = (await w.inject({ method: 'GET', url: `/task/detail?id=${id}`, headers: sign(app), admin: false })).json.data.task;
      return x.waiting ? x : undefined;
    });
    assert.equal(d.status, 0);
    assert.equal(d.waiting, 'no node runs the jobs plugin');
    assert.equal(w.metric('outpost_jobs_waiting_tasks'), 1);
    assert.match(String(await w.controller.panels().find((p) => p.plugin === 'jobs')!.panel.render()), /waiting: no node runs the jobs plugin/);
  } finally {
    await w.close();
  }
});

test('the label selector: a node without the labels takes nothing; with them it does', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'jobs-labels-'));
  const w = await testPlugin({ plugin: jobs, clock: 'real', dataDir: dir, node: { labels: { pool: 'core' } }, config: { labels: { pool: 'edge' } } });
  try {
    await w.settle();
    const r = await w.inject({ method: 'POST', url: '/application/create', body: { appName: 'l', linkUrl: rcv.url('/l') } });
    const app = { appKey: r.json.data.appKey, appName: 'l', secretKey: r.json.data.secretKey };
    const id = (await w.inject({ method: 'POST', url: '/task/create', body: { content: 1 }, headers: sign(app), admin: false })).json.data.taskId;
    await until('waiting', async () => (await w.inject({ method: 'GET', url: `/task/detail?id=${id}`, headers: sign(app), admin: false })).json.data.task.waiting === 'no live node running jobs has the labels pool=edge');
    assert.equal(rcv.calls.filter((x) => x.path === '/l').length, 0);
    await w.configure({ labels: { pool: 'core' } }, 'controller');
    await until('runs once the selector fits', () => rcv.calls.some((x) => x.path === '/l' && x.taskId === id));
  } finally {
    await w.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('nonces and tasks survive a restart: a replay stays refused, the task is still there', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'jobs-restart-'));
  try {
    const first = await testPlugin({ plugin: jobs, clock: 'real', halves: ['controller'], dataDir: dir });
    const r = await first.inject({ method: 'POST', url: '/application/create', body: { appName: 'r', linkUrl: rcv.url('/r') } });
    const app = { appKey: r.json.data.appKey, appName: 'r', secretKey: r.json.data.secretKey };
    const headers = sign(app);
    const id = (await first.inject({ method: 'POST', url: '/task/create', body: { taskNo: 'kept', content: 1, runtime: '2099-01-01 00:00:00' }, headers, admin: false })).json.data.taskId;
    await first.close();
    const second = await testPlugin({ plugin: jobs, clock: 'real', halves: ['controller'], dataDir: dir });
    try {
      const replay = await second.inject({ method: 'POST', url: '/task/create', body: { taskNo: 'other', content: 1 }, headers, admin: false });
      assert.equal(replay.status, 401);
      assert.match(replay.json.msg, /nonce: already used/);
      const d = await second.inject({ method: 'GET', url: `/task/detail?id=${id}`, headers: sign(app), admin: false });
      assert.equal(d.json.data.task.taskNo, 'kept');
      const dup = await second.inject({ method: 'POST', url: '/task/create', body: { taskNo: 'kept', content: 1 }, headers: sign(app), admin: false });
      assert.match(dup.json.msg, /already exists/);
      const next = await second.inject({ method: 'POST', url: '/task/create', body: { content: 1, runtime: '2099-01-01 00:00:00' }, headers: sign(app), admin: false });
      assert.ok(next.json.data.taskId > id, 'ids are never handed out twice');
    } finally {
      await second.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the listen port: the signed routes with the original\'s app_key header on node:http; closed when the plugin stops', async () => {
  const w = await testPlugin({ plugin: jobs, clock: 'real', halves: ['controller'], config: { listen: { host: '127.0.0.1', port: 0 } } });
  let port = 0;
  try {
    const status = await w.inject({ method: 'GET', url: '/api/v1/jobs/status' });
    port = status.json.listen.port;
    assert.ok(port > 0, status.text);
    const r = await w.inject({ method: 'POST', url: '/application/create', body: { appName: 'p', linkUrl: rcv.url('/p') } });
    const app = { appKey: r.json.data.appKey, appName: 'p', secretKey: r.json.data.secretKey };
    const base = `http://127.0.0.1:${port}`;
    const created = await fetch(`${base}/task/create`, { method: 'POST', headers: { ...sign(app), 'content-type': 'application/json' }, body: '{"content":{"a":1},"runtime":"2099-01-01 00:00:00"}' });
    const body = (await created.json()) as { code: number; data: { taskId: number } };
    assert.equal(body.code, 0, JSON.stringify(body));
    const detail = (await (await fetch(`${base}/task/detail?id=${body.data.taskId}`, { headers: sign(app) })).json()) as { data: { task: { status: number } } };
    assert.equal(detail.data.task.status, 0);
    const bad = await fetch(`${base}/task/create`, { method: 'POST', headers: { ...sign(app), 'content-type': 'application/json' }, body: '{"content":' });
    assert.equal(bad.status, 200);
    assert.match(((await bad.json()) as { msg: string }).msg, /^malformed JSON body/);
    const unsigned = await fetch(`${base}/task/create`, { method: 'POST', body: '{}' });
    assert.equal(unsigned.status, 401);
    const admin = await fetch(`${base}/application/create`, { method: 'POST', body: '{}' });
    assert.equal(admin.status, 404, 'the admin route stays on the controller port');
    assert.equal(((await admin.json()) as { code: number }).code, 1);
  } finally {
    await w.close();
  }
  await assert.rejects(fetch(`http://127.0.0.1:${port}/task/detail?id=1`), 'closed with the plugin');
});
