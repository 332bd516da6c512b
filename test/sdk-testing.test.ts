/**
 * The SDK test harness itself, on two small plugins written inline: messages both ways with their
 * bytes, a dependency's events, webhook deliveries, the node going down and up, agent routes, a
 * failed start retried on the fake clock, and disposal at close.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defineAgent, defineController, definePlugin, defineSpec, restError, secret, z } from '../plugins/sdk/index.ts';
import { testPlugin } from '../plugins/sdk/testing/index.ts';

const source = defineSpec({
  name: 'zz-source',
  config: z.object({}),
  events: { 'zz-source.fired': z.object({ n: z.number() }) },
});
const sourcePlugin = definePlugin(source, {
  controller: async () => ({
    default: defineController(source, (ctx) => ({
      start() {
        ctx.routes.mount([{ method: 'POST', path: '/api/v1/zz-source/fire', auth: 'admin', error: restError, handler: async (req) => (await ctx.events.emit('zz-source.fired', { n: Number(req.fields.n) }), { json: { ok: true } }) }]);
      },
    })),
  }),
});

const spec = defineSpec({
  name: 'zz-probe',
  config: z.object({ every: z.number().default(5), hook: z.string().url(), hookSecret: secret(), failUntil: z.number().default(0) }),
  reports: { tick: z.object({ n: z.number(), at: z.number() }) },
  messages: { toAgent: { blob: z.object({ body: z.instanceof(Buffer) }) }, toController: { size: z.object({ bytes: z.number() }) } },
  dependencies: ['zz-source'],
});

const plugin = definePlugin(spec, {
  agent: async () => ({
    default: defineAgent(spec, (ctx) => {
      let n = 0;
      return {
        start() {
          // Fails while the clock is before failUntil: a start that depends on something outside coming up.
          if (Date.now() < ctx.config.failUntil) throw new Error('not yet');
          ctx.schedule.every(ctx.config.every * 1000, () => ctx.report('tick', { n: ++n, at: Date.now() }));
          ctx.http.mount([{ method: 'GET', path: '/api/v1/zz-probe/local', auth: 'none', error: restError, handler: () => ({ json: { n } }) }]);
        },
        onMessage: { blob: (m) => void ctx.send('size', { bytes: m.body.length }) },
      };
    }),
  }),
  controller: async () => ({
    default: defineController(spec, (ctx) => {
      const sizes: number[] = [];
      return {
        start() {
          ctx.metrics.gauge('outpost_zz_probe_ticks', 'Ticks seen.').set({}, 0);
          ctx.events.on('zz-source.fired', z.object({ n: z.number() }), async (p) => {
            await ctx.webhooks.deliver(ctx.config.hook, JSON.stringify(p), { secret: ctx.config.hookSecret, event: 'zz-probe.forward' });
          });
          ctx.routes.mount([
            { method: 'POST', path: '/api/v1/zz-probe/blob', auth: 'admin', error: restError, handler: () => ({ json: { sent: ctx.broadcast('all', 'blob', { body: Buffer.from([0, 1, 2, 255]) }) } }) },
            { method: 'GET', path: '/api/v1/zz-probe/sizes', auth: 'admin', error: restError, handler: () => ({ json: { sizes } }) },
          ]);
        },
        onReport: { tick: (_meta, t) => ctx.metrics.gauge('outpost_zz_probe_ticks', 'Ticks seen.').set({}, t.n) },
        onMessage: { size: (_node, m) => void sizes.push(m.bytes) },
      };
    }),
  }),
});

const NOW = Date.UTC(2024, 0, 1);
const config = { every: 5, hook: 'http://127.0.0.1:9/hook', hookSecret: 'hook-secret-123' };

test('reports on the fake clock, messages with their bytes, a dependency\'s events forwarded as signed webhooks', async () => {
  const h = await testPlugin({ plugin, config, with: [{ plugin: sourcePlugin }], now: NOW });
  try {
    assert.deepEqual(h.status(), { agent: [{ name: 'zz-probe', state: 'running' }, { name: 'zz-source', state: 'running' }], controller: [{ name: 'zz-probe', state: 'running' }, { name: 'zz-source', state: 'running' }] });
    await h.clock.tick(15_000);
    assert.deepEqual(h.reports.map((r) => r.data), [{ n: 1, at: NOW + 5000 }, { n: 2, at: NOW + 10_000 }, { n: 3, at: NOW + 15_000 }]);
    assert.equal(h.metric('outpost_zz_probe_ticks'), 3);
    assert.deepEqual((await h.inject({ method: 'GET', url: '/api/v1/zz-probe/local', host: 'agent', admin: false })).json, { n: 3 });

    assert.deepEqual((await h.inject({ method: 'POST', url: '/api/v1/zz-probe/blob' })).json, { sent: 1 });
    await h.settle();
    assert.deepEqual((await h.inject({ method: 'GET', url: '/api/v1/zz-probe/sizes' })).json, { sizes: [4] });
    assert.deepEqual(h.messages.map((m) => [m.direction, m.type, m.dropped]), [['toAgent', 'blob', false], ['toController', 'size', false]]);
    assert.ok(Buffer.isBuffer((h.messages[0].msg as { body: Buffer }).body), 'bytes stay bytes');

    assert.equal((await h.inject({ method: 'POST', url: '/api/v1/zz-source/fire', body: { n: 7 } })).status, 200);
    await h.settle();
    assert.deepEqual(h.events, [{ event: 'zz-source.fired', payload: { n: 7 } }]);
    assert.deepEqual(h.webhooks, [{ id: 'dl_1', url: 'http://127.0.0.1:9/hook', body: '{"n":7}', contentType: 'application/json', event: 'zz-probe.forward', key: undefined, secret: 'hook-secret-123' }]);
    assert.ok(!JSON.stringify(h.logs).includes('hook-secret-123'), 'the secret is in no log line');

    const missing = await h.inject({ method: 'GET', url: '/nowhere' });
    assert.deepEqual([missing.status, missing.json], [404, { error: { status: 404, message: 'no route for GET /nowhere' } }]);
  } finally {
    await h.close();
  }
});

test('a node down: messages dropped and reports held, then delivered in order when it is back', async () => {
  const h = await testPlugin({ plugin, config, with: [{ plugin: sourcePlugin }], now: NOW });
  try {
    h.setNode('down');
    assert.deepEqual((await h.inject({ method: 'POST', url: '/api/v1/zz-probe/blob' })).json, { sent: 0 });
    assert.equal(h.messages.at(-1)!.dropped, true);
    await h.clock.tick(10_000);
    assert.equal(h.reports.length, 2, 'the agent went on reporting into its outbox');
    assert.equal(h.metric('outpost_zz_probe_ticks'), 0, 'nothing reached the controller');
    h.setNode('up');
    await h.settle();
    assert.equal(h.metric('outpost_zz_probe_ticks'), 2);
  } finally {
    await h.close();
  }
});

test('a failed start is retried with backoff on the fake clock; close disposes of timers and metrics', async () => {
  const h = await testPlugin({ plugin, config: { ...config, failUntil: NOW + 2500 }, with: [{ plugin: sourcePlugin }], now: NOW, retry: { baseMs: 1000, maxMs: 10_000 } });
  assert.equal(h.status().agent[0].state, 'failed');
  assert.equal(h.status().agent[0].error, 'not yet');
  // Retries at +1 s (fails), +3 s (2 s later: starts).
  await h.clock.tick(1000);
  assert.equal(h.status().agent[0].state, 'failed');
  await h.clock.tick(2000);
  assert.equal(h.status().agent[0].state, 'running');
  assert.deepEqual(h.transitions.filter((t) => t.plugin === 'zz-probe').map((t) => [t.host, t.change]), [['agent', 'failed'], ['agent', 'recovered']]);
  await h.close();
  assert.doesNotMatch(h.metrics(), /outpost_zz_probe_ticks/, 'a stopped plugin\'s metrics leave the exposition');
  assert.equal(h.reports.length, 0);
});

/** A plugin whose singleton work counts timer runs per term and whose route runs a write in the term. */
const single = defineSpec({ name: 'zz-single', config: z.object({}) });
const singlePlugin = definePlugin(single, {
  controller: async () => ({
    default: defineController(single, (ctx) => {
      const runs = new Map<number, number>();
      const disposed: number[] = [];
      let current: { epoch: number; run<R>(fn: () => R): R } | undefined;
      return {
        start() {
          ctx.singleton((term) => {
            current = term;
            term.schedule.every(1000, () => runs.set(term.epoch, (runs.get(term.epoch) ?? 0) + 1));
            return () => {
              disposed.push(term.epoch);
              if (current === term) current = undefined;
            };
          });
          ctx.routes.mount([{ method: 'GET', path: '/api/v1/zz-single/state', auth: 'admin', error: restError, handler: () => ({ json: { runs: Object.fromEntries(runs), disposed, holding: current?.epoch ?? null, aborted: ctx.signal.aborted } }) }]);
        },
      };
    }),
  }),
});

