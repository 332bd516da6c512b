/**
 * The shipped config samples (configs/**) are what operators copy: each must parse with the schema
 * that reads it, and a controller and an agent must start on them. Only what cannot work on a test
 * machine is rewritten: ports (0), data dirs (temp dirs) and the listen host (loopback). Placeholder
 * URLs and secrets stay; where a plugin may fail for a reason outside Outpost (no Docker Engine on
 * this machine), the test says which reason is accepted.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import type { z } from 'zod';
import { AgentConfig } from '../agent/config.ts';
import { ControllerConfig } from '../controller/config.ts';
import { loadCatalog } from '../plugins/app-store/catalog.ts';
import type { PluginDefinition } from '../plugins/sdk/contract.ts';
import { describeIssues } from '../plugins/sdk/validate.ts';
import { ROOT, TestAgent, TestController, until } from './helpers/cluster.ts';

const CONFIGS = join(ROOT, 'configs');
const readJson = async (file: string): Promise<Record<string, unknown>> => JSON.parse(await readFile(file, 'utf8'));

/** A plugin's config schema as the hosts read it: its spec. */
async function pluginSchema(name: string): Promise<z.ZodType> {
  if (!existsSync(join(ROOT, 'plugins', name, 'index.ts'))) throw new Error(`there is no plugin "${name}" (no plugins/${name}/index.ts)`);
  const def = (await import(`../plugins/${name}/index.ts`)).default as PluginDefinition;
  return def.spec.config;
}

function assertParses(schema: z.ZodType, value: unknown, what: string): void {
  const r = schema.safeParse(value);
  assert.ok(r.success, r.success ? '' : `${what} does not parse: ${describeIssues(r.error)}`);
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...(await filesUnder(join(dir, e.name))));
    else out.push(relative(CONFIGS, join(dir, e.name)));
  }
  return out.sort();
}

/** Each sample file, with the check that reads it; a file without one fails the last test here. */
const checked = new Set<string>();

test('configs/controller.json parses, and so does the config of each plugin it runs', async () => {
  const sample = await readJson(join(CONFIGS, 'controller.json'));
  assertParses(ControllerConfig, sample, 'configs/controller.json');
  for (const [name, cfg] of Object.entries(ControllerConfig.parse(sample).plugins)) assertParses(await pluginSchema(name), cfg, `configs/controller.json plugins.${name}`);
  checked.add('controller.json');
});

test('configs/agent.json parses, and so does the config of each plugin it names', async () => {
  const sample = await readJson(join(CONFIGS, 'agent.json'));
  assertParses(AgentConfig, sample, 'configs/agent.json');
  for (const [name, cfg] of Object.entries(AgentConfig.parse(sample).plugins)) assertParses(await pluginSchema(name), cfg, `configs/agent.json plugins.${name}`);
  checked.add('agent.json');
});

test('configs/plugins/<name>.json parse with their plugin\'s schema', async () => {
  const files = (await readdir(join(CONFIGS, 'plugins'))).filter((f) => f.endsWith('.json'));
  assert.ok(files.length > 0);
  for (const f of files) {
    assertParses(await pluginSchema(basename(f, '.json')), await readJson(join(CONFIGS, 'plugins', f)), `configs/plugins/${f}`);
    checked.add(`plugins/${f}`);
  }
});

test('configs/apps/*.json load as app-store\'s catalog, every manifest valid', async () => {
  const catalog = await loadCatalog([join(CONFIGS, 'apps')]);
  assert.deepEqual(Object.fromEntries(catalog.errors), {});
  for (const f of await readdir(join(CONFIGS, 'apps'))) {
    assert.ok(catalog.apps.has(basename(f, '.json')), `configs/apps/${f} is in the catalog`);
    checked.add(`apps/${f}`);
  }
});

// ---------------------------------------------------------------------------------------------
// A controller and an agent on the samples.

/** What the sample's app-store may fail with on a machine without a running Docker Engine. */
const NO_DOCKER = /Docker Engine unreachable at \/var\/run\/docker\.sock|no Docker Engine socket at \/var\/run\/docker\.sock/;

