/**
 * A plugin written only against plugins/sdk, in a folder outside the repository's plugins/ (config
 * `pluginDirs`), run by a real controller and agent: its report, command, messages both ways over
 * the link, its route, and its event in /api/v1/events and as a webhook subscription, with no
 * wiring of its own anywhere in the hosts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, TestAgent, TestController, tempDir, until } from './helpers/cluster.ts';

const SDK = join(ROOT, 'plugins/sdk/index.ts');

const files: Record<string, string> = {
  'spec.ts': `
import { defineSpec, z } from '${SDK}';
export const spec = defineSpec({
  name: 'zz-echo',
  config: z.object({ greeting: z.string().default('hello') }),
  reports: { tick: z.object({ n: z.number() }) },
  commands: { echo: { args: z.object({ text: z.string() }), result: z.object({ text: z.string(), node: z.string() }) } },
  messages: { toAgent: { ping: z.object({ body: z.instanceof(Buffer) }) }, toController: { pong: z.object({ size: z.number() }) } },
  events: { 'zz-echo.ticked': z.object({ node: z.string(), n: z.number() }) },
});
`,
  'index.ts': `
import { definePlugin } from '${SDK}';
import { spec } from './spec.ts';
export default definePlugin(spec, { agent: () => import('./agent.ts'), controller: () => import('./controller.ts') });
`,
  'agent.ts': `
import { defineAgent } from '${SDK}';
import { spec } from './spec.ts';
export default defineAgent(spec, (ctx) => ({
  start: () => ctx.report('tick', { n: 1 }),
  commands: { echo: (args) => ({ text: \`\${ctx.config.greeting} \${args.text}\`, node: ctx.node.name }) },
  onMessage: { ping: (m) => void ctx.send('pong', { size: m.body.length }) },
}));
`,
  'controller.ts': `
import { defineController, restError } from '${SDK}';
import { spec } from './spec.ts';
export default defineController(spec, (ctx) => {
  let pongs: number[] = [];
  let ticks = 0;
  return {
    start() {
      ctx.routes.mount([
        { method: 'GET', path: '/api/v1/zz-echo/state', auth: 'admin', error: restError, handler: () => ({ json: { ticks, pongs } }) },
        { method: 'POST', path: '/api/v1/zz-echo/echo/:node', auth: 'admin', error: restError, handler: async (req) => ({ json: await ctx.command(ctx.nodes.require(req.params.node).id, 'echo', { text: String(req.fields.text) }) }) },
        { method: 'POST', path: '/api/v1/zz-echo/ping', auth: 'admin', error: restError, handler: () => ({ json: { sent: ctx.broadcast('all', 'ping', { body: Buffer.from('12345') }) } }) },
      ]);
    },
    onReport: { tick: async (meta, data) => { ticks++; await ctx.events.emit('zz-echo.ticked', { node: meta.nodeId, n: data.n }); } },
    onMessage: { pong: (_node, m) => void pongs.push(m.size) },
  };
});
`,
};

test('a plugin from a pluginDirs folder runs on both hosts through the SDK alone', async () => {
  const dir = await tempDir('outpost-plugin-dir-');
  await mkdir(join(dir, 'zz-echo'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, 'zz-echo', name), text);
  const c = await TestController.start({ config: { pluginDirs: [dir], plugins: { 'zz-echo': { greeting: 'hi' } } } });
  const a = await TestAgent.start(c, { name: 'echo-node', plugins: { 'zz-echo': { greeting: 'hi' } }, config: { pluginDirs: [dir] } });
  try {
    // Subscribable by name before the first one happens: the host learnt it from the spec.
    const sub = await c.api('POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/unused', events: ['zz-echo.ticked'] });
    assert.equal(sub.status, 201, sub.text);
    await until('the report applied', async () => (await c.api('GET', '/api/v1/zz-echo/state')).body?.ticks === 1, 20_000);
    const events = (await c.api('GET', '/api/v1/events?limit=50')).body.events;
    assert.ok(events.some((e: any) => e.event === 'zz-echo.ticked' && e.data.node === a.nodeId && e.data.n === 1), 'its event is in the event log');

    await until('the node up', async () => (await c.node(a.nodeId))?.state === 'up');
    const echo = await c.api('POST', '/api/v1/zz-echo/echo/echo-node', { text: 'there' });
    assert.deepEqual(echo.body, { text: 'hi there', node: 'echo-node' });

    assert.deepEqual((await c.api('POST', '/api/v1/zz-echo/ping', {})).body, { sent: 1 });
    await until('the pong back', async () => (await c.api('GET', '/api/v1/zz-echo/state')).body?.pongs?.[0] === 5);

    const unknown = await TestController.start({ config: { plugins: { 'zz-echo': {} } } });
    try {
      const p = (await unknown.api('GET', '/api/v1/plugins')).body.plugins[0];
      assert.deepEqual([p.state, p.error], ['failed', 'unknown plugin "zz-echo"'], 'without the folder in pluginDirs it is not found');
    } finally {
      await unknown.stop();
    }
  } finally {
    await a.stop();
    await c.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
