import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startNetnsCluster } from './lib/netns-cluster.ts';
import { startReceiver, type ReceivedRequest } from './lib/receiver.ts';
import { verifyOutpostSignature } from '../../plugins/sdk/signature.ts';
import { until } from '../helpers/cluster.ts';

/** Scheduling slack on a busy 2-core CI machine, on top of the watchdog window itself. */
const SLACK_MS = 2000;
const SECRET = 'e2e-webhook-secret-0123456789';

test('a cut-off node is reported by signed node.down / node.up webhooks, retried under the same delivery id', async (t) => {
  // Every delivery's first attempt fails: the retry must carry the same X-Outpost-Delivery id.
  const rx = await startReceiver({ respond: (_req, attempt) => (attempt === 1 ? 503 : 200) });
  const c = await startNetnsCluster({
    nodes: 3,
    controller: { config: { webhooks: { baseDelayMs: 200, maxDelayMs: 1000, timeoutMs: 5000 } } },
  });
  try {
    // The nodes' first node.up events are in the event log before subscribing: a node shown up has its
    // state written, and its event is numbered a moment later; one numbered after the subscription
    // was made would reach it.
    await until('every node.up of the start in the event log', async () => {
      const events = (await c.controller.api('GET', '/api/v1/events?limit=100')).body.events as Array<{ event: string; data?: { node?: { id?: string } } }>;
      return c.nodeIds.every((id) => events.some((e) => e.event === 'node.up' && e.data?.node?.id === id));
    });
    const sub = await c.controller.api('POST', '/api/v1/webhooks', { url: rx.url, secret: SECRET, events: ['node.down', 'node.up'] });
    assert.equal(sub.status, 201, sub.text);
    const victim = c.nodeIds[1];
    const about = (r: ReceivedRequest) => r.json?.data?.node?.id === victim;

    const cutAt = Date.now();
    await c.cutOff(1);
    const firstDown = await rx.waitFor('node.down', about, 30_000);
    const downDelay = firstDown.at - cutAt;
    assert.ok(downDelay <= c.downWindowMs() + SLACK_MS, `node.down arrived ${downDelay} ms after the cut (window ${c.downWindowMs()} ms)`);
    const downId = String(firstDown.headers['x-outpost-delivery']);
    assert.match(downId, /\S+/);
    const retriedDown = await rx.waitFor('node.down', (r) => r.headers['x-outpost-delivery'] === downId && r.attempt === 2, 20_000);
    assert.equal(retriedDown.status, 200);
    assert.equal(retriedDown.body, firstDown.body, 'a retry sends the same body');

    await c.restore(1);
    const upAt = Date.now();
    const firstUp = await rx.waitFor('node.up', about, 30_000);
    const upId = String(firstUp.headers['x-outpost-delivery']);
    assert.notEqual(upId, downId);
    await rx.waitFor('node.up', (r) => r.headers['x-outpost-delivery'] === upId && r.attempt === 2, 20_000);

    for (const r of rx.requests.filter(about)) {
      const sig = String(r.headers['x-outpost-signature'] ?? '');
      assert.match(sig, /^t=\d+,v1=[0-9a-f]{64}$/);
      assert.ok(verifyOutpostSignature(SECRET, r.body, sig), `signature of ${r.headers['x-outpost-event']} attempt ${r.attempt} verifies`);
      assert.ok(!verifyOutpostSignature('some-other-secret-000000', r.body, sig), 'signature is bound to the secret');
      assert.ok(!verifyOutpostSignature(SECRET, r.body + ' ', sig), 'signature is bound to the body');
      assert.equal(r.headers['content-type'], 'application/json');
      assert.ok(!r.body.includes(SECRET), 'the secret is never in a body');
    }
    assert.equal(firstDown.json.event, 'node.down');
    assert.equal(firstDown.json.data.node.name, 'node1');
    assert.equal(firstUp.json.event, 'node.up');
    // Only the cut-off node changed state: no event about the others.
    assert.deepEqual([...new Set(rx.requests.map((r) => r.json?.data?.node?.id))], [victim]);
    // Per subscription, in order: the down delivery was accepted before the up was first attempted.
    assert.ok(retriedDown.at <= firstUp.at);

    const log = await c.controller.api('GET', '/api/v1/deliveries?state=delivered');
    assert.equal(log.status, 200);
    const ids = (log.body.deliveries as Array<{ id: string; attempts: number }>).filter((d) => d.id === downId || d.id === upId);
    assert.equal(ids.length, 2, `both deliveries logged as delivered: ${log.text.slice(0, 500)}`);
    for (const d of ids) assert.ok(d.attempts >= 2);
    assert.ok(!log.text.includes(SECRET), 'the delivery log shows no secret');
    t.diagnostic(`node.down first attempt ${downDelay} ms after the cut (window ${c.downWindowMs()} ms); node.up ${firstUp.at - upAt} ms after restore`);
  } finally {
    await c.stop();
    await rx.close();
  }
});