let c: TestController;
let a: TestAgent;
let controllerSample: Record<string, unknown>;

before(async () => {
  controllerSample = await readJson(join(CONFIGS, 'controller.json'));
  const agentSample = await readJson(join(CONFIGS, 'agent.json'));
  const { host: _h, port: _p, dataDir: _d, ...controllerRest } = controllerSample;
  c = await TestController.start({ config: { ...controllerRest, host: '127.0.0.1', port: 0 } });
  // The sample names its controller by a placeholder URL: the agent links to the one it joined (as it does in production).
  const { host: _ah, port: _ap, dataDir: _ad, ...agentRest } = agentSample;
  a = await TestAgent.start(c, { name: String(agentSample.name), labels: agentSample.labels as Record<string, string>, plugins: agentSample.plugins as Record<string, unknown>, config: { ...agentRest, host: '127.0.0.1', port: 0 } });
});

after(async () => {
  await a?.stop();
  await c?.stop();
});

type PluginState = { name: string; state: string; error?: string };

function assertRunningOrNoDocker(p: PluginState | undefined, where: string): void {
  assert.ok(p, `${where}: plugin reported`);
  if (p.name === 'app-store' && p.state === 'failed') assert.match(p.error ?? '', NO_DOCKER, `${where}: app-store failed for another reason than a missing Docker Engine`);
  else assert.equal(p.state, 'running', `${where}: ${p.name} is ${p.state}: ${p.error ?? ''}`);
}

test('a controller started on configs/controller.json runs every plugin it names', async () => {
  const names = Object.keys(controllerSample.plugins as object);
  const plugins: PluginState[] = (await c.api('GET', '/api/v1/plugins')).body.plugins;
  assert.deepEqual(plugins.map((p) => p.name).sort(), [...names].sort());
  for (const p of plugins) assertRunningOrNoDocker(p, 'controller');
  assert.equal((await c.api('GET', '/readyz', undefined, undefined)).status, 200);
});

test('an agent started on configs/agent.json links, and runs its plugins (app-store: or says Docker is missing)', async () => {
  const agentPlugins = Object.keys((await readJson(join(CONFIGS, 'agent.json'))).plugins as object);
  const node = await until('the sample agent is up with its plugins settled', async () => {
    const n = await c.node(a.nodeId);
    return n?.state === 'up' && n.plugins.length === agentPlugins.length && n.plugins.every((p: PluginState) => p.state !== 'stopped') ? n : undefined;
  }, 30_000);
  assert.equal(node.name, 'edge-01');
  assert.deepEqual(node.labels, { region: 'eu-west', isp: 'CT' });
  for (const name of agentPlugins) assertRunningOrNoDocker(node.plugins.find((p: PluginState) => p.name === name), `agent ${name}`);
  await until('server-stats reports from the sample agent', async () => (await c.api('GET', `/searchServer?node=edge-01`)).body?.code === '1');
});

test('each configs/plugins/<name>.json is accepted by PUT /api/v1/plugins/<name>/config where the controller runs it', async () => {
  for (const f of (await readdir(join(CONFIGS, 'plugins'))).filter((x) => x.endsWith('.json'))) {
    const name = basename(f, '.json');
    if (!Object.hasOwn(controllerSample.plugins as object, name)) continue;
    const r = await c.api('PUT', `/api/v1/plugins/${name}/config`, await readJson(join(CONFIGS, 'plugins', f)));
    assert.equal(r.status, 200, `${f}: ${r.text}`);
    const p = await until(`${name} settled after the PUT`, async () => {
      const x: PluginState | undefined = (await c.api('GET', '/api/v1/plugins')).body.plugins.find((y: PluginState) => y.name === name);
      return x && x.state !== 'stopped' ? x : undefined;
    });
    assertRunningOrNoDocker(p, `controller after PUT ${f}`);
  }
});

test('every file under configs/ is checked by one of the tests above', async () => {
  assert.deepEqual((await filesUnder(CONFIGS)).filter((f) => !checked.has(f)), []);
});
