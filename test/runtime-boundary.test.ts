/**
 * The typed boundary (runtime/boundary.ts) where reports, commands, results, messages and events
 * cross between a plugin's halves or between plugins: a field the receiver does not know is kept,
 * a wrong type is refused with an error naming the field, told to the sender and counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { defineAgent, defineController, definePlugin, defineSpec, type AgentContext, type ControllerContext, type PluginDefinition } from '../plugins/sdk/contract.ts';
import { BoundaryError, keepUnknown } from '../runtime/boundary.ts';
import { eventually, harness, metricValue } from './helpers/runtime-harness.ts';

const refused = (h: { metrics: Parameters<typeof metricValue>[0] }, plugin: string, kind: string, type: string) => metricValue(h.metrics, 'outpost_plugin_boundary_refused_total', { kind, plugin, type });

const spec = defineSpec({
  name: 'typed',
  config: z.object({}).default({}),
  reports: { tick: z.object({ n: z.number(), tags: z.array(z.string()).default([]) }) },
  commands: { echo: { args: z.object({ text: z.string() }), result: z.object({ text: z.string(), at: z.number() }) } },
  messages: { toAgent: { push: z.object({ body: z.instanceof(Buffer) }) }, toController: { hello: z.object({ k: z.string() }) } },
  events: { 'typed.ticked': z.object({ node: z.string(), n: z.number() }) },
});

interface Seen {
  reports: unknown[];
  args: unknown[];
  pushes: unknown[];
  hellos: unknown[];
  events: unknown[];
}

function typedPlugins(seen: Seen, ctxs: { agent?: AgentContext<typeof spec>; controller?: ControllerContext<typeof spec> }): PluginDefinition[] {
  const typed = definePlugin(spec, {
    agent: async () => ({
      default: defineAgent(spec, (ctx) => {
        ctxs.agent = ctx;
        return {
          commands: { echo: (args) => (seen.args.push(args), { text: args.text, at: 1 }) },
          onMessage: { push: (m) => void seen.pushes.push(m) },
        };
      }),
    }),
    controller: async () => ({
      default: defineController(spec, (ctx) => {
        ctxs.controller = ctx;
        return {
          onReport: { tick: (_meta, data) => void seen.reports.push(data) },
          onMessage: { hello: (nodeId, m) => void seen.hellos.push([nodeId, m]) },
        };
      }),
    }),
  });
  const listenerSpec = defineSpec({ name: 'listener', config: z.object({}).default({}), dependencies: ['typed'] });
  const listener = definePlugin(listenerSpec, {
    controller: async () => ({
      default: defineController(listenerSpec, (ctx) => ({
        start() {
          ctx.events.on('typed.ticked', z.object({ n: z.number() }), (p) => void seen.events.push(p));
          // This listener expects a field the emitter never sends: each event is refused for it.
          ctx.events.on('typed.ticked', z.object({ missing: z.string() }), () => void seen.events.push('never'));
        },
      })),
    }),
  });
  return [typed as PluginDefinition, listener as PluginDefinition];
}

async function setup() {
  const seen: Seen = { reports: [], args: [], pushes: [], hellos: [], events: [] };
  const ctxs: { agent?: AgentContext<typeof spec>; controller?: ControllerContext<typeof spec> } = {};
  const h = await harness(typedPlugins(seen, ctxs));
  await h.agent.runner.startAll({ typed: {} });
  await h.controller.runner.startAll({ typed: {}, listener: {} });
  return { h, seen, agent: ctxs.agent!, controller: ctxs.controller! };
}

test('keepUnknown puts back what the schema stripped, at every level, and keeps what it parsed', () => {
  const schema = z.object({ a: z.number(), inner: z.object({ b: z.string() }), list: z.array(z.object({ c: z.boolean().default(true) })) });
  const original = { a: 1, extra: 'x', inner: { b: 'y', deeper: 2 }, list: [{ more: 3 }, { c: false }] };
  assert.deepEqual(keepUnknown(original, schema.parse(original)), { a: 1, extra: 'x', inner: { b: 'y', deeper: 2 }, list: [{ more: 3, c: true }, { c: false }] });
  const buf = Buffer.from('x');
  assert.equal((keepUnknown({ body: buf }, { body: buf }) as { body: Buffer }).body, buf, 'class instances are taken as parsed');
});

test('reports: an unknown field reaches the handler; a wrong type is refused naming the field and counted; an undeclared type too', async () => {
  const { h, seen, agent } = await setup();
  try {
    // A newer agent's report, with a field this controller's schema does not know.
    await h.controller.report({ nodeId: 'n1', seq: 1, ts: 1 }, 'typed', 'tick', { n: 1, added: { in: 'v2' } });
    assert.deepEqual(seen.reports, [{ n: 1, tags: [], added: { in: 'v2' } }], 'kept, and the default applied');

    await assert.rejects(h.controller.report({ nodeId: 'n1', seq: 2, ts: 1 }, 'typed', 'tick', { n: 'one' }), (err: unknown) => {
      assert.ok(err instanceof BoundaryError);
      assert.equal(err.message, 'report typed.tick refused: n: Invalid input: expected number, received string');
      return true;
    });
    await assert.rejects(h.controller.report({ nodeId: 'n1', seq: 3, ts: 1 }, 'typed', 'tock', {}), /typed declares no report "tock" \(it declares: tick\)/);
    assert.equal(refused(h, 'typed', 'report', 'tick'), 1);
    assert.equal(refused(h, 'typed', 'report', '(undeclared)'), 1);
    assert.equal(seen.reports.length, 1);

    // The agent checks its own reports too, so a plugin's mistake fails at its call.
    await assert.rejects(agent.report('tick', { n: 'two' } as never), /report typed\.tick refused: n: /);
    await agent.report('tick', { n: 2 });
    await h.deliverReports();
    assert.deepEqual(seen.reports.at(-1), { n: 2, tags: [] });
  } finally {
    await h.close();
  }
});

test('commands: wrong args get an error naming the field back to the caller; a wrong result is refused; unknown fields reach the handler', async () => {
  const { h, seen, controller } = await setup();
  try {
    assert.deepEqual(await controller.command('n1', 'echo', { text: 'hi' }), { text: 'hi', at: 1 });
    // What a newer controller could send to this agent: the agent is the boundary for args.
    await assert.rejects(h.agent.command('typed', 'echo', { text: 5 }, Date.now() + 1000), /^Error: command typed\.echo refused: text: Invalid input: expected string, received number$/);
    await assert.rejects(h.agent.command('typed', 'nope', {}, Date.now() + 1000), /typed declares no command "nope"/);
    assert.deepEqual(await h.agent.command('typed', 'echo', { text: 'x', since: 'v2' }, Date.now() + 1000), { text: 'x', at: 1 });
    assert.deepEqual(seen.args.at(-1), { text: 'x', since: 'v2' });
    assert.equal(refused(h, 'typed', 'command', 'echo'), 1);

    // An older agent answering in a shape this controller does not accept.
    h.commandAnswer = async () => ({ text: 'hi' });
    await assert.rejects(controller.command('n1', 'echo', { text: 'hi' }), /result typed\.echo refused: at: Invalid input: expected number, received undefined/);
    assert.equal(refused(h, 'typed', 'result', 'echo'), 1);
  } finally {
    await h.close();
  }
});

test('messages: both ways, Buffers arrive as Buffers, unknown fields kept; a wrong type is dropped and counted', async () => {
  const { h, seen, agent, controller } = await setup();
  try {
    assert.equal(controller.send('n1', 'push', { body: Buffer.from('payload') }), true);
    assert.equal(agent.send('hello', { k: 'v', extra: 1 } as never), true);
    await eventually('both delivered', () => seen.pushes.length === 1 && seen.hellos.length === 1);
    const push = seen.pushes[0] as { body: Buffer };
    assert.ok(Buffer.isBuffer(push.body) && push.body.toString() === 'payload');
    assert.deepEqual(seen.hellos[0], ['n1', { k: 'v', extra: 1 }]);

    assert.throws(() => agent.send('hello', { k: 1 } as never), /message typed\.hello refused: k: /);
    // From a peer with another schema: dropped on receipt, counted, logged.
    h.hubs.agent.receive('', { plugin: 'typed', type: 'push', msg: { body: 'not bytes' } });
    assert.equal(refused(h, 'typed', 'message', 'push'), 1);
    assert.equal(refused(h, 'typed', 'message', 'hello'), 1);
    assert.equal(seen.pushes.length, 1);
    assert.ok(h.lines.some((l) => l.msg === 'message from the controller not handled' && /body/.test(String(l.err))));
  } finally {
    await h.close();
  }
});

test('events: checked against the emitter spec before they are recorded; each listener gets them through its own schema', async () => {
  const { h, seen, controller } = await setup();
  try {
    await controller.events.emit('typed.ticked', { node: 'n1', n: 3, since: 'v2' } as never);
    assert.deepEqual(h.events, [{ event: 'typed.ticked', data: { node: 'n1', n: 3, since: 'v2' } }], 'recorded (for webhooks and /api/v1/events) with its unknown field');
    assert.deepEqual(seen.events, [{ node: 'n1', n: 3, since: 'v2' }], 'the dependent plugin gets it; its second listener refuses it');
    assert.equal(refused(h, 'listener', 'event', 'typed.ticked'), 1);

    await assert.rejects(controller.events.emit('typed.ticked', { node: 'n1', n: 'x' } as never), /event typed\.ticked refused: n: /);
    await assert.rejects(controller.events.emit('other.thing' as never, {} as never), /typed declares no event "other\.thing"/);
    assert.equal(h.events.length, 1, 'nothing refused is recorded');
  } finally {
    await h.close();
  }
});
