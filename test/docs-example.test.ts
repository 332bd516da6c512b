/**
 * The worked example of docs/plugins.md is real: its files and its test are copied out of the page
 * into a temp folder laid out like the repository, type-checked with the project's settings, its own
 * harness test run as a reader would run it, and the plugin run on a real controller and agent
 * (config `pluginDirs`).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ROOT, TestAgent, TestController, tempDir, until } from './helpers/cluster.ts';

const FILES = ['plugins/disk-alert/spec.ts', 'plugins/disk-alert/index.ts', 'plugins/disk-alert/agent.ts', 'plugins/disk-alert/controller.ts', 'test/disk-alert.test.ts'];

/** The ```ts blocks of the page whose first line names a file: `// plugins/disk-alert/spec.ts`. */
async function blocks(): Promise<Map<string, string>> {
  const page = await readFile(join(ROOT, 'docs/plugins.md'), 'utf8');
  const out = new Map<string, string>();
  for (const m of page.matchAll(/```ts\n\/\/ (\S+)\n([\s\S]*?)```/g)) out.set(m[1], m[2]);
  return out;
}

/** Outside the repository the SDK is reached by its absolute path, as a plugin in `pluginDirs` does. */
const rooted = (text: string) => text.replaceAll(`'../sdk/`, `'${ROOT}/plugins/sdk/`).replaceAll(`'../plugins/sdk/`, `'${ROOT}/plugins/sdk/`);

function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    // Without the runner's own context variable, a child `node --test` runs its file instead of reporting to this one.
    const { NODE_TEST_CONTEXT: _ctx, ...env } = process.env;
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

let dir: string;
before(async () => {
  dir = await tempDir('outpost-docs-example-');
  const found = await blocks();
  assert.deepEqual([...found.keys()].filter((f) => f.includes('disk-alert')), FILES, 'docs/plugins.md holds the example\'s files, in this order');
  // ESM like the repository (and like a real plugin folder outside it: docs/plugins.md says so).
  await writeFile(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  for (const f of FILES) {
    await mkdir(dirname(join(dir, f)), { recursive: true });
    await writeFile(join(dir, f), rooted(found.get(f)!));
  }
});
after(() => rm(dir, { recursive: true, force: true }));

test('the example type-checks with the project\'s compiler settings', async () => {
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ extends: join(ROOT, 'tsconfig.json'), include: FILES.map((f) => join(dir, f)), compilerOptions: { typeRoots: [join(ROOT, 'node_modules/@types')] } }));
  const r = await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', join(dir, 'tsconfig.json')]);
  assert.equal(r.code, 0, r.out);
});

test('the example\'s own harness test passes, run as a reader runs it', async () => {
  const r = await run(process.execPath, ['--import', 'tsx', '--test', join(dir, 'test/disk-alert.test.ts')]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /^# pass 3$/m, r.out);
  assert.match(r.out, /^# fail 0$/m);
});

test('the example runs on a real controller and agent from a pluginDirs folder', async () => {
  const cfg = { path: dir, interval: 1, lowBelow: 0.999999 };
  const c = await TestController.start({ config: { pluginDirs: [join(dir, 'plugins')], plugins: { 'disk-alert': cfg } } });
  const a = await TestAgent.start(c, { name: 'disk-node', plugins: { 'disk-alert': cfg }, config: { pluginDirs: [join(dir, 'plugins')] } });
  try {
    const low = await until('disk-alert.low in the event log', async () => {
      const events = (await c.api('GET', '/api/v1/events?limit=100')).body.events as Array<{ event: string; data: { node: string; path: string; freeRatio: number } }>;
      return events.find((e) => e.event === 'disk-alert.low');
    }, 20_000);
    assert.equal(low.data.node, 'disk-node');
    assert.equal(low.data.path, dir);
    const nodes = (await c.api('GET', '/api/v1/disk-alert/nodes')).body.nodes;
    assert.equal(nodes.length, 1);
    assert.equal(nodes[0].low, true);
    await until('the node up', async () => (await c.node(a.nodeId))?.state === 'up');
    const read = await c.api('POST', '/api/v1/disk-alert/nodes/disk-node/read', {});
    assert.equal(read.status, 200, read.text);
    assert.equal(read.body.path, dir);
    assert.ok(read.body.size > 0 && read.body.free <= read.body.size);
    const metrics = await fetch(`${c.url}/metrics`).then((r) => r.text());
    assert.match(metrics, /^outpost_disk_alert_free_ratio\{node="disk-node"\} 0\.\d+$/m);
  } finally {
    await a.stop();
    await c.stop();
  }
});
