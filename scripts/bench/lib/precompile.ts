/**
 * Transpiles the Outpost tree to plain ESM JavaScript in a temp dir, so a benchmark can run the same
 * agent without tsx: under Node 20 `--import tsx` keeps a module-loader worker thread (a second V8
 * isolate) alive for the life of the process, about 30 MB of RSS on an idle agent.
 */
import { cp, mkdir, mkdtemp, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { transform } from 'esbuild';
import { ROOT } from '../../../test/helpers/cluster.ts';

const TREES = ['agent', 'controller', 'plugins', 'scripts/outpost.ts', 'scripts/cli'];
/** Relative specifiers ending in .ts, in static imports/exports and literal dynamic imports. */
const TS_SPECIFIER = /((?:from|import)\s*\(?\s*)(['"])(\.{1,2}\/[^'"]+)\.ts\2/g;

async function* files(path: string): AsyncGenerator<string> {
  const entries = await readdir(path, { withFileTypes: true }).catch(() => null);
  if (!entries) {
    yield path;
    return;
  }
  for (const e of entries) yield* files(join(path, e.name));
}

/** Returns the directory holding the compiled tree; `node <dir>/scripts/outpost.js agent ...` runs it. */
export async function precompile(): Promise<string> {
  const out = await mkdtemp(join(tmpdir(), 'outpost-js-'));
  for (const tree of TREES) {
    for await (const file of files(join(ROOT, tree))) {
      const rel = relative(ROOT, file);
      await mkdir(dirname(join(out, rel)), { recursive: true });
      if (!file.endsWith('.ts')) {
        await cp(file, join(out, rel));
        continue;
      }
      const { code } = await transform(await readFile(file, 'utf8'), { loader: 'ts', format: 'esm', target: 'node20', sourcefile: rel });
      await writeFile(join(out, rel.replace(/\.ts$/, '.js')), code.replace(TS_SPECIFIER, '$1$2$3.js$2'));
    }
  }
  await cp(join(ROOT, 'package.json'), join(out, 'package.json'));
  await symlink(join(ROOT, 'node_modules'), join(out, 'node_modules'));
  return out;
}
