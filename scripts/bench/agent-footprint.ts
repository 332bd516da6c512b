/**
 * agent-footprint: one controller and agents running server-stats with its default config; after
 * they settle, RSS and CPU are read from /proc over the same idle window. The agent as shipped is the
 * one held to the targets: the command line of scripts/systemd/outpost-agent.service's ExecStart (what
 * scripts/install-agent.sh installs: `npm run build` output, plain node, lean V8 flags). Beside it run
 * the same JS without the V8 flags, the sources through tsx (`npm start`, scripts/outpost.mjs), and bare
 * `node` processes idling: the floor any Node.js agent pays.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { rm } from 'node:fs/promises';
import { ROOT, TestAgent, TestController, until, sleep } from '../../test/helpers/cluster.ts';
import { numericFlags } from './lib/args.ts';
import { measure, type Usage } from './lib/proc.ts';
import { precompile } from './lib/precompile.ts';
import { shippedArgv } from './lib/shipped.ts';
import { figure, mb, pct, printTable, progress } from './lib/report.ts';

const opts = numericFlags('agent-footprint', { seconds: 60, settle: 20 });
const TARGET_RSS = 60 * 1048576;
const TARGET_CPU = 0.5;
const quiet = { OUTPOST_LOG_LEVEL: 'warn' };

const controller = await TestController.start({ config: { heartbeat: { intervalMs: 2000, downAfter: 3, upAfter: 2 } }, env: quiet });
const children: ChildProcess[] = [];
const agents: TestAgent[] = [];
let compiled: string | undefined;

/** The agent's default: server-stats with its default intervals (10 s cheap values, 60 s disk). */
const DEFAULT_PLUGINS = { 'server-stats': {} };
/** Every plugin with an agent half, idle (no probe assigned, no app installed). */
const ALL_PLUGINS = { 'server-stats': {}, prober: {}, 'app-store': {} };

/** Joins an agent through the real CLI, then (for variants) runs the same config under another command line. */
async function agent(name: string, argv?: (configFile: string) => string[], plugins: Record<string, unknown> = DEFAULT_PLUGINS): Promise<{ pid: number; nodeId: string; errors(): string }> {
  const a = await TestAgent.start(controller, { name, plugins, env: quiet });
  agents.push(a);
  if (!argv) return { pid: a.proc.child.pid!, nodeId: a.nodeId, errors: () => a.proc.output().slice(-2000) };
  await a.kill('SIGTERM');
  const child = spawn(process.execPath, argv(join(a.dataDir, '..', 'agent-config.json')), { cwd: ROOT, env: { ...process.env, ...quiet }, stdio: ['ignore', 'ignore', 'pipe'] });
  let errors = '';
  child.stderr!.on('data', (d: Buffer) => (errors = (errors + d.toString()).slice(-2000)));
  children.push(child);
  return { pid: child.pid!, nodeId: a.nodeId, errors: () => errors };
}

const SHIPPED = 'agent as shipped (dist/, plain node + lean V8 flags)';
const PLAIN_JS = 'same dist/, no V8 flags';
const TSX = 'agent via tsx (npm start, scripts/outpost.mjs)';
const ALL = 'as shipped, all agent plugins (server-stats, prober, app-store)';

try {
  compiled = await precompile();
  const shipped = await shippedArgv();
  const variants = {
    [SHIPPED]: await agent('fp-shipped', (cfg) => shipped.argv(compiled!, cfg)),
    [PLAIN_JS]: await agent('fp-js', (cfg) => [join(compiled!, 'scripts/outpost.js'), 'agent', '--config', cfg]),
    [TSX]: await agent('fp-tsx'),
    [ALL]: await agent('fp-all', (cfg) => shipped.argv(compiled!, cfg), ALL_PLUGINS),
  };
  const idle = ['-e', 'setInterval(() => {}, 2000)'];
  const peer = spawn(process.execPath, idle, { stdio: 'ignore' });
  const leanPeer = spawn(process.execPath, [...shipped.flags, ...idle], { stdio: 'ignore' });
  children.push(peer, leanPeer);
  for (const [name, v] of Object.entries(variants)) {
    try {
      await until(`${name} up and heartbeating`, async () => {
        const n = await controller.node(v.nodeId);
        return n?.state === 'up' && n.lastHeartbeat > Date.now() - 3000;
      }, 90_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}; its output ends with: ${v.errors() || '(nothing)'}`);
    }
  }
  progress(`${Object.keys(variants).length} agents up; settling ${opts.settle} s, then measuring ${opts.seconds} s idle`);
  await sleep(opts.settle * 1000);
  const pids: Record<string, number> = Object.fromEntries(Object.entries(variants).map(([k, v]) => [k, v.pid]));
  const u = await measure({ ...pids, 'peer: bare node idling': peer.pid!, 'peer: bare node + lean V8 flags': leanPeer.pid!, [`controller (${Object.keys(variants).length} nodes)`]: controller.proc.child.pid! }, opts.seconds);
  const samples = (await controller.api('GET', `/api/v1/nodes/${variants[SHIPPED].nodeId}/stats`)).body?.history?.length ?? 0;

  const verdict = (x: Usage) => (x.rssMax <= TARGET_RSS && x.cpuPercent <= TARGET_CPU ? 'met' : `missed (${[x.rssMax > TARGET_RSS && 'RSS', x.cpuPercent > TARGET_CPU && 'CPU'].filter(Boolean).join(', ')})`);
  printTable(
    `agent-footprint: ${opts.seconds} s idle window after ${opts.settle} s settle (CPU = % of one core, own + reaped children)`,
    Object.entries(u).map(([k, v]) => [k, mb(v.rssAvg), mb(v.rssMax), pct(v.cpuPercent), k in pids ? verdict(v) : '']),
    ['process', 'RSS avg', 'RSS max', 'CPU', 'targets (<= 60 MB, <= 0.5 %)'],
  );
  const s = u[SHIPPED];
  const tsx = u[TSX];
  const all = u[ALL];
  printTable('notes', [
    ['server-stats samples the controller holds for the shipped agent', String(samples)],
    ['lean V8 flags (ExecStart)', shipped.flags.join(' ')],
    ['shipped agent RSS above bare node with the same flags', mb(s.rssAvg - u['peer: bare node + lean V8 flags'].rssAvg)],
    ['RSS saved by the V8 flags', mb(u[PLAIN_JS].rssAvg - s.rssAvg)],
    ['RSS saved against running through tsx', mb(tsx.rssAvg - s.rssAvg)],
    ['RSS added by prober and app-store (dockerode) over server-stats alone', mb(all.rssAvg - s.rssAvg)],
  ]);
  figure('agent-footprint', `as shipped (install-agent.sh: dist/, ${shipped.flags.join(' ')}) RSS avg ${mb(s.rssAvg)} (max ${mb(s.rssMax)}), CPU ${pct(s.cpuPercent)} of one core over ${opts.seconds} s idle, targets ${verdict(s)}; all agent plugins ${mb(all.rssAvg)} (max ${mb(all.rssMax)}); via tsx: ${mb(tsx.rssAvg)} (max ${mb(tsx.rssMax)}), ${pct(tsx.cpuPercent)}, ${verdict(tsx)}`);
} finally {
  for (const c of children) c.kill('SIGTERM');
  for (const a of agents) await a.stop();
  await controller.stop();
  if (compiled) await rm(dirname(compiled), { recursive: true, force: true });
}
