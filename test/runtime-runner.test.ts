/**
 * The shared plugin runner (runtime/runner.ts) on both hosts, in-process: disposal of everything a
 * plugin registers, failed starts cleaned up and retried with backoff, live update() against a
 * clean restart, dependency order, claims.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { defineAgent, defineController, definePlugin, defineSpec, type AgentContext, type ControllerContext, type PluginDefinition, type PluginSpec } from '../plugins/sdk/contract.ts';
import { restError } from '../plugins/sdk/http.ts';
import type { Store } from '../plugins/sdk/store.ts';
import { eventually, harness, metricValue } from './helpers/runtime-harness.ts';

const noConfig = z.object({}).default({});

/** A plugin with only the halves given (each as its create function). */
function plugin<S extends PluginSpec>(spec: S, halves: { agent?: Parameters<typeof defineAgent<S>>[1]; controller?: Parameters<typeof defineController<S>>[1] }): PluginDefinition {
  return definePlugin(spec, {
    ...(halves.agent ? { agent: async () => ({ default: defineAgent(spec, halves.agent!) }) } : {}),
    ...(halves.controller ? { controller: async () => ({ default: defineController(spec, halves.controller!) }) } : {}),
  }) as PluginDefinition;
}

const tcpRefused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });

test('everything a plugin registers through its context is disposed of when it stops', async () => {
  const spec = defineSpec({ name: 'kit', config: noConfig, messages: { toAgent: { ping: z.object({ n: z.number() }) } } });
  let actx!: AgentContext<typeof spec>;
  let cctx!: ControllerContext<typeof spec>;
  let ticks = 0;
  let port = 0;
  let extra!: Store<{ a: number }>;
  const pings: number[] = [];
  const downs: string[] = [];
  const def = plugin(spec, {
    agent: (ctx) => ({
      async start() {
        actx = ctx;
        ctx.schedule.every(5, () => void ticks++);
        ctx.http.mount([{ method: 'GET', path: '/api/v1/kit/hello', auth: 'none', error: restError, handler: () => ({ json: { hello: true } }) }]);
        port = (await ctx.listen.tcp({ host: '127.0.0.1', port: 0 }, (s) => s.end('hi'))).port;
        ctx.metrics.gauge('outpost_kit_things', 'things').set({}, 7);
        extra = await ctx.openStore('extra', { a: 0 });
        await extra.update((d) => void (d.a = 1));
      },
      onMessage: { ping: (m) => void pings.push(m.n) },
    }),
    controller: (ctx) => ({
      start() {
        cctx = ctx;
        ctx.nodes.on('down', (n) => void downs.push(n.id));
        ctx.metrics.counter('outpost_kit_seen', 'seen').inc();
      },
    }),
  });
  const h = await harness([def]);
  try {
    await h.agent.runner.startAll({ kit: {} });
    await h.controller.runner.startAll({ kit: {} });
    assert.deepEqual(h.agent.runner.status(), [{ name: 'kit', state: 'running' }]);
    assert.equal((await fetch(`http://127.0.0.1:${h.port}/api/v1/kit/hello`)).status, 200);
    assert.equal(await tcpRefused(port), false);
    assert.equal(metricValue(h.metrics, 'outpost_kit_things', {}), 7);
    assert.equal(cctx.send('n1', 'ping', { n: 1 }), true);
    await eventually('the message delivered', () => pings.length === 1);
    h.nodeEvents.emit('down', h.nodes[0]);
    assert.deepEqual(downs, ['n1']);
    await eventually('the timer ticking', () => ticks > 0);

    await h.agent.runner.stopAll();
    await h.controller.runner.stopAll();

    assert.ok(actx.signal.aborted && cctx.signal.aborted, 'ctx.signal aborts on stop');
    const route = await fetch(`http://127.0.0.1:${h.port}/api/v1/kit/hello`);
    assert.equal(route.status, 503, 'a stopped plugin route answers 503 in its own envelope');
    assert.match(((await route.json()) as { error: { message: string } }).error.message, /plugin kit is not running/);
    assert.equal(await tcpRefused(port), true, 'its listener is closed');
    assert.doesNotMatch(h.metrics.render(), /outpost_kit_/, 'its metric families are gone');
    await assert.rejects(extra.update((d) => void (d.a = 2)), /closed \(its plugin stopped\)/);
    const before = ticks;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(ticks, before, 'its timers are stopped');
    h.nodeEvents.emit('down', h.nodes[0]);
    assert.deepEqual(downs, ['n1'], 'its node listeners are gone');
    cctx.nodes.list();
    assert.throws(() => cctx.send('n1', 'ping', { n: 2 }), /plugin kit is stopped/);
    assert.throws(() => actx.schedule.every(5, () => undefined), /plugin kit is stopped: cannot schedule a timer/);
    assert.throws(() => actx.http.mount([]), /plugin kit is stopped/);
  } finally {
    await h.close();
  }
});

