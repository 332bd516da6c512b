/** Webhooks end to end: real controller and agents, receivers on loopback, the durable outbox under failure. */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestController, TestAgent, until, http, stopProc, tempDir, sleep } from './helpers/cluster.ts';
import { Outbox, MAX_BODY_BYTES, type OutboxConfig } from '../controller/webhooks/outbox.ts';
import { MetricsRegistry } from '../plugins/sdk/metrics.ts';
import { createLog } from '../plugins/sdk/log.ts';
import { Receiver, type Received } from './helpers/receiver.ts';

const SECRET = 'whsec-test-0123456789abcdef';
const WATCHDOG = { intervalMs: 200, downAfter: 3 };

/** Fast retries, long request timeout (so a held request is never cut), long max age. */
let c: TestController;
const receivers: Receiver[] = [];
const secretsUsed = new Set<string>([SECRET]);

async function receiver(secret = SECRET): Promise<Receiver> {
  const r = await Receiver.start({ secret });
  receivers.push(r);
  return r;
}

async function subscribe(ctl: TestController, url: string, events: string[], secret = SECRET): Promise<string> {
  const r = await ctl.api('POST', '/api/v1/webhooks', { url, events, secret });
  assert.equal(r.status, 201, r.text);
  secretsUsed.add(r.body.secret);
  return r.body.id;
}

/** Enrolls nodes named prefix-1..n one after the other: each is one node.enrolled event, in that order. */
async function enroll(ctl: TestController, prefix: string, n: number): Promise<string[]> {
  const token = await ctl.joinToken({ uses: n });
  const names: string[] = [];
  for (let i = 1; i <= n; i++) {
    const name = `${prefix}-${i}`;
    const r = await http('POST', `${ctl.url}/api/v1/enroll`, { body: { token, name } });
    assert.equal(r.status, 201, r.text);
    names.push(name);
  }
  return names;
}

const enrolledNames = (rs: Received[], prefix: string) => rs.filter((r) => r.event === 'node.enrolled' && r.json?.data?.node?.name?.startsWith(`${prefix}-`)).map((r) => r.json.data.node.name as string);

async function deliveries(ctl: TestController, query = ''): Promise<any[]> {
  const r = await ctl.api('GET', `/api/v1/deliveries?limit=1000${query}`);
  assert.equal(r.status, 200, r.text);
  return r.body.deliveries;
}

before(async () => {
  c = await TestController.start({ config: { webhooks: { baseDelayMs: 50, maxDelayMs: 400, timeoutMs: 30_000, maxAgeMs: 600_000 } } });
});

after(async () => {
  for (const r of receivers) r.release();
  await c?.stop();
  for (const r of receivers) await r.close();
});

