/**
 * The command lines as installed: ExecStart of scripts/systemd/outpost-agent.service (plain node, lean
 * V8 flags, the compiled dist/) and the controller unit's node flags. Benchmarks that speak for
 * operators run these, not bare tsx.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from '../../../test/helpers/cluster.ts';

/** The words of a unit's ExecStart after its node (matched by `node`), and the node flags among them. */
async function execStart(unitFile: string, node: string): Promise<{ exec: string[]; flags: string[] }> {
  const unit = await readFile(join(ROOT, 'scripts/systemd', unitFile), 'utf8');
  const exec = new RegExp(`^ExecStart=${node} (.*)$`, 'm').exec(unit)?.[1].split(/\s+/);
  if (!exec) throw new Error(`no ExecStart=<node> ... line in scripts/systemd/${unitFile}`);
  return { exec, flags: exec.slice(0, exec.findIndex((a) => !a.startsWith('--'))) };
}

/**
 * ExecStart as argv for a compiled tree and a config file. The launcher install-agent.sh writes
 * (bin/outpost-agent) must use the same flags; checked here so they cannot drift.
 */
export async function shippedArgv(): Promise<{ flags: string[]; argv: (compiled: string, cfg: string) => string[] }> {
  const { exec, flags } = await execStart('outpost-agent.service', '@NODE@');
  const installer = /^readonly AGENT_NODE_FLAGS="([^"]*)"$/m.exec(await readFile(join(ROOT, 'scripts/install-agent.sh'), 'utf8'))?.[1];
  if (installer !== flags.join(' ')) throw new Error(`install-agent.sh AGENT_NODE_FLAGS "${installer}" differ from the unit's ExecStart flags "${flags.join(' ')}"`);
  return { flags, argv: (compiled, cfg) => exec.map((a) => a.replace('@PREFIX@/app/dist', compiled).replace('@PREFIX@/etc/agent.json', cfg)) };
}

/** The node flags of the controller as installed (scripts/systemd/outpost-controller.service): the scaleout bench starts its controllers with them. */
export async function shippedControllerFlags(): Promise<string[]> {
  return (await execStart('outpost-controller.service', '\\S*node')).flags;
}