test('a failed start is cleaned up, marked failed with its error and retried with backoff on both hosts', async () => {
  const attempts = { agent: 0, controller: 0 };
  const aspec = defineSpec({ name: 'flaky-a', config: noConfig });
  const cspec = defineSpec({ name: 'flaky-c', config: noConfig });
  const h = await harness([
    plugin(aspec, {
      agent: (ctx) => ({
        start() {
          attempts.agent++;
          ctx.metrics.gauge('outpost_flaky_a_half_started', 'registered before the throw').set({}, 1);
          ctx.schedule.every(1000, () => undefined);
          if (attempts.agent < 3) throw new Error(`engine not ready (attempt ${attempts.agent})`);
        },
      }),
    }),
    plugin(cspec, {
      controller: (ctx) => ({
        start() {
          attempts.controller++;
          ctx.routes.mount([{ method: 'GET', path: '/api/v1/flaky-c/x', auth: 'none', error: restError, handler: () => ({ json: {} }) }]);
          if (attempts.controller < 3) throw new Error(`catalog missing (attempt ${attempts.controller})`);
        },
      }),
    }),
  ]);
  try {
    await h.agent.runner.startAll({ 'flaky-a': {} });
    await h.controller.runner.startAll({ 'flaky-c': {} });
    // Right after the first attempt (the first retry waits 30 ms): failed, with its reason.
    assert.deepEqual(h.agent.runner.status(), [{ name: 'flaky-a', state: 'failed', error: 'engine not ready (attempt 1)' }]);
    assert.deepEqual(h.controller.runner.status(), [{ name: 'flaky-c', state: 'failed', error: 'catalog missing (attempt 1)' }]);
    assert.doesNotMatch(h.metrics.render(), /outpost_flaky_a_half_started/, 'what the failed start registered is disposed of');

    await eventually('both recovered', () => h.agent.runner.status()[0].state === 'running' && h.controller.runner.status()[0].state === 'running');
    assert.deepEqual(attempts, { agent: 3, controller: 3 });
    // Per host: the two hosts' retry timers are independent, so which recovers first is not defined.
    const of = (host: string) => h.transitions.filter((t) => t.host === host).map((t) => `${t.plugin} ${t.change}`);
    assert.deepEqual(
      { agent: of('agent'), controller: of('controller') },
      { agent: ['flaky-a failed', 'flaky-a recovered'], controller: ['flaky-c failed', 'flaky-c recovered'] },
      'failed once (not on every retry), recovered once',
    );
    for (const name of ['flaky-a', 'flaky-c']) {
      const delays = h.lines.filter((l) => l.plugin === name && l.msg === 'plugin start will be retried').map((l) => l.retryInMs);
      assert.deepEqual(delays, [30, 60], `${name} backs off`);
    }
    assert.equal(metricValue(h.metrics, 'outpost_flaky_a_half_started', {}), 1);
  } finally {
    await h.close();
  }
});

