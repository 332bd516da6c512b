/** POST /api/v1/events/test: an operator's "send a test event to my webhooks", through the real outbox. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { http, TestController, until } from './helpers/cluster.ts';
import { Receiver } from './helpers/receiver.ts';

const SECRET = 'events-test-secret-0123456789';

test('a test event reaches subscribed webhooks signed; bad input and a missing token get the REST envelope', async () => {
  const c = await TestController.start({ config: { webhooks: { baseDelayMs: 50, maxDelayMs: 200 } } });
  const rx = await Receiver.start({ secret: SECRET });
  try {
    const known = await c.api('GET', '/api/v1/webhooks');
    assert.ok(known.body.events.includes('test.ping'), 'test.ping is a known event name');
    const sub = await c.api('POST', '/api/v1/webhooks', { url: rx.url, events: ['test.ping'], secret: SECRET });
    assert.equal(sub.status, 201, sub.text);

    const r = await c.api('POST', '/api/v1/events/test', { message: 'hello receivers' });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.body.event, 'test.ping');
    const got = await until('test.ping delivered', () => rx.requests.find((q) => q.event === 'test.ping'));
    assert.equal(got.json.event, 'test.ping');
    assert.equal(got.json.data.message, 'hello receivers');
    assert.equal(got.signatureOk, true);

    const recent = await c.api('GET', '/api/v1/events?limit=10');
    assert.ok(recent.body.events.some((e: { event?: string; name?: string }) => (e.event ?? e.name) === 'test.ping'), recent.text);

    const bad = await c.api('POST', '/api/v1/events/test', { message: 42 });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /message must be a string/);
    const noAuth = await http('POST', `${c.url}/api/v1/events/test`, { body: {} });
    assert.equal(noAuth.status, 401);
    const dflt = await c.api('POST', '/api/v1/events/test');
    assert.equal(dflt.status, 202, dflt.text);
    assert.equal(dflt.body.data.message, 'test event from Outpost');

    // The event log is on disk: a controller killed and restarted still lists what happened before.
    await c.restart('SIGKILL');
    const after = await c.api('GET', '/api/v1/events?limit=10');
    assert.equal(after.body.events.filter((e: { event: string }) => e.event === 'test.ping').length, 2, after.text);
  } finally {
    await rx.close();
    await c.stop();
  }
});