test('ctx.singleton on the harness: runs while the lease is held, disposed of (timers stopped) when lost, again with a new epoch when held again', async () => {
  const h = await testPlugin({ plugin: singlePlugin, halves: ['controller'], lease: 'lost' });
  try {
    const state = async () => (await h.inject({ method: 'GET', url: '/api/v1/zz-single/state' })).json as { runs: Record<string, number>; disposed: number[]; holding: number | null; aborted: boolean };
    await h.clock.tick(3000);
    assert.deepEqual(await state(), { runs: {}, disposed: [], holding: null, aborted: false }, 'nothing runs without the lease; routes answer');
    const first = await h.holdLease();
    assert.equal(h.leaseEpoch(), first);
    await h.clock.tick(3000);
    assert.deepEqual((await state()).runs, { [first]: 3 });
    await h.loseLease();
    assert.equal(h.leaseEpoch(), undefined);
    await h.clock.tick(5000);
    assert.deepEqual(await state(), { runs: { [first]: 3 }, disposed: [first], holding: null, aborted: false }, 'its timers stopped with the term');
    const second = await h.holdLease();
    assert.ok(second > first);
    await h.clock.tick(2000);
    assert.deepEqual(await state(), { runs: { [first]: 3, [second]: 2 }, disposed: [first], holding: second, aborted: false });
  } finally {
    await h.close();
  }
});
