import { parseArgs } from 'node:util';
import { UsageError } from './args.ts';
import type { ClientOpts } from './client.ts';

/** One command-line flag; `value` names its argument in help (string flags only). */
export interface Flag {
  type: 'string' | 'boolean';
  value?: string;
  help: string;
  short?: string;
}
export type Flags = Record<string, Flag>;

export interface Invocation {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  /** Where and how client commands reach the controller. */
  client: ClientOpts;
  json: boolean;
}

export interface Command {
  /** Words after `outpost`, e.g. ['token', 'create']. */
  path: string[];
  /** Positional arguments as shown in usage; optional ones in [brackets]. */
  args?: string[];
  summary: string;
  /** Further help lines shown under the summary. */
  details?: string;
  flags?: Flags;
  /** Talks to a controller's REST API: gets --controller, --token and --json. */
  client?: boolean;
  run(inv: Invocation): Promise<void>;
}

export const CLIENT_FLAGS: Flags = {
  controller: { type: 'string', value: 'URL', help: 'controller base URL (env OUTPOST_CONTROLLER; default http://127.0.0.1:7070)' },
  token: { type: 'string', value: 'T', help: 'admin token (env OUTPOST_ADMIN_TOKEN)' },
  json: { type: 'boolean', help: 'print the API answer as JSON, for scripts' },
};

const HELP_FLAG: Flags = { help: { type: 'boolean', short: 'h', help: 'show this help' } };

const name = (c: Command) => `outpost ${c.path.join(' ')}`;

function flagsOf(c: Command): Flags {
  return { ...(c.flags ?? {}), ...(c.client ? CLIENT_FLAGS : {}), ...HELP_FLAG };
}

export function usage(c: Command): string {
  return `${name(c)}${c.args?.length ? ` ${c.args.join(' ')}` : ''} [options]`;
}

export function commandHelp(c: Command): string {
  const flags = Object.entries(flagsOf(c)).map(([k, f]) => [`${f.short ? `-${f.short}, ` : '    '}--${k}${f.value ? ` ${f.value}` : ''}`, f.help]);
  const width = Math.max(...flags.map(([l]) => l.length));
  return [`usage: ${usage(c)}`, '', c.summary, ...(c.details ? ['', c.details] : []), '', 'options:', ...flags.map(([l, h]) => `  ${l.padEnd(width)}  ${h}`)].join('\n');
}

export function overview(commands: Command[], intro: string, outro: string, synopsis = 'outpost <command> [options]'): string {
  const rows = commands.map((c) => [`${c.path.join(' ')}${c.args?.length ? ` ${c.args.join(' ')}` : ''}`, c.summary]);
  const width = Math.max(...rows.map(([l]) => l.length));
  return [intro, '', `usage: ${synopsis}`, '', ...rows.map(([l, s]) => `  ${l.padEnd(width)}  ${s}`), '', outro].join('\n');
}

function wantsHelp(argv: string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

/** Finds the command argv names (longest matching path), parses its flags and runs it. */
export async function dispatch(commands: Command[], argv: string[], topHelp: string, client: (values: Invocation['values']) => ClientOpts): Promise<void> {
  const first = argv[0];
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') return void process.stdout.write(topHelp + '\n');
  const matches = commands.filter((c) => c.path.every((w, i) => argv[i] === w)).sort((a, b) => b.path.length - a.path.length);
  const cmd = matches[0];
  if (!cmd) {
    const group = commands.filter((c) => c.path[0] === first);
    if (group.length === 0) throw new UsageError(`unknown command "${first}"; run outpost --help for the list`);
    const subs = group.map((c) => c.path[1]).filter(Boolean).join(', ');
    if (wantsHelp(argv)) return void process.stdout.write(overview(group, `outpost ${first}: ${subs}`, `Run outpost ${first} <subcommand> --help for its options.`, `outpost ${first} <subcommand> [options]`) + '\n');
    const sub = argv[1];
    throw new UsageError(sub === undefined || sub.startsWith('-') ? `"${first}" needs a subcommand: ${subs} (see outpost ${first} --help)` : `unknown subcommand "${first} ${sub}"; use one of: ${subs}`);
  }
  const see = `see ${name(cmd)} --help`;
  const options = Object.fromEntries(Object.entries(flagsOf(cmd)).map(([k, f]) => [k, { type: f.type, ...(f.short ? { short: f.short } : {}) }]));
  let parsed;
  try {
    parsed = parseArgs({ args: argv.slice(cmd.path.length), options, allowPositionals: true, strict: true });
  } catch (err) {
    const msg = (err as Error).message.split(/\. To specify|\n/)[0].replace(/\.$/, '');
    throw new UsageError(`${msg} (${see})`);
  }
  const values = parsed.values as Invocation['values'];
  if (values.help) return void process.stdout.write(commandHelp(cmd) + '\n');
  const declared = cmd.args ?? [];
  const required = declared.filter((a) => !a.startsWith('['));
  if (parsed.positionals.length < required.length) throw new UsageError(`missing ${required.slice(parsed.positionals.length).join(' ')} (usage: ${usage(cmd)})`);
  if (parsed.positionals.length > declared.length) throw new UsageError(`unexpected argument "${parsed.positionals[declared.length]}" (usage: ${usage(cmd)})`);
  await cmd.run({ values, positionals: parsed.positionals, client: cmd.client ? client(values) : { controller: '', token: undefined }, json: values.json === true });
}

/** Throws the one-line usage error for a missing required flag. */
export function required(values: Invocation['values'], flag: string, cmd: string): string {
  const v = values[flag];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${flag} is required (see outpost ${cmd} --help)`);
  return v;
}
