/**
 * `npm run bench -- <name> [flags]`: runs scripts/bench/<name>.ts in its own Node process, so every
 * benchmark starts from a clean heap and a bench added later needs no registration here.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const DIR = import.meta.dirname;
const available = readdirSync(DIR)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .map((f) => f.slice(0, -3))
  .sort();

const [name, ...args] = process.argv.slice(2);
if (!name || name === '--help' || name === '-h' || !available.includes(name)) {
  if (name && !name.startsWith('-')) process.stderr.write(`unknown benchmark "${name}"\n`);
  process.stderr.write(`usage: npm run bench -- <name> [flags]   (each takes --help)\navailable: ${available.join(', ')}\n`);
  process.exit(name && !name.startsWith('-') ? 2 : name ? 0 : 2);
}

// Link benchmarks hold thousands of sockets: lift the soft open-files limit to the hard one for the
// bench and every process it starts (children inherit it).
const child = spawn('/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, '--import', 'tsx', join(DIR, `${name}.ts`), ...args], {
  stdio: 'inherit',
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
