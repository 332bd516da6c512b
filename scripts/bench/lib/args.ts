import { parseArgs } from 'node:util';

/** Parses `--name value` numeric flags with defaults; unknown flags and non-numbers fail with one clear line. */
export function numericFlags<K extends string>(bench: string, defaults: Record<K, number>, argv = process.argv.slice(2)): Record<K, number> {
  const options = Object.fromEntries(Object.keys(defaults).map((k) => [k, { type: 'string' as const }]));
  let values: Record<string, string | undefined>;
  try {
    values = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean' } }, strict: true }).values as Record<string, string | undefined>;
  } catch (err) {
    fail(bench, defaults, (err as Error).message);
  }
  if (values.help) {
    process.stdout.write(usage(bench, defaults) + '\n');
    process.exit(0);
  }
  const out = { ...defaults };
  for (const k of Object.keys(defaults) as K[]) {
    const raw = values[k];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) fail(bench, defaults, `--${k} must be a non-negative number, got "${raw}"`);
    out[k] = n;
  }
  return out;
}

function usage(bench: string, defaults: Record<string, number>): string {
  return `usage: npm run bench -- ${bench} ${Object.entries(defaults).map(([k, v]) => `[--${k} ${v}]`).join(' ')}`;
}

function fail(bench: string, defaults: Record<string, number>, msg: string): never {
  process.stderr.write(`bench ${bench}: ${msg}\n${usage(bench, defaults)}\n`);
  process.exit(2);
}
