/**
 * The contract apart from the runtime: every file of every plugin (including ones added later)
 * imports only from its own folder and plugins/sdk, and plugins/sdk never imports the runtime
 * (except its testing harness, which drives the runtime on purpose).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { ROOT } from './helpers/cluster.ts';

const PLUGINS = join(ROOT, 'plugins');
/** Static imports and re-exports, side-effect imports, dynamic imports with a literal. */
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*)(['"])([^'"]+)\1/g;

async function* sourceFiles(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* sourceFiles(p);
    else if (/\.(ts|mts|js|mjs)$/.test(e.name)) yield p;
  }
}

/** Relative imports of a file, resolved to repository paths. */
async function relativeImports(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  return [...text.matchAll(SPECIFIER)].map((m) => m[2]).filter((s) => s.startsWith('.')).map((s) => relative(ROOT, resolve(dirname(file), s)));
}

const inside = (path: string, dir: string) => path === dir || path.startsWith(dir + sep);

test('a plugin imports only from its own folder and plugins/sdk', async () => {
  const plugins = (await readdir(PLUGINS, { withFileTypes: true })).filter((e) => e.isDirectory() && e.name !== 'sdk').map((e) => e.name);
  assert.ok(plugins.includes('prober') && plugins.includes('app-store') && plugins.includes('server-stats'));
  const bad: string[] = [];
  let files = 0;
  for (const name of plugins) {
    const own = join('plugins', name);
    for await (const file of sourceFiles(join(PLUGINS, name))) {
      files++;
      for (const target of await relativeImports(file)) {
        if (!inside(target, own) && !inside(target, join('plugins', 'sdk'))) bad.push(`${relative(ROOT, file)} imports ${target}`);
      }
    }
  }
  assert.ok(files > 30, `walked ${files} files`);
  assert.deepEqual(bad, [], 'imports outside the plugin folder and plugins/sdk (runtime/, agent/, controller/ or another plugin)');
});

test('plugins/sdk never imports the runtime, the agent or the controller (its testing harness aside)', async () => {
  const bad: string[] = [];
  for await (const file of sourceFiles(join(PLUGINS, 'sdk'))) {
    if (inside(relative(ROOT, file), join('plugins', 'sdk', 'testing'))) continue;
    for (const target of await relativeImports(file)) if (!inside(target, join('plugins', 'sdk'))) bad.push(`${relative(ROOT, file)} imports ${target}`);
  }
  assert.deepEqual(bad, []);
});

test('the import check catches what it must (its own regular expression on known shapes)', async () => {
  const lines = [`import { a } from '../../runtime/x.ts';`, `export * from "../other/y.ts";`, `const m = await import('../../agent/z.ts');`, `import '../side-effect.ts';`];
  assert.deepEqual(lines.map((l) => [...l.matchAll(SPECIFIER)].map((m) => m[2])), [['../../runtime/x.ts'], ['../other/y.ts'], ['../../agent/z.ts'], ['../side-effect.ts']]);
});