test('node.down after an agent is SIGKILLed and node.up after restart, plugin.failed, all signed, with delivery and event headers', async (t) => {
  const rx = await receiver();
  await subscribe(c, rx.url, ['node.up', 'node.down', 'plugin.failed']);
  // One plugin that cannot start on the node: the others run, and subscribers hear plugin.failed.
  const a = await TestAgent.start(c, { name: 'wh-agent', plugins: { 'server-stats': { interval: 1, diskInterval: 5 }, 'no-such-plugin': {} } });
  try {
    const forNode = (ev: string) => (r: Receiver) => r.accepted().filter((q) => q.event === ev && q.json?.data?.node?.id === a.nodeId);
    const [up] = await rx.waitFor('node.up webhook', (r) => forNode('node.up')(r).length > 0 && forNode('node.up')(r));
    assert.equal(up.signatureOk, true, 'X-Outpost-Signature verifies with the subscription secret');
    assert.match(String(up.headers['x-outpost-signature']), /^t=\d+,v1=[0-9a-f]{64}$/);
    assert.match(up.id, /^dl_[0-9a-f]+$/);
    assert.equal(up.json.event, 'node.up');
    assert.equal(up.headers['content-type'], 'application/json');

    const [failed] = await rx.waitFor('plugin.failed webhook', (r) => forNode('plugin.failed')(r).length > 0 && forNode('plugin.failed')(r));
    assert.equal(failed.json.data.plugin, 'no-such-plugin');
    assert.match(failed.json.data.error, /unknown plugin/);
    assert.equal(failed.signatureOk, true);

    await a.kill('SIGKILL');
    const [down] = await rx.waitFor('node.down webhook', (r) => forNode('node.down')(r).length > 0 && forNode('node.down')(r));
    assert.equal(down.signatureOk, true);
    assert.equal(down.json.data.node.state, 'down');
    assert.equal(down.json.data.previous, 'up');
    // Declared down no earlier than the watchdog window after the last heartbeat (no premature down).
    const silentMs = Date.parse(down.json.ts) - down.json.data.node.lastHeartbeat;
    assert.ok(silentMs >= WATCHDOG.intervalMs * WATCHDOG.downAfter, `down after ${silentMs} ms of silence`);
    t.diagnostic(`node.down declared ${silentMs} ms after the last heartbeat (window ${WATCHDOG.intervalMs * WATCHDOG.downAfter} ms); webhook received ${down.at - Date.parse(down.json.ts)} ms later`);

    await a.restart();
    await rx.waitFor('node.up webhook after restart', (r) => forNode('node.up')(r).length === 2);
    assert.deepEqual(
      rx.accepted().filter((q) => q.json?.data?.node?.id === a.nodeId && q.event.startsWith('node.')).map((q) => q.event),
      ['node.up', 'node.down', 'node.up'],
    );
  } finally {
    await a.stop();
  }
});

test('retries keep the delivery id; a receiver down for a while gets every event, in order; a healthy one is not held up', async () => {
  const flaky = await receiver();
  const healthy = await receiver();
  const flakySub = await subscribe(c, flaky.url, ['node.enrolled']);
  await subscribe(c, healthy.url, ['node.enrolled']);

  flaky.failNext(3, 503);
  await enroll(c, 'retry', 1);
  const ok = await flaky.waitFor('delivery after 3 failures', (r) => r.accepted()[0]);
  const attempts = flaky.requests.filter((q) => q.json?.data?.node?.name === 'retry-1');
  assert.equal(attempts.length, 4);
  assert.deepEqual(new Set(attempts.map((q) => q.id)), new Set([ok.id]), 'every retry carries the same X-Outpost-Delivery');
  assert.ok(attempts.every((q) => q.signatureOk), 'every attempt is signed afresh and verifies');
  const rec = (await c.api('GET', `/api/v1/deliveries/${ok.id}`)).body.delivery;
  assert.equal(rec.state, 'delivered');
  assert.equal(rec.attempts, 4);

  await flaky.down();
  const names = await enroll(c, 'outage', 12);
  // While the flaky receiver is down, the healthy one gets everything, in order.
  await healthy.waitFor('healthy receiver gets all 12', (r) => enrolledNames(r.uniqueAccepted(), 'outage').length === 12);
  assert.deepEqual(enrolledNames(healthy.uniqueAccepted(), 'outage'), names);
  const pending = await until('failed attempts recorded', async () => {
    const ds = await deliveries(c, `&state=pending&subscription=${flakySub}`);
    return ds.length === 12 && ds.some((d) => d.attempts > 0 && d.lastError) && ds;
  });
  assert.ok(pending.every((d) => d.subscription === flakySub && d.event === 'node.enrolled'));

  await flaky.up();
  await flaky.waitFor('flaky receiver gets all 12 after coming back', (r) => enrolledNames(r.uniqueAccepted(), 'outage').length === 12);
  assert.deepEqual(enrolledNames(flaky.uniqueAccepted(), 'outage'), names, 'none lost, in order per subscription');
  assert.ok(flaky.accepted().every((q) => q.signatureOk));
  await until('outbox drained', async () => (await deliveries(c, `&state=pending&subscription=${flakySub}`)).length === 0);
});