test('a bad config fails the plugin naming the field and is not retried until it changes', async () => {
  const spec = defineSpec({ name: 'strict', config: z.object({ port: z.number() }) });
  let starts = 0;
  const h = await harness([plugin(spec, { agent: () => ({ start: () => void starts++ }) })]);
  try {
    await h.agent.runner.startAll({ strict: { port: 'x' } });
    const [s] = h.agent.runner.status();
    assert.equal(s.state, 'failed');
    assert.match(s.error!, /^invalid config for plugin "strict": port: /);
    assert.equal(h.lines.filter((l) => l.plugin === 'strict' && l.msg === 'plugin start will be retried').length, 0);
    await h.agent.runner.apply('strict', { port: 7 });
    assert.deepEqual(h.agent.runner.status(), [{ name: 'strict', state: 'running' }]);
    assert.equal(starts, 1);
  } finally {
    await h.close();
  }
});

test('a pushed config goes to update() when the half has it, otherwise the plugin restarts cleanly', async () => {
  const cfg = z.object({ n: z.number().default(1) });
  const live = defineSpec({ name: 'live', config: cfg });
  const plain = defineSpec({ name: 'plain', config: cfg });
  const seen = { live: [] as string[], plain: [] as string[] };
  let liveCtx!: AgentContext<typeof live>;
  const h = await harness([
    plugin(live, {
      agent: (ctx) => {
        liveCtx = ctx;
        return { start: () => void seen.live.push(`start ${ctx.config.n}`), stop: () => void seen.live.push('stop'), update: (c) => void seen.live.push(`update ${c.n} ctx ${ctx.config.n}`) };
      },
    }),
    plugin(plain, { agent: (ctx) => ({ start: () => void seen.plain.push(`start ${ctx.config.n}`), stop: () => void seen.plain.push('stop') }) }),
  ]);
  try {
    await h.agent.runner.startAll({ live: {}, plain: {} });
    await h.agent.runner.apply('live', { n: 2 });
    await h.agent.runner.apply('plain', { n: 2 });
    await h.agent.runner.apply('plain', { n: 2 });
    assert.deepEqual(seen.live, ['start 1', 'update 2 ctx 2']);
    assert.equal(liveCtx.config.n, 2);
    assert.deepEqual(seen.plain, ['start 1', 'stop', 'start 2'], 'restarted once; the same config again is a no-op');
  } finally {
    await h.close();
  }
});

test('dependencies: started after what they depend on; a missing or cyclic one fails that plugin only', async () => {
  const order: string[] = [];
  const mk = (name: string, dependencies: string[] = []) => plugin(defineSpec({ name, config: noConfig, dependencies }), { controller: () => ({ start: () => void order.push(name) }) });
  const h = await harness([mk('a', ['b']), mk('b'), mk('c', ['x']), mk('d', ['e']), mk('e', ['d']), mk('f', ['c']), mk('g')]);
  try {
    await h.controller.runner.startAll({ a: {}, b: {}, c: {}, d: {}, e: {}, f: {}, g: {} });
    assert.deepEqual(order, ['b', 'a', 'g']);
    const status = Object.fromEntries(h.controller.runner.status().map((s) => [s.name, s.error ?? s.state]));
    assert.deepEqual(status, {
      a: 'running',
      b: 'running',
      c: 'depends on "x", which is not configured on this host',
      d: 'dependency cycle: d → e → d',
      e: 'dependency cycle: d → e → d',
      f: 'depends on "c", which cannot start: depends on "x", which is not configured on this host',
      g: 'running',
    });
  } finally {
    await h.close();
  }
});

test('dependencies on an agent: one not configured there does not hold the plugin back; one configured starts first', async () => {
  const order: string[] = [];
  const mk = (name: string, dependencies: string[] = []) => plugin(defineSpec({ name, config: noConfig, dependencies }), { agent: () => ({ start: () => void order.push(name) }) });
  const h = await harness([mk('a', ['b', 'x']), mk('b')]);
  try {
    await h.agent.runner.startAll({ a: {}, b: {} });
    assert.deepEqual(order, ['b', 'a']);
    assert.deepEqual(Object.fromEntries(h.agent.runner.status().map((s) => [s.name, s.error ?? s.state])), { a: 'running', b: 'running' });
  } finally {
    await h.close();
  }
});

