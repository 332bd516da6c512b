/**
 * Agents and controllers upgrade apart: the agent runs a newer version of a plugin than the
 * controller (two plugin folders, `pluginDirs`). A field the controller does not know is kept; a
 * report of a type the controller refuses is acknowledged with the error, which the agent logs; a
 * command whose args the newer agent refuses is answered with an error naming the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, TestAgent, TestController, http, tempDir, until } from './helpers/cluster.ts';

const SDK = join(ROOT, 'plugins/sdk/index.ts');

/** Version 1 (the controller's) and version 2 (the agent's) differ only in their schemas. */
const SPECS = {
  v1: `reports: { tick: z.object({ n: z.number() }) },
  commands: { echo: { args: z.object({ text: z.string() }), result: z.object({ text: z.string() }) } },`,
  v2: `reports: { tick: z.object({ n: z.union([z.number(), z.string()]), added: z.string().optional() }) },
  commands: { echo: { args: z.object({ text: z.string(), times: z.number() }), result: z.object({ text: z.string() }) } },`,
};

const common: Record<string, string> = {
  'index.ts': `
import { definePlugin } from '${SDK}';
import { spec } from './spec.ts';
export default definePlugin(spec, { agent: () => import('./agent.ts'), controller: () => import('./controller.ts') });
`,
  'agent.ts': `
import { defineAgent } from '${SDK}';
import { spec } from './spec.ts';
export default defineAgent(spec, (ctx) => ({
  async start() {
    await ctx.report('tick', { n: 1, added: 'v2' } as never);
    await ctx.report('tick', { n: 'two' } as never);
  },
  commands: { echo: (args) => ({ text: args.text }) },
}));
`,
  'controller.ts': `
import { defineController, restError } from '${SDK}';
import { spec } from './spec.ts';
export default defineController(spec, (ctx) => {
  const ticks: unknown[] = [];
  return {
    start() {
      ctx.routes.mount([
        { method: 'GET', path: '/api/v1/zz-skew/ticks', auth: 'admin', error: restError, handler: () => ({ json: { ticks } }) },
        { method: 'POST', path: '/api/v1/zz-skew/echo/:node', auth: 'admin', error: restError, handler: async (req) => {
          try {
            return { json: await ctx.command(ctx.nodes.require(req.params.node).id, 'echo', { text: 'hi' }) };
          } catch (err) {
            return restError(502, (err as Error).message);
          }
        } },
      ]);
    },
    onReport: { tick: (_meta, data) => void ticks.push(data) },
  };
});
`,
};

async function pluginDir(version: keyof typeof SPECS): Promise<string> {
  const dir = await tempDir(`outpost-skew-${version}-`);
  await mkdir(join(dir, 'zz-skew'));
  const spec = `import { defineSpec, z } from '${SDK}';\nexport const spec = defineSpec({\n  name: 'zz-skew',\n  config: z.object({}).default({}),\n  ${SPECS[version]}\n});\n`;
  for (const [name, text] of Object.entries({ ...common, 'spec.ts': spec })) await writeFile(join(dir, 'zz-skew', name), text);
  return dir;
}

test('an agent with a newer plugin than its controller: unknown fields kept, wrong types refused and told', async () => {
  const [v1, v2] = await Promise.all([pluginDir('v1'), pluginDir('v2')]);
  const c = await TestController.start({ config: { pluginDirs: [v1], plugins: { 'zz-skew': {} } } });
  const a = await TestAgent.start(c, { name: 'newer', plugins: { 'zz-skew': {} }, config: { pluginDirs: [v2] } });
  try {
    await until('the refused report logged by the agent', () => /controller refused a report/.test(a.proc.output()), 20_000);
    const logged = a.proc.output().split('\n').find((l) => l.includes('controller refused a report'))!;
    assert.match(JSON.parse(logged).err, /^report zz-skew\.tick refused: n: Invalid input: expected number, received string$/);

    const ticks = (await c.api('GET', '/api/v1/zz-skew/ticks')).body.ticks;
    assert.deepEqual(ticks, [{ n: 1, added: 'v2' }], 'the accepted one applied with the field the controller does not know');
    assert.match((await http('GET', `${c.url}/metrics`)).text, /^outpost_plugin_boundary_refused_total\{kind="report",plugin="zz-skew",type="tick"\} 1$/m);

    await until('the node up', async () => (await c.node(a.nodeId))?.state === 'up');
    const echo = await c.api('POST', '/api/v1/zz-skew/echo/newer', {});
    assert.equal(echo.status, 502);
    assert.equal(echo.body.error.message, 'command zz-skew.echo refused: times: Invalid input: expected number, received undefined');
  } finally {
    await a.stop();
    await c.stop();
    await Promise.all([v1, v2].map((d) => rm(d, { recursive: true, force: true })));
  }
});
