/** The `outpost` command: runs controllers and agents, and is a thin client of the controller's REST API. */
import { UsageError } from './cli/args.ts';
import { DEFAULT_CONTROLLER, type ClientOpts } from './cli/client.ts';
import { dispatch, overview, type Invocation } from './cli/command.ts';
import { runCommands } from './cli/commands-run.ts';
import { adminCommands } from './cli/commands-admin.ts';
import { webhookCommands } from './cli/commands-webhooks.ts';
import { storeCommands } from './cli/commands-store.ts';

const commands = [...runCommands, ...adminCommands, ...webhookCommands, ...storeCommands];

const HELP = overview(
  commands,
  'outpost: agent for edge nodes and the controller that leads them',
  `Client commands take --controller URL (env OUTPOST_CONTROLLER, default ${DEFAULT_CONTROLLER}),
--token T (env OUTPOST_ADMIN_TOKEN) and --json for machine-readable output.
Every command takes --help. Errors print one line starting "outpost: " and exit non-zero
(2 for a usage mistake, 1 for anything else); set OUTPOST_DEBUG=1 to add the stack trace.`,
);

function client(values: Invocation['values']): ClientOpts {
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  return { controller: str(values.controller) ?? process.env.OUTPOST_CONTROLLER ?? DEFAULT_CONTROLLER, token: str(values.token) ?? process.env.OUTPOST_ADMIN_TOKEN };
}

/** One line, whatever was thrown (libraries sometimes reject with strings or multi-line messages). */
function oneLine(err: unknown): string {
  const raw = err instanceof Error ? err.message : typeof err === 'string' ? err : JSON.stringify(err) ?? String(err);
  return (raw || 'unknown error').replace(/\s*\n\s*/g, '; ').trim();
}

function fail(err: unknown): never {
  process.stderr.write(`outpost: ${oneLine(err)}\n`);
  // For bug reports: the stack, only when asked for.
  if (process.env.OUTPOST_DEBUG && err instanceof Error && !(err instanceof UsageError)) process.stderr.write(`${err.stack}\n`);
  process.exit(err instanceof UsageError ? 2 : 1);
}

// Long-running commands fail later, outside main's promise: same one-line treatment, no stack trace.
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

dispatch(commands, process.argv.slice(2), HELP, client).catch(fail);