test('a slow receiver does not delay a healthy one', async () => {
  const slow = await receiver();
  const fast = await receiver();
  await subscribe(c, slow.url, ['node.enrolled']);
  await subscribe(c, fast.url, ['node.enrolled']);
  slow.hold();
  const names = await enroll(c, 'slow', 5);
  await fast.waitFor('healthy receiver gets all 5', (r) => enrolledNames(r.uniqueAccepted(), 'slow').length === 5);
  // The slow receiver is still sitting on its first request: its lane waits, the other lane did not.
  assert.equal(slow.heldCount(), 1);
  assert.deepEqual(enrolledNames(slow.requests, 'slow'), ['slow-1']);
  slow.release();
  await slow.waitFor('slow receiver gets all 5 once released', (r) => enrolledNames(r.uniqueAccepted(), 'slow').length === 5);
  assert.deepEqual(enrolledNames(slow.uniqueAccepted(), 'slow'), names);
});

test('controller SIGKILLed with deliveries pending: all delivered after restart, delivered ones not resent', async () => {
  const rx = await receiver();
  const sub = await subscribe(c, rx.url, ['node.enrolled']);
  const first = await enroll(c, 'before', 3);
  await rx.waitFor('first batch delivered', (r) => enrolledNames(r.uniqueAccepted(), 'before').length === 3);
  await until('first batch recorded as delivered', async () => (await deliveries(c, `&state=delivered&subscription=${sub}`)).length === 3);

  await rx.down();
  const pendingNames = await enroll(c, 'crash', 6);
  await until('6 pending', async () => (await deliveries(c, `&state=pending&subscription=${sub}`)).length === 6);
  // A crash; it comes back on a fresh port (no agent needs to find it), so a port grabbed meanwhile cannot fail the boot.
  await stopProc(c.proc, 'SIGKILL');
  await c.boot();
  await rx.up();
  await rx.waitFor('pending batch delivered after restart', (r) => enrolledNames(r.uniqueAccepted(), 'crash').length === 6);
  assert.deepEqual(enrolledNames(rx.uniqueAccepted(), 'crash'), pendingNames);
  assert.deepEqual(enrolledNames(rx.accepted(), 'before'), first, 'entries delivered before the crash were not sent again');
  // The delivered log survives the restart too.
  await until('all 9 listed as delivered', async () => (await deliveries(c, `&state=delivered&subscription=${sub}`)).length === 9);
});