test('claims: a collision fails the later plugin naming both; registering outside its claims fails its start', async () => {
  const mk = (name: string, claims: PluginSpec['claims'], start: (ctx: ControllerContext<PluginSpec>) => void = () => undefined) =>
    plugin(defineSpec({ name, config: noConfig, claims }), { controller: (ctx) => ({ start: () => start(ctx) }) });
  const h = await harness([
    mk('p1', { events: ['shared'] }),
    mk('p2', { events: ['shared'] }),
    mk('p3', { routes: ['/api/v1/x/*'] }),
    mk('p4', { routes: ['/api/v1/x/y'] }),
    mk('p5', { metrics: ['outpost_p1'] }),
    mk('core', { events: ['node'] }),
    mk('m', undefined, (ctx) => ctx.metrics.gauge('outpost_other_thing', 'x')),
    mk('r', undefined, (ctx) => ctx.routes.mount([{ method: 'GET', path: '/searchServer', auth: 'none', error: restError, handler: () => ({}) }])),
    mk('l', undefined, (ctx) => ctx.events.on('probe.changed', z.object({}), () => undefined)),
    mk('ok', undefined, (ctx) => {
      ctx.metrics.gauge('outpost_ok_x', 'x');
      ctx.events.on('node.down', z.object({}), () => undefined);
    }),
  ]);
  try {
    await h.controller.runner.startAll(Object.fromEntries(['p1', 'p2', 'p3', 'p4', 'p5', 'core', 'm', 'r', 'l', 'ok'].map((n) => [n, {}])));
    const status = Object.fromEntries(h.controller.runner.status().map((s) => [s.name, s.error ?? s.state]));
    assert.equal(status.p1, 'running');
    assert.equal(status.p2, 'plugin p2 claims event namespace "shared", which plugin p1 claims too');
    assert.equal(status.p4, 'plugin p4 claims route "/api/v1/x/y" (overlaps "/api/v1/x/*"), which plugin p3 claims too');
    assert.equal(status.p5, 'plugin p5 claims metric prefix "outpost_p1" (overlaps "outpost_p1_"), which plugin p1 claims too');
    assert.equal(status.core, 'claims.events: "node" is a core event namespace');
    assert.match(status.m, /plugin m cannot register metric "outpost_other_thing": outside its metric claims \(outpost_m_\)/);
    assert.match(status.r, /plugin r cannot mount \/searchServer: outside its route claims \(\/api\/v1\/r\/\*\)/);
    assert.match(status.l, /plugin l cannot listen to "probe.changed": only node\.\* events and events of the plugins in its dependencies/);
    assert.equal(status.ok, 'running');
  } finally {
    await h.close();
  }
});

test('a plugin log and queue are files of its own, closed when it stops and reloaded when it starts again', async () => {
  const spec = defineSpec({ name: 'keeper', config: z.object({ n: z.number().default(1) }) });
  const seen: Array<{ loaded: string[]; queued: number }> = [];
  let log!: Awaited<ReturnType<AgentContext<typeof spec>['openLog']>>;
  const h = await harness([
    plugin(spec, {
      agent: (ctx) => ({
        async start() {
          const loaded: string[] = [];
          log = await ctx.openLog('notes', z.string(), { load: (r) => void loaded.push(r), snapshot: () => loaded });
          const queue = await ctx.openQueue('jobs', z.object({ job: z.string() }));
          if (!(await queue.get('first'))) await queue.schedule({ job: 'x' }, Date.now() + 60_000, { id: 'first' });
          await log.append([`start ${ctx.config.n}`]);
          seen.push({ loaded, queued: (await queue.counts()).pending });
        },
      }),
    }),
  ]);
  try {
    await h.agent.runner.startAll({ keeper: {} });
    const first = log;
    await h.agent.runner.apply('keeper', { n: 2 });
    await assert.rejects(first.append(['late']), /closed/, 'the stopped instance log is closed');
    assert.deepEqual(seen, [
      { loaded: [], queued: 1 },
      { loaded: ['start 1'], queued: 1 },
    ]);
    assert.equal(h.agent.runner.status()[0].state, 'running');
    const files = (await readdir(join(h.dir, 'agent', 'plugins'))).sort();
    assert.ok(files.length > 0 && files.every((f) => f.startsWith('keeper')), `every file is the plugin's: ${files.join(', ')}`);
  } finally {
    await h.close();
  }
});
