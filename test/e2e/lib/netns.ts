/**
 * Test nodes as Linux network namespaces, for e2e tests that need several hosts and a way to cut one off.
 *
 *   const net = await createNetwork({ nodes: 3 });
 *   net.nodes[0].ip;                        // 10.213.K.11
 *   await net.nodes[0].exec(['ping', '-c1', net.gatewayIp]);
 *   await net.cutOff(0);                    // host-side veth down: node 0 is unreachable both ways
 *   await net.restore(0);
 *   await net.destroy();
 *
 * Layout: one Linux bridge `op-brK` on the host holding `10.213.K.1/24` (the gateway, where a controller
 * or any host-side service listens), and per node a namespace `op-K-nI` whose `eth0` (10.213.K.(11+I)) is
 * one end of a veth pair; the other end (`opKnIh`) is enslaved to the bridge. K is picked per network so
 * concurrent test runs (several engineers, several files) never share a bridge, namespace or subnet.
 * Ownership is recorded in /run/outpost-e2e/K.pid; networks whose owner process died are reclaimed.
 *
 * Needs root (CAP_NET_ADMIN) and iproute2; `npm run test:e2e` (test/e2e/run.sh) provides both.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdir, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, run, type Proc, pidAlive } from '../../helpers/cluster.ts';

const execFileP = promisify(execFile);
const STATE_DIR = '/run/outpost-e2e';
/** 10.213.0.0/16 is not used by this machine, Docker's defaults (172.17/16, 172.18+/16) or the seeds. */
const SUBNET_PREFIX = '10.213';
const MAX_NETWORKS = 200;

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command (no shell) and returns its exit code and output; never throws on a non-zero exit. */
export async function sh(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<ExecResult> {
  try {
    const { stdout, stderr } = await execFileP(cmd, args, { timeout: opts.timeoutMs ?? 60_000, env: opts.env ?? process.env, cwd: opts.cwd, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return { code: typeof e.code === 'number' ? e.code : 127, stdout: e.stdout ?? '', stderr: e.stderr || e.message };
  }
}

/** Like sh, but a non-zero exit throws with the command and its stderr. */
export async function mustSh(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  const r = await sh(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** Fails fast, with the reason, when the harness cannot build namespaces here. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('e2e network namespaces need root: run `npm run test:e2e` as root');
}

export interface NetnsNode {
  index: number;
  /** Namespace name, for `ip netns exec`. */
  name: string;
  /** The node's address on the bridge. */
  ip: string;
  /** Host-side veth, the one cutOff() takes down. */
  hostVeth: string;
  /** `['ip', 'netns', 'exec', name]`: a prefix for spawning any command inside the namespace. */
  wrapper: string[];
  /** Runs a command inside the namespace. */
  exec(args: string[], opts?: { timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<ExecResult>;
  /** Runs `outpost <args>` (scripts/outpost.ts through tsx) inside the namespace. */
  outpost(args: string[], env?: Record<string, string>): Proc;
  /** `outpost agent --config FILE` inside the namespace (join it first, e.g. with outpost(['agent', 'join', ...])). */
  spawnAgent(configFile: string, env?: Record<string, string>): Proc;
}

export interface Network {
  /** K in op-brK / 10.213.K.0/24. */
  id: number;
  bridge: string;
  /** Host-side address on the bridge: where a controller or a receiver listens for the nodes. */
  gatewayIp: string;
  subnet: string;
  nodes: NetnsNode[];
  /** Takes the node's host-side veth down: no packet in or out until restore(). */
  cutOff(i: number): Promise<void>;
  restore(i: number): Promise<void>;
  isCutOff(i: number): boolean;
  /** Removes namespaces (killing what runs in them), veths and the bridge. Safe to call twice. */
  destroy(): Promise<void>;
}

const bridgeName = (k: number) => `op-br${k}`;
const nsName = (k: number, i: number) => `op-${k}-n${i}`;
const hostVethName = (k: number, i: number) => `op${k}n${i}h`;
const peerVethName = (k: number, i: number) => `op${k}n${i}p`;


/** Kills what still runs inside a namespace (agents a crashed test left behind), then deletes it. */
async function removeNamespace(ns: string): Promise<void> {
  const pids = await sh('ip', ['netns', 'pids', ns]);
  for (const p of pids.stdout.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await sh('ip', ['netns', 'delete', ns]);
}

async function teardown(k: number): Promise<void> {
  const list = await sh('ip', ['netns', 'list']);
  for (const line of list.stdout.split('\n')) {
    const ns = line.split(' ')[0];
    if (ns && ns.startsWith(`op-${k}-n`)) await removeNamespace(ns);
  }
  const links = await sh('ip', ['-o', 'link', 'show']);
  for (const m of links.stdout.matchAll(new RegExp(`^\\d+: (op${k}n\\d+h)[@:]`, 'gm'))) await sh('ip', ['link', 'delete', m[1]]);
  await sh('ip', ['link', 'delete', bridgeName(k)]);
  while ((await sh('iptables', ['-D', 'FORWARD', '-i', bridgeName(k), '-o', bridgeName(k), '-j', 'ACCEPT'])).code === 0);
  await rm(join(STATE_DIR, `${k}.pid`), { force: true });
}

/** Removes every network whose owning process is gone (a test run that crashed or was killed). */
export async function cleanupStale(): Promise<number> {
  let removed = 0;
  const owners = new Map<number, number>();
  for (const f of await readdir(STATE_DIR).catch(() => [] as string[])) {
    const m = f.match(/^(\d+)\.pid$/);
    if (m) owners.set(Number(m[1]), Number((await readFile(join(STATE_DIR, f), 'utf8').catch(() => '0')).trim()));
  }
  const links = await sh('ip', ['-o', 'link', 'show', 'type', 'bridge']);
  for (const m of links.stdout.matchAll(/^\d+: op-br(\d+)[@:]/gm)) {
    const k = Number(m[1]);
    const owner = owners.get(k);
    if (owner && pidAlive(owner)) continue;
    await teardown(k);
    removed++;
  }
  return removed;
}

/** Claims a free K atomically: creating the bridge fails if another run already holds that name. */
async function claimBridge(): Promise<number> {
  await mkdir(STATE_DIR, { recursive: true });
  for (let k = 0; k < MAX_NETWORKS; k++) {
    const r = await sh('ip', ['link', 'add', bridgeName(k), 'type', 'bridge']);
    if (r.code === 0) {
      await writeFile(join(STATE_DIR, `${k}.pid`), String(process.pid));
      return k;
    }
    if (!/exists/i.test(r.stderr)) throw new Error(`cannot create bridge ${bridgeName(k)}: ${r.stderr.trim()}`);
  }
  throw new Error(`no free e2e network slot (op-br0..op-br${MAX_NETWORKS - 1} all exist); run test/e2e/run.sh cleanup`);
}

const live = new Set<Network>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when a test forgets destroy(): synchronous teardown at process exit.
  process.on('exit', () => {
    for (const net of live) {
      for (const n of net.nodes) execFileSyncSafe('ip', ['netns', 'delete', n.name]);
      execFileSyncSafe('ip', ['link', 'delete', net.bridge]);
    }
  });
}

function execFileSyncSafe(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
  } catch {
    // best effort at exit
  }
}

/** Creates a bridge on the host and `nodes` namespaces attached to it, each with lo and eth0 up. */
export async function createNetwork(opts: { nodes: number }): Promise<Network> {
  requireRoot();
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > 200) throw new Error(`nodes must be 1..200, got ${opts.nodes}`);
  await cleanupStale();
  const k = await claimBridge();
  const bridge = bridgeName(k);
  const gatewayIp = `${SUBNET_PREFIX}.${k}.1`;
  const nodes: NetnsNode[] = [];
  const down = new Set<number>();
  let destroyed = false;

  const net: Network = {
    id: k,
    bridge,
    gatewayIp,
    subnet: `${SUBNET_PREFIX}.${k}.0/24`,
    nodes,
    async cutOff(i) {
      await mustSh('ip', ['link', 'set', node(i).hostVeth, 'down']);
      down.add(i);
    },
    async restore(i) {
      await mustSh('ip', ['link', 'set', node(i).hostVeth, 'up']);
      down.delete(i);
    },
    isCutOff: (i) => down.has(i),
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      live.delete(net);
      await teardown(k);
    },
  };
  const node = (i: number): NetnsNode => {
    const n = nodes[i];
    if (!n) throw new Error(`no node ${i} in network ${bridge} (has ${nodes.length})`);
    return n;
  };

  live.add(net);
  installExitHook();
  try {
    await mustSh('ip', ['addr', 'add', `${gatewayIp}/24`, 'dev', bridge]);
    await mustSh('ip', ['link', 'set', bridge, 'up']);
    // With br_netfilter loaded (Docker loads it) bridged node-to-node packets cross FORWARD, whose
    // policy Docker sets to DROP; let traffic between our own namespaces through.
    await sh('iptables', ['-I', 'FORWARD', '-i', bridge, '-o', bridge, '-j', 'ACCEPT']);
    for (let i = 0; i < opts.nodes; i++) {
      const name = nsName(k, i);
      const hostVeth = hostVethName(k, i);
      const peer = peerVethName(k, i);
      const ip = `${SUBNET_PREFIX}.${k}.${11 + i}`;
      await mustSh('ip', ['netns', 'add', name]);
      await mustSh('ip', ['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', peer]);
      await mustSh('ip', ['link', 'set', peer, 'netns', name]);
      await mustSh('ip', ['link', 'set', hostVeth, 'master', bridge]);
      await mustSh('ip', ['link', 'set', hostVeth, 'up']);
      const inNs = (args: string[]) => mustSh('ip', ['netns', 'exec', name, ...args]);
      await inNs(['ip', 'link', 'set', 'lo', 'up']);
      await inNs(['ip', 'link', 'set', peer, 'name', 'eth0']);
      await inNs(['ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
      await inNs(['ip', 'link', 'set', 'eth0', 'up']);
      await inNs(['ip', 'route', 'add', 'default', 'via', gatewayIp]);
      const wrapper = ['ip', 'netns', 'exec', name];
      nodes.push({
        index: i,
        name,
        ip,
        hostVeth,
        wrapper,
        exec: (args, o = {}) => sh('ip', ['netns', 'exec', name, ...args], o),
        outpost: (args, env = {}) => run(args, env, ROOT, wrapper),
        spawnAgent: (configFile, env = {}) => run(['agent', '--config', configFile], env, ROOT, wrapper),
      });
    }
  } catch (err) {
    await net.destroy();
    throw err;
  }
  return net;
}
