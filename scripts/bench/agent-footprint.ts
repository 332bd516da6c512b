/**
 * agent-footprint: one controller and agents running server-stats with its default config; after
 * they settle, RSS and CPU are read from /proc over the same idle window. The agent as shipped
 * (`node --import tsx`) is the one held to the targets; beside it run the same agent with memory-lean
 * V8 flags, the same code precompiled to plain JS (no tsx loader thread), both together, and a bare
 * `node` process idling: the floor any Node.js agent pays.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { ROOT, TestAgent, TestController, until, sleep } from '../../test/helpers/cluster.ts';
import { numericFlags } from './lib/args.ts';
import { measure, type Usage } from './lib/proc.ts';
import { precompile } from './lib/precompile.ts';
import { figure, mb, pct, printTable, progress } from './lib/report.ts';

const opts = numericFlags('agent-footprint', { seconds: 60, settle: 20 });
const TARGET_RSS = 60 * 1048576;
const TARGET_CPU = 0.5;
/**
 * V8 flags for an idle-most-of-the-time process: 1 MB young-generation halves, no optimizing JIT.
 * (--lite-mode would save a little more but turns WebAssembly off, which fetch's parser and tsx need.)
 */
const TUNED = ['--max-semi-space-size=1', '--no-opt'];
const quiet = { OUTPOST_LOG_LEVEL: 'warn' };

const controller = await TestController.start({ config: { heartbeat: { intervalMs: 2000, downAfter: 3, upAfter: 2 } }, env: quiet });
const children: ChildProcess[] = [];
const agents: TestAgent[] = [];
let compiled: string | undefined;

/** Joins an agent through the real CLI, then (for variants) runs the same config under another command line. */
async function agent(name: string, argv?: (configFile: string) => string[]): Promise<{ pid: number; nodeId: string; errors(): string }> {
  // plugins: the agent's default, server-stats with its default intervals (10 s cheap values, 60 s disk).
  const a = await TestAgent.start(controller, { name, plugins: { 'server-stats': {} }, env: quiet });
  agents.push(a);
  if (!argv) return { pid: a.proc.child.pid!, nodeId: a.nodeId, errors: () => a.proc.output().slice(-2000) };
  await a.kill('SIGTERM');
  const child = spawn(process.execPath, argv(join(a.dataDir, '..', 'agent-config.json')), { cwd: ROOT, env: { ...process.env, ...quiet }, stdio: ['ignore', 'ignore', 'pipe'] });
  let errors = '';
  child.stderr!.on('data', (d: Buffer) => (errors = (errors + d.toString()).slice(-2000)));
  children.push(child);
  return { pid: child.pid!, nodeId: a.nodeId, errors: () => errors };
}

try {
  compiled = await precompile();
  const variants = {
    'agent as shipped (node --import tsx)': await agent('fp-shipped'),
    'agent + lean V8 flags': await agent('fp-flags', (cfg) => [...TUNED, '--import', 'tsx', 'scripts/outpost.ts', 'agent', '--config', cfg]),
    'agent precompiled to JS (plain node)': await agent('fp-js', (cfg) => [join(compiled!, 'scripts/outpost.js'), 'agent', '--config', cfg]),
    'agent precompiled + lean V8 flags': await agent('fp-js-flags', (cfg) => [...TUNED, join(compiled!, 'scripts/outpost.js'), 'agent', '--config', cfg]),
  };
  const peer = spawn(process.execPath, ['-e', 'setInterval(() => {}, 2000)'], { stdio: 'ignore' });
  children.push(peer);
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
  const u = await measure({ ...pids, 'peer: bare node idling': peer.pid!, 'controller (4 nodes)': controller.proc.child.pid! }, opts.seconds);
  const samples = (await controller.api('GET', `/api/v1/nodes/${variants['agent as shipped (node --import tsx)'].nodeId}/stats`)).body?.history?.length ?? 0;

  const verdict = (x: Usage) => (x.rssMax <= TARGET_RSS && x.cpuPercent <= TARGET_CPU ? 'met' : `missed (${[x.rssMax > TARGET_RSS && 'RSS', x.cpuPercent > TARGET_CPU && 'CPU'].filter(Boolean).join(', ')})`);
  printTable(
    `agent-footprint: ${opts.seconds} s idle window after ${opts.settle} s settle (CPU = % of one core, own + reaped children)`,
    Object.entries(u).map(([k, v]) => [k, mb(v.rssAvg), mb(v.rssMax), pct(v.cpuPercent), k in pids ? verdict(v) : '']),
    ['process', 'RSS avg', 'RSS max', 'CPU', 'targets (<= 60 MB, <= 0.5 %)'],
  );
  const shipped = u['agent as shipped (node --import tsx)'];
  const best = u['agent precompiled + lean V8 flags'];
  printTable('notes', [
    ['server-stats samples the controller holds for the shipped agent', String(samples)],
    ['shipped agent RSS above the bare-node peer', mb(shipped.rssAvg - u['peer: bare node idling'].rssAvg)],
    ['lean V8 flags', TUNED.join(' ')],
    ['RSS saved by precompiling + lean V8 flags', mb(shipped.rssAvg - best.rssAvg)],
  ]);
  figure('agent-footprint', `as shipped RSS avg ${mb(shipped.rssAvg)} (max ${mb(shipped.rssMax)}), CPU ${pct(shipped.cpuPercent)} of one core over ${opts.seconds} s idle, targets ${verdict(shipped)}; precompiled + lean V8 flags: ${mb(best.rssAvg)} (max ${mb(best.rssMax)}), ${pct(best.cpuPercent)}, ${verdict(best)}`);
} finally {
  for (const c of children) c.kill('SIGTERM');
  for (const a of agents) await a.stop();
  await controller.stop();
  if (compiled) await rm(compiled, { recursive: true, force: true });
}
