#!/usr/bin/env node
/**
 * `npm run build`: transpiles the Outpost sources to plain ESM JavaScript in dist/ (or the directory
 * given as the first argument), file by file with esbuild, nothing bundled. The installed agent runs
 * dist/ with plain `node`: under Node 20 `--import tsx` keeps a module-loader worker thread (a second
 * V8 isolate) alive for the life of the process, about 30 MB of an idle agent's RSS
 * (docs/benchmarks.md, agent-footprint). Plain JS on purpose (no tsx needed to build).
 */
import { cp, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TREES = ['agent', 'controller', 'runtime', 'plugins', 'scripts/outpost.ts', 'scripts/cli'];
/** Relative specifiers ending in .ts, in static imports/exports and literal dynamic imports. */
const TS_SPECIFIER = /((?:from|import)\s*\(?\s*)(['"])(\.{1,2}\/[^'"]+)\.ts\2/g;

async function* files(path) {
  const entries = await readdir(path, { withFileTypes: true }).catch((err) => {
    if (err.code === 'ENOTDIR') return null;
    throw err;
  });
  if (!entries) {
    yield path;
    return;
  }
  for (const e of entries) if (e.name !== 'node_modules') yield* files(join(path, e.name));
}

/** Builds into out (replaced whole, via a sibling temp dir, so a failed build leaves the old one). */
export async function build(out = join(ROOT, 'dist')) {
  const tmp = `${out}.partial`;
  await rm(tmp, { recursive: true, force: true });
  for (const tree of TREES) {
    for await (const file of files(join(ROOT, tree))) {
      const rel = relative(ROOT, file);
      await mkdir(dirname(join(tmp, rel)), { recursive: true });
      if (!file.endsWith('.ts')) {
        await cp(file, join(tmp, rel));
        continue;
      }
      const { code } = await transform(await readFile(file, 'utf8'), { loader: 'ts', format: 'esm', target: 'node20', sourcefile: rel });
      await writeFile(join(tmp, rel.replace(/\.ts$/, '.js')), code.replace(TS_SPECIFIER, '$1$2$3.js$2'));
    }
  }
  // plugins/sdk/version.ts reads ../../package.json; "type": "module" makes the .js files ESM.
  await cp(join(ROOT, 'package.json'), join(tmp, 'package.json'));
  await rm(out, { recursive: true, force: true });
  await rename(tmp, out);
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await build(process.argv[2] ? resolve(process.argv[2]) : undefined);
  process.stdout.write(`built ${relative(process.cwd(), out) || '.'}\n`);
}
