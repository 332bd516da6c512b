/**
 * Runs the build the installer runs (`npm run build`, scripts/cli/build.mjs) into a temp dir, so a
 * benchmark runs exactly the JavaScript an installed agent runs, without touching the checkout's dist/.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../../test/helpers/cluster.ts';

/** Returns the directory holding the compiled tree; `node <dir>/scripts/outpost.js agent ...` runs it. */
export async function precompile(): Promise<string> {
  const out = join(await mkdtemp(join(tmpdir(), 'outpost-js-')), 'dist');
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'scripts/cli/build.mjs'), out], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`scripts/cli/build.mjs exited with ${code}`))));
  });
  // Installed, dist/ sits next to node_modules; here the checkout's are linked in.
  await symlink(join(ROOT, 'node_modules'), join(out, 'node_modules'));
  return out;
}
