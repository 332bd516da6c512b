/**
 * The controller's event log and the webhook fan-out in-process, stopped and reopened at chosen
 * points: what a crash between recording an event and queueing its deliveries leaves behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { EventLog } from '../controller/event-log.ts';
import { Fanout } from '../controller/webhooks/fanout.ts';
import { Outbox } from '../controller/webhooks/outbox.ts';
import { Subscriptions } from '../controller/webhooks/subscriptions.ts';
import { createEventBus } from '../runtime/events.ts';
import { MetricsRegistry } from '../plugins/sdk/metrics.ts';
import { createLog } from '../plugins/sdk/log.ts';
import { tempDir, sleep, until } from './helpers/cluster.ts';
import { Receiver } from './helpers/receiver.ts';

const SECRET = 'fanout-secret-0123456789';
const quiet = createLog('test', 'silent');

/** The controller's webhook parts on one data dir; `fanout: false` stops short of fanning out (a crash right after recording). */
async function open(dir: string, opts: { fanout?: boolean } = {}) {
  const heard: string[] = [];
  const bus = createEventBus(() => undefined);
  bus.on('test.ping', (p) => void heard.push((p as { message: string }).message));
  const events = await EventLog.open(dir, { bus, log: quiet, keep: 3 });
  const m = new MetricsRegistry();
  const outbox = await Outbox.open(dir, { maxAgeMs: 60_000, timeoutMs: 5_000, baseDelayMs: 20, maxDelayMs: 100 }, quiet, { attempts: m.counter('a_total', 'a'), failures: m.counter('f_total', 'f'), dead: m.counter('d_total', 'd') });
  const subs = await Subscriptions.open(dir, outbox, () => events.lastSeq());
  const fanout = new Fanout(events, subs, outbox, quiet);
  if (opts.fanout !== false) {
    fanout.start();
    outbox.start();
  }
  return {
    events,
    outbox,
    subs,
    fanout,
    heard,
    ping: async (message: string) => (await events.record([{ event: 'test.ping', data: { message } }]))[0],
    async close() {
      fanout.stop();
      await outbox.stop();
      await events.close();
    },
  };
}

test('events recorded but not fanned out before a "crash" are delivered after it, once, to the subscriptions that existed before them', async () => {
  const dir = await tempDir('outpost-fanout-');
  const rx = await Receiver.start({ secret: SECRET });
  try {
    // Life 1: recorded, never fanned out. The subscription is made between two events.
    const one = await open(dir, { fanout: false });
    await one.ping('before-sub');
    await one.subs.add({ url: rx.url, secret: SECRET, events: ['test.ping'] });
    const e2 = await one.ping('after-sub');
    await one.ping('after-sub-2');
    assert.deepEqual(one.heard, ['before-sub', 'after-sub', 'after-sub-2'], 'in-process listeners hear events once on disk');
    assert.deepEqual(one.events.list(10).map((e) => (e.data as { message: string }).message), ['after-sub-2', 'after-sub', 'before-sub']);
    await one.close();

    // Life 2: the fan-out resumes from the outbox's cursor (0): both later events, not the earlier one.
    const two = await open(dir);
    await two.fanout.settled(two.events.lastSeq());
    const got = await rx.waitFor('two deliveries', (r) => r.accepted().length === 2 && r.accepted());
    assert.deepEqual(got.map((q) => q.json.data.message), ['after-sub', 'after-sub-2']);
    assert.equal(got[0].json.id, e2.id, 'the body carries the recorded event id');
    assert.ok(got.every((q) => q.signatureOk));
    const ids = got.map((q) => q.id);
    await until('both recorded as delivered', async () => (await two.outbox.list({ state: 'delivered' })).length === 2);
    await two.close();

    // Life 3: nothing left to fan out; a replay from an older cursor would be recognised by the delivery ids.
    const three = await open(dir);
    await three.fanout.settled(three.events.lastSeq());
    assert.equal(three.outbox.cursor(), three.events.lastSeq());
    const again = await three.outbox.enqueue(three.subs.deliveriesFor(three.events.after(0).find((e) => e.id === e2.id)!));
    assert.deepEqual(again, [ids[0]], 'same delivery id for the same event and subscription');
    await sleep(300);
    assert.equal(rx.requests.length, 2, 'nothing sent twice');
    await three.close();
  } finally {
    await rx.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('the event log keeps the latest events and any not yet fanned out; an id handed in twice is recorded once', async () => {
  const dir = await tempDir('outpost-eventlog-');
  try {
    const one = await open(dir, { fanout: false });
    for (let i = 1; i <= 6; i++) await one.ping(`p${i}`);
    // keep is 3, but nothing was fanned out: all 6 stay.
    assert.equal(one.events.after(0).length, 6);
    one.events.fannedOutTo(one.events.lastSeq());
    assert.deepEqual(one.events.list(10).map((e) => (e.data as { message: string }).message), ['p6', 'p5', 'p4']);
    const [a, b] = await Promise.all([one.events.record([{ id: 'ev_fixed', event: 'test.ping', data: { message: 'x' } }]), one.events.record([{ id: 'ev_fixed', event: 'test.ping', data: { message: 'x' } }])]);
    assert.equal(a[0].seq, b[0].seq);
    assert.equal(one.heard.filter((m) => m === 'x').length, 1);
    await one.close();
    const two = await open(dir, { fanout: false });
    assert.equal((await two.events.record([{ id: 'ev_fixed', event: 'test.ping', data: { message: 'x' } }]))[0].seq, a[0].seq, 'still known after a reopen');
    assert.equal(two.events.lastSeq(), 7);
    await two.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