test('bad subscriptions get 400 naming the problem', async () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ events: ['node.down'] }, /url is required/],
    [{ url: 'ftp://127.0.0.1/x', events: ['node.down'] }, /url must use http or https, not ftp/],
    [{ url: 'javascript:alert(1)' }, /url must use http or https/],
    [{ url: 'not a url' }, /not a valid absolute URL/],
    [{ url: 'http://127.0.0.1/x', events: ['node.down', 'node.exploded'] }, /unknown event name\(s\): "node.exploded"/],
    [{ url: 'http://127.0.0.1/x', events: [] }, /events must be a non-empty list/],
    [{ url: 'http://127.0.0.1/x', events: 'node.down', secret: 'x'.repeat(257) }, /secret must be 16 to 256 characters long, got 257/],
    [{ url: 'http://127.0.0.1/x', secret: 'short' }, /secret must be 16 to 256 characters/],
    [{ url: 'http://127.0.0.1/x', secret: 1234567890123456789 }, /secret must be a string/],
    [{ url: `http://127.0.0.1/${'a'.repeat(3000)}` }, /url is \d+ characters; the limit is 2048/],
  ];
  for (const [body, re] of cases) {
    const r = await c.api('POST', '/api/v1/webhooks', body);
    assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 80)} → ${r.text}`);
    assert.match(r.body.error.message, re);
  }
  const malformed = await fetch(`${c.url}/api/v1/webhooks`, { method: 'POST', headers: { authorization: `Bearer ${c.adminToken}`, 'content-type': 'application/json' }, body: '{"url":' });
  assert.equal(malformed.status, 400);
  assert.match(((await malformed.json()) as any).error.message, /malformed JSON/);
  const noAuth = await http('POST', `${c.url}/api/v1/webhooks`, { body: { url: 'http://127.0.0.1/x' } });
  assert.equal(noAuth.status, 401);
  assert.equal((await c.api('DELETE', '/api/v1/webhooks/wh_nope')).status, 404);
  assert.equal((await c.api('GET', '/api/v1/deliveries?state=lost')).status, 400);
  assert.equal((await c.api('POST', '/api/v1/deliveries/dl_nope/retry')).status, 404);
  // Comma-separated events (form style) and prefix patterns are accepted.
  const r = await c.api('POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/x', events: 'node.*, plugin.failed' });
  assert.equal(r.status, 201, r.text);
  assert.deepEqual(r.body.events, ['node.*', 'plugin.failed']);
  assert.equal((await c.api('DELETE', `/api/v1/webhooks/${r.body.id}`)).status, 200);
});

test('deleting a subscription stops its pending deliveries; they cannot be retried', async () => {
  const rx = await receiver();
  await rx.down();
  const sub = await subscribe(c, rx.url, ['node.enrolled']);
  await enroll(c, 'orphan', 2);
  await until('2 pending', async () => (await deliveries(c, `&state=pending&subscription=${sub}`)).length === 2);
  assert.equal((await c.api('DELETE', `/api/v1/webhooks/${sub}`)).status, 200);
  const dead = await until('both dead', async () => {
    const ds = await deliveries(c, `&subscription=${sub}`);
    return ds.length === 2 && ds.every((d) => d.state === 'dead') && ds;
  });
  assert.match(dead[0].lastError, /was deleted/);
  const retry = await c.api('POST', `/api/v1/deliveries/${dead[0].id}/retry`);
  assert.equal(retry.status, 409);
  assert.match(retry.body.error.message, /deleted webhook/);
});

test('webhook secrets never appear in listings, deliveries, events, metrics or logs', async () => {
  const listed = await c.api('GET', '/api/v1/webhooks');
  assert.equal(listed.status, 200);
  assert.ok(listed.body.webhooks.length > 0);
  assert.ok(listed.body.webhooks.every((w: any) => !('secret' in w)));
  assert.ok(listed.body.events.includes('node.down') && listed.body.events.includes('plugin.recovered'));
  const ds = await deliveries(c);
  assert.ok(ds.length > 0);
  const details = await Promise.all(ds.slice(0, 20).map((d) => c.api('GET', `/api/v1/deliveries/${d.id}`)));
  const surfaces = [
    listed.text,
    JSON.stringify(ds),
    ...details.map((d) => d.text),
    (await c.api('GET', '/api/v1/events?limit=1000')).text,
    (await c.api('GET', '/api/v1/status')).text,
    (await fetch(`${c.url}/metrics`).then((r) => r.text())),
    c.proc.output(),
  ];
  for (const s of secretsUsed) for (const text of surfaces) assert.ok(!text.includes(s), `secret found in ${text.slice(0, 120)}`);
  // A credential in a subscription URL is masked when listed.
  const withCreds = await c.api('POST', '/api/v1/webhooks', { url: 'http://user:hunter2hunter2@127.0.0.1:9/x?token=tok-abcdef123456', events: ['node.deleted'] });
  assert.equal(withCreds.status, 201);
  const again = await c.api('GET', '/api/v1/webhooks');
  assert.ok(!again.text.includes('hunter2hunter2') && !again.text.includes('tok-abcdef123456'), again.text);
  await c.api('DELETE', `/api/v1/webhooks/${withCreds.body.id}`);
});

test('dead after the max age; a manual retry delivers it with the same id', async () => {
  const short = await TestController.start({ config: { webhooks: { baseDelayMs: 50, maxDelayMs: 200, timeoutMs: 5_000, maxAgeMs: 1_000 } } });
  try {
    const rx = await receiver();
    rx.failNext(Infinity, 500);
    const sub = await subscribe(short, rx.url, ['node.enrolled']);
    await enroll(short, 'dead', 1);
    const [dead] = await until('delivery dead', async () => {
      const ds = await deliveries(short, `&state=dead&subscription=${sub}`);
      return ds.length === 1 && ds;
    });
    assert.ok(dead.attempts >= 2, `attempted ${dead.attempts} times before giving up`);
    assert.equal(dead.lastStatus, 500);
    assert.match(dead.lastError, /HTTP 500/);
    const metrics = await fetch(`${short.url}/metrics`).then((r) => r.text());
    assert.match(metrics, /outpost_webhook_dead_total\{event="node.enrolled"\} 1/);

    rx.failNext(0);
    const retry = await short.api('POST', `/api/v1/deliveries/${dead.id}/retry`);
    assert.equal(retry.status, 200, retry.text);
    assert.equal(retry.body.delivery.id, dead.id);
    const ok = await rx.waitFor('retried delivery accepted', (r) => r.accepted()[0]);
    assert.equal(ok.id, dead.id, 'the manual retry carries the original delivery id');
    assert.equal(ok.signatureOk, true);
    await until('delivered', async () => (await short.api('GET', `/api/v1/deliveries/${dead.id}`)).body.delivery.state === 'delivered');
    const again = await short.api('POST', `/api/v1/deliveries/${dead.id}/retry`);
    assert.equal(again.status, 409);
    assert.match(again.body.error.message, /already delivered/);
  } finally {
    await short.stop();
  }
});

/** The outbox in-process, as plugins reach it through ctx.webhooks.deliver: one URL, a per-call secret, a key. */
async function openOutbox(cfg: Partial<OutboxConfig> = {}, at?: string) {
  const dir = at ?? (await tempDir('outpost-outbox-'));
  const metrics = new MetricsRegistry();
  const ob = await Outbox.open(dir, { maxAgeMs: 60_000, timeoutMs: 30_000, baseDelayMs: 20, maxDelayMs: 100, ...cfg }, createLog('test', 'silent'), {
    attempts: metrics.counter('a_total', 'a'),
    failures: metrics.counter('f_total', 'f'),
    dead: metrics.counter('d_total', 'd'),
  });
  ob.start();
  return { ob, dir };
}

test('plugin deliveries: per-call secret signs, URL and body are checked before anything is queued', async () => {
  const rx = await receiver('plugin-secret-0123456789');
  const { ob, dir } = await openOutbox();
  try {
    const id = (await ob.enqueue([{ url: `${rx.url}?token=callback-token-xyz`, body: '{"hello":1}', secret: 'plugin-secret-0123456789', event: 'prober.callback' }]))[0];
    const got = await rx.waitFor('plugin callback', (r) => r.accepted()[0]);
    assert.equal(got.id, id);
    assert.equal(got.event, 'prober.callback');
    assert.equal(got.signatureOk, true);
    await until('delivered', async () => (await ob.get(id))?.state === 'delivered');
    assert.ok(!JSON.stringify(await ob.list({})).includes('callback-token-xyz'), 'URL credentials are masked in the log');
    await assert.rejects(ob.enqueue([{ url: 'file:///etc/passwd', body: '{}', event: 'x' }]), /url must use http or https, not file/);
    await assert.rejects(ob.enqueue([{ url: rx.url, body: 'x'.repeat(MAX_BODY_BYTES + 1), event: 'x' }]), /body is \d+ bytes; the limit is/);
    // Nothing of a rejected batch was queued.
    assert.equal((await ob.list({})).length, 1);
  } finally {
    await ob.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a manual retry while another delivery of the lane is in flight sends each exactly once, in order', async () => {
  const rx = await receiver();
  const { ob, dir } = await openOutbox({ maxAgeMs: 1_000 });
  try {
    rx.failNext(Infinity, 500);
    const [first] = await ob.enqueue([{ url: rx.url, body: '"first"', key: 'lane', event: 'x' }]);
    await until('first dead', async () => (await ob.get(first))?.state === 'dead', 15_000, 50);
    rx.failNext(0);
    rx.hold();
    const [second] = await ob.enqueue([{ url: rx.url, body: '"second"', key: 'lane', event: 'x' }]);
    await rx.waitFor('second in flight', (r) => r.heldCount() === 1);
    // The retried (older) delivery now sorts before the one in flight.
    const retried = await ob.retry(first);
    assert.equal(retried.state, 'pending');
    await assert.rejects(ob.retry('dl_unknown'), /not found/);
    rx.release();
    await until('both delivered', async () => (await ob.get(first))?.state === 'delivered' && (await ob.get(second))?.state === 'delivered', 15_000, 50);
    await sleep(300);
    const accepted = rx.accepted().map((q) => q.id);
    assert.deepEqual(accepted, [second, first], 'the in-flight one is not resent; the retried one goes next');
    await assert.rejects(ob.retry(second), /already delivered/);
  } finally {
    await ob.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('an older release\'s outbox (the webhook-outbox log, or before it outbox.json + journal) is carried into the queue once, with the fan-out cursor', async () => {
  const rec = (url: string, i: number, state = 'pending') => ({ id: `dl_old${i}`, n: i, key: 'lane-a', url, body: `{"n":${i}}`, event: 'node.up', state, attempts: 2, createdAt: Date.now(), nextAt: Date.now(), contentType: 'application/json' });
  const releases: Array<{ name: string; files: (url: string) => Record<string, string>; cursor: number; kept: string[] }> = [
    {
      name: 'issue 9 (webhook-outbox log)',
      files: (url) => ({ 'webhook-outbox.journal.jsonl': ['{"$outpostLog":1,"gen":0}', ...[1, 2, 3, 4].map((i) => JSON.stringify({ op: 'put', d: rec(url, i) })), JSON.stringify({ op: 'set', id: 'dl_old2', f: { state: 'dead', deadAt: Date.now() } }), '{"op":"del","id":"dl_old1"}', '{"op":"meta","n":4,"cursor":17}', ''].join('\n') }),
      cursor: 17,
      kept: ['webhook-outbox.journal.jsonl'],
    },
    {
      name: 'before it (outbox.json + journal with a torn last line)',
      files: (url) => ({
        'outbox.json': JSON.stringify({ n: 4, deliveries: Object.fromEntries([1, 2, 3, 4].map((i) => [`dl_old${i}`, rec(url, i)])) }),
        'outbox.journal.jsonl': `${JSON.stringify({ op: 'set', id: 'dl_old2', f: { state: 'dead', deadAt: Date.now() } })}\n{"op":"del","id":"dl_old1"}\n{"op":"del","id":"dl_old3"`,
      }),
      cursor: 0,
      kept: ['outbox.json', 'outbox.journal.jsonl'],
    },
  ];
  for (const release of releases) {
    const dir = await tempDir('outpost-outbox-import-');
    try {
      const rx = await receiver();
      rx.hold();
      for (const [f, text] of Object.entries(release.files(rx.url))) await writeFile(join(dir, f), text);
      const { ob } = await openOutbox({}, dir);
      assert.equal(ob.cursor(), release.cursor, release.name);
      assert.deepEqual((await ob.list({ state: 'pending' })).map((d) => d.id).sort(), ['dl_old3', 'dl_old4'], release.name);
      assert.deepEqual((await ob.list({ state: 'dead' })).map((d) => d.id), ['dl_old2'], release.name);
      await rx.waitFor('the lane\'s head sent', (r) => r.heldCount() === 1);
      assert.equal(rx.requests[0].id, 'dl_old3', `${release.name}: lane order kept`);
      await ob.stop();
      for (const f of release.kept) {
        await assert.rejects(readFile(join(dir, f)), /ENOENT/);
        await readFile(join(dir, `${f}.migrated`));
      }
      // Reopened: nothing imported twice, nothing lost.
      rx.release();
      const again = await openOutbox({}, dir);
      assert.equal(again.ob.cursor(), release.cursor);
      await until('both delivered', async () => (await Promise.all(['dl_old3', 'dl_old4'].map((id) => again.ob.get(id)))).every((d) => d?.state === 'delivered'));
      assert.deepEqual(rx.uniqueAccepted().map((q) => q.id), ['dl_old3', 'dl_old4'], release.name);
      assert.equal((await again.ob.get('dl_old2'))?.state, 'dead');
      await again.ob.stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
});

test('delivered and dead deliveries survive a restart; an id the outbox holds, delivered or gave up on is not queued twice', async () => {
  const rx = await receiver();
  const { ob, dir } = await openOutbox({ maxAgeMs: 300 });
  try {
    rx.failNext(Infinity, 500);
    const [dead] = await ob.enqueue([{ id: 'jobs:task-1', url: rx.url, body: '"d"', key: 'k1', event: 'x' }]);
    assert.equal(dead, 'jobs:task-1');
    await until('dead', async () => (await ob.get(dead))?.state === 'dead', 15_000, 50);
    rx.failNext(0);
    const ids = await ob.enqueue(Array.from({ length: 30 }, (_, i) => ({ id: `jobs:ok-${i}`, url: rx.url, body: `"${i}"`, key: 'k2', event: 'x' })));
    await until('30 delivered', async () => (await Promise.all(ids.map((id) => ob.get(id)))).every((d) => d?.state === 'delivered'));
    // The same ids again (a plugin retrying after a crash): recognised, not queued.
    assert.deepEqual(await ob.enqueue([{ id: 'jobs:ok-3', url: rx.url, body: '"again"', event: 'x' }, { id: 'jobs:task-1', url: rx.url, body: '"again"', event: 'x' }]), ['jobs:ok-3', 'jobs:task-1']);
    await assert.rejects(ob.enqueue([{ id: 'bad id!', url: rx.url, body: '{}', event: 'x' }]), /delivery id "bad id!" must be 1-128 letters/);
    await ob.stop();
    const again = await openOutbox({}, dir);
    assert.equal((await again.ob.get(dead))?.state, 'dead');
    assert.equal((await again.ob.get(dead))?.lastStatus, 500);
    assert.equal((await again.ob.list({ state: 'delivered', limit: 1000 })).length, 30);
    await sleep(200);
    assert.equal(rx.accepted().length, 30, 'nothing sent twice');
    await again.ob.stop();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a redirect is a failed attempt, never followed; a receiver that does not answer in time is cut off and retried with the same id', async () => {
  const rx = await receiver();
  const { ob, dir } = await openOutbox({ timeoutMs: 300 });
  try {
    rx.failNext(Infinity, 302);
    const [redirected] = await ob.enqueue([{ url: rx.url, body: '"r"', event: 'x' }]);
    const failed = await until('redirect recorded', async () => {
      const d = await ob.get(redirected);
      return (d?.attempts ?? 0) >= 1 && d;
    });
    assert.equal(failed.state, 'pending');
    assert.match(String(failed.lastError), /HTTP 302; redirects are not followed/);
    rx.failNext(0);
    await until('delivered after the receiver stops redirecting', async () => (await ob.get(redirected))?.state === 'delivered');

    rx.hold();
    const [slow] = await ob.enqueue([{ url: rx.url, body: '"s"', event: 'x' }]);
    const timedOut = await until('timeout recorded', async () => {
      const d = await ob.get(slow);
      return (d?.attempts ?? 0) >= 1 && d;
    });
    assert.match(String(timedOut.lastError), /timed out after 300 ms/);
    await rx.waitFor('a second attempt', (r) => r.requests.filter((q) => q.id === slow).length >= 2);
    rx.release();
    await until('delivered once the receiver answers', async () => (await ob.get(slow))?.state === 'delivered');
    assert.ok(rx.requests.filter((q) => q.id === slow).length >= 2, 'retries carry the same delivery id');
  } finally {
    rx.release();
    await ob.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
