/**
 * prober: one agent probing 1,000 then 10,000 HTTP monitors (60 s rounds) against a loopback target.
 * Measures over whole rounds the agent's CPU and RSS, the p99 lateness of check starts (actual start
 * minus the planned start), and the latency it measures next to Prometheus' blackbox_exporter probing
 * the same target in the same run. The agent runs as installed (dist/, plain node, the unit's V8
 * flags; `--tsx 1` runs it through tsx instead, as `npm start` does).
 *
 * Then the operate_monitor phase: `--groups` (10,000) monitor groups of one record, then
 * `--opSeconds` of operate_monitor calls replacing random existing groups, `--opConcurrency` in
 * flight: requests per second, latency, controller CPU, and how long after the last call the agent
 * holds the final assignment.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import net from 'node:net';
import { TestAgent, TestController, until, sleep } from '../../test/helpers/cluster.ts';
import { numericFlags } from './lib/args.ts';
import { ProcMonitor, raisePriority, type Usage } from './lib/proc.ts';
import { figure, mb, ms, pct, percentile, printTable, progress } from './lib/report.ts';
import { profiler } from './lib/profile.ts';
import { precompile } from './lib/precompile.ts';
import { shippedArgv } from './lib/shipped.ts';

const opts = numericFlags('prober', { small: 1000, large: 10_000, rounds: 2, interval: 60, perGroup: 10, groups: 10_000, opSeconds: 20, opConcurrency: 16, nice: 10, tsx: 0, profile: 0 });
const TARGET_CPU = 50;
const TARGET_LATENESS = 100;
const TARGET_OPS = 500;
const quiet = { OUTPOST_LOG_LEVEL: 'warn' };
const BLACKBOX = ['/usr/bin/prometheus-blackbox-exporter', '/usr/bin/blackbox_exporter'].find((p) => existsSync(p));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** The target runs in its own process so its CPU is nobody's measurement. */
async function startTarget(): Promise<{ child: ChildProcess; port: number }> {
  const script = `const s = require('http').createServer((q, r) => r.end('ok')); s.listen(0, '127.0.0.1', () => console.log(s.address().port));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => child.stdout!.once('data', (d) => resolve(Number(String(d).trim()))));
  return { child, port };
}

async function startBlackbox(dir: string): Promise<{ child: ChildProcess; port: number }> {
  if (!BLACKBOX) throw new Error('prometheus-blackbox-exporter is not installed: apt-get install -y prometheus-blackbox-exporter');
  const port = await freePort();
  const cfg = join(dir, 'blackbox.yml');
  await writeFile(cfg, 'modules:\n  http_2xx:\n    prober: http\n    timeout: 3s\n    http:\n      preferred_ip_protocol: ip4\n      no_follow_redirects: true\n');
  const child = spawn(BLACKBOX, [`--config.file=${cfg}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
  await until('blackbox_exporter answering', async () => (await fetch(`http://127.0.0.1:${port}/-/healthy`)).ok, 15_000, 200);
  return { child, port };
}

/** Probes the target through blackbox_exporter every `everyMs` until stopped; collects probe_duration_seconds in ms. */
function blackboxSampler(bbPort: number, targetPort: number, everyMs = 500) {
  const samples: Array<{ total: number; connect: number; processing: number }> = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = Date.now();
      try {
        const text = await (await fetch(`http://127.0.0.1:${bbPort}/probe?module=http_2xx&target=${encodeURIComponent(`http://127.0.0.1:${targetPort}/`)}`)).text();
        const val = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN) * 1000;
        if (/^probe_success 1$/m.test(text)) samples.push({ total: val(/^probe_duration_seconds (\S+)$/m), connect: val(/^probe_http_duration_seconds\{phase="connect"\} (\S+)$/m), processing: val(/^probe_http_duration_seconds\{phase="processing"\} (\S+)$/m) });
      } catch {
        // counted as missing samples
      }
      await sleep(Math.max(0, everyMs - (Date.now() - t)));
    }
  })();
  return {
    samples,
    async stop() {
      running = false;
      await loop;
    },
  };
}

interface Phase {
  monitors: number;
  agent: Usage;
  controller: Usage;
  lateness: { samples: number; p50: number; p99: number; max: number };
  eventLoopDelay: { p99: number; max: number };
  completed: number;
  outpostMs: number[];
  outpostConnect: number[];
  blackbox: Array<{ total: number; connect: number; processing: number }>;
}

const dir = await mkdtemp(join(tmpdir(), 'outpost-bench-prober-'));
const children: ChildProcess[] = [];
let controller: TestController | undefined;
let agent: TestAgent | undefined;
let compiled: string | undefined;
try {
  const target = await startTarget();
  children.push(target.child);
  const bb = await startBlackbox(dir);
  children.push(bb.child);
  const prof = await profiler(opts.profile, 'prober');
  if (prof.dir) progress(`controller CPU profile goes to ${prof.dir}`);
  controller = await TestController.start({ config: { plugins: { prober: { apps: { bench: {}, ops: {} }, historyMinutes: 10 } } }, env: quiet, wrapper: prof.wrapper });
  agent = await TestAgent.start(controller, { name: 'bench-prober', plugins: { prober: {} }, env: quiet });
  const c = controller;
  const a = agent;
  let agentPid = a.proc.child.pid!;
  let agentRuns = 'via tsx';
  if (!opts.tsx) {
    // Same node, same config: only the command line changes to the installed one.
    compiled = await precompile();
    const shipped = await shippedArgv();
    await a.kill('SIGTERM');
    const child = spawn(process.execPath, shipped.argv(compiled, join(a.dataDir, '..', 'agent-config.json')), { env: { ...process.env, ...quiet }, stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(child);
    agentPid = child.pid!;
    agentRuns = `as installed (dist/, ${shipped.flags.join(' ')})`;
  }
  // The same priority for everything measured, Outpost and its peer alike (the machine is shared).
  for (const pid of [agentPid, c.proc.child.pid, target.child.pid, bb.child.pid]) raisePriority(pid, opts.nice);
  await until('agent is a live probe node', async () => (await c.api('GET', '/api/v1/prober/groups')).body?.probe_nodes?.some((n: any) => n.live), 60_000);

  let groupsMade = 0;
  async function grow(total: number): Promise<void> {
    const want = Math.ceil(total / opts.perGroup);
    progress(`creating monitor groups ${groupsMade + 1}..${want} (${opts.perGroup} records each)`);
    const make = async (g: number) => {
      const ids = Array.from({ length: opts.perGroup }, (_, i) => String(g * 100 + i));
      const body = new URLSearchParams({ app_name: 'bench', group_id: String(g), record_ids: ids.join(':'), ips: ids.map(() => '127.0.0.1').join(':'), port: String(target.port), path: '/', interval: String(opts.interval), timeout: '3', level: '4' });
      const r = await fetch(`${c.url}/operate_monitor`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      const j: any = await r.json();
      if (j.code !== 1000) throw new Error(`operate_monitor failed: ${JSON.stringify(j)}`);
    };
    for (let g = groupsMade + 1; g <= want; g += 20) await Promise.all(Array.from({ length: Math.min(20, want - g + 1) }, (_, i) => make(g + i)));
    groupsMade = want;
    await until(`agent assigned ${want * opts.perGroup} records`, async () => (await c.api('GET', `/api/v1/prober/nodes/${a.nodeId}`)).body?.status?.records === want * opts.perGroup, 120_000, 500);
  }

  async function phase(monitors: number): Promise<Phase> {
    await grow(monitors);
    const roundMs = opts.interval * 1000;
    // Start measuring at a round boundary, after the round's checks were planned in full.
    const start = Math.ceil((Date.now() + 2000) / roundMs) * roundMs;
    progress(`${monitors} monitors: measuring ${opts.rounds} round(s) from ${new Date(start).toISOString().slice(11, 19)}`);
    await sleep(start - Date.now() - 100);
    await c.api('POST', `/api/v1/prober/nodes/${a.nodeId}/reset-stats`);
    const agentMon = new ProcMonitor(agentPid, 1000).start();
    const ctlMon = new ProcMonitor(c.proc.child.pid!, 1000).start();
    const sampler = blackboxSampler(bb.port, target.port);
    await sleep(start + opts.rounds * roundMs - Date.now());
    const agentUsage = agentMon.stop();
    const ctlUsage = ctlMon.stop();
    await sampler.stop();
    const st = (await c.api('GET', `/api/v1/prober/nodes/${a.nodeId}`)).body.status;
    // Each round's results reach the controller and get decided a little after it ends.
    await sleep(5000);
    const groups = (await c.api('GET', '/api/v1/prober/groups')).body.groups as any[];
    const outpostMs: number[] = [];
    const outpostConnect: number[] = [];
    for (const g of groups) for (const r of g.records) for (const v of Object.values(r.nodes) as any[]) if (v.timing && v.status === 1) {
      outpostMs.push(v.timing.total);
      outpostConnect.push(v.timing.connect);
    }
    return { monitors, agent: agentUsage, controller: ctlUsage, lateness: st.lateness, eventLoopDelay: st.eventLoopDelay, completed: st.completed, outpostMs, outpostConnect, blackbox: sampler.samples };
  }

  const phases: Phase[] = [];
  for (const n of [opts.small, opts.large]) if (n > 0) phases.push(await phase(n));
  const ops = opts.groups > 0 ? await operatePhase() : undefined;

  /** operate_monitor of one group of app `ops` (group g, path p: a new path replaces the group). */
  async function operate(g: number, path: string): Promise<number> {
    const body = new URLSearchParams({ app_name: 'ops', group_id: String(g), record_ids: String(g), ips: '127.0.0.1', port: String(target.port), path, interval: String(opts.interval), timeout: '3', level: '4' });
    const t = performance.now();
    const r = await fetch(`${c.url}/operate_monitor`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    const j: any = await r.json();
    if (j.code !== 1000) throw new Error(`operate_monitor failed: ${JSON.stringify(j)}`);
    return performance.now() - t;
  }

  async function operatePhase() {
    const records = () => groupsMade * opts.perGroup + opts.groups;
    progress(`operate_monitor: creating ${opts.groups} groups of one record`);
    const t0 = Date.now();
    let next = 1;
    await Promise.all(Array.from({ length: opts.opConcurrency }, async () => {
      for (let g = next++; g <= opts.groups; g = next++) await operate(g, '/');
    }));
    const createSeconds = (Date.now() - t0) / 1000;
    progress(`operate_monitor: ${opts.groups} groups created in ${createSeconds.toFixed(1)} s; ${opts.opSeconds} s of replacing random groups next`);
    const latencies: number[] = [];
    const mon = new ProcMonitor(c.proc.child.pid!, 1000).start();
    const end = Date.now() + opts.opSeconds * 1000;
    let n = 0;
    await Promise.all(Array.from({ length: opts.opConcurrency }, async () => {
      while (Date.now() < end) latencies.push(await operate(1 + Math.floor(Math.random() * opts.groups), `/v${++n}`));
    }));
    const usage = mon.stop();
    const rate = latencies.length / opts.opSeconds;
    // A last change the agent's status shows (one more record): how long until it probes it.
    const last = Date.now();
    const body = new URLSearchParams({ app_name: 'ops', group_id: '1', record_ids: '1:0', ips: '127.0.0.1:127.0.0.1', port: String(target.port), path: '/', interval: String(opts.interval), timeout: '3', level: '4' });
    await fetch(`${c.url}/operate_monitor`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    await until(`agent assigned ${records() + 1} records`, async () => (await c.api('GET', `/api/v1/prober/nodes/${a.nodeId}`)).body?.status?.records === records() + 1, 120_000, 100);
    const settleSeconds = (Date.now() - last) / 1000;
    const groups = (await c.api('GET', '/api/v1/prober/groups')).body.groups.filter((g: any) => g.app_name === 'ops').length;
    return { createSeconds, rate, latencies, usage, settleSeconds, groups };
  }

  const rows: Array<Array<string | number>> = [];
  for (const p of phases) {
    const bbTotal = p.blackbox.map((s) => s.total);
    const bbConnect = p.blackbox.map((s) => s.connect);
    rows.push(
      [`${p.monitors} monitors`, 'agent CPU (of one core)', pct(p.agent.cpuPercent)],
      ['', 'agent RSS avg / max', `${mb(p.agent.rssAvg)} / ${mb(p.agent.rssMax)}`],
      ['', 'controller CPU / RSS max', `${pct(p.controller.cpuPercent)} / ${mb(p.controller.rssMax)}`],
      ['', 'checks started in window', `${p.lateness.samples} (${p.completed} completed)`],
      ['', 'start lateness p50 / p99 / max', `${ms(p.lateness.p50)} / ${ms(p.lateness.p99)} / ${ms(p.lateness.max)}`],
      ['', 'agent event-loop delay p99 / max', `${ms(p.eventLoopDelay.p99)} / ${ms(p.eventLoopDelay.max)}`],
      ['', 'Outpost latency p50 / p99 (total)', `${ms(percentile(p.outpostMs, 50))} / ${ms(percentile(p.outpostMs, 99))} (${p.outpostMs.length} records)`],
      ['', 'Outpost connect p50', ms(percentile(p.outpostConnect, 50))],
      ['', 'blackbox_exporter p50 / p99 (probe_duration)', `${ms(percentile(bbTotal, 50))} / ${ms(percentile(bbTotal, 99))} (${bbTotal.length} probes)`],
      ['', 'blackbox_exporter connect p50', ms(percentile(bbConnect, 50))],
    );
  }
  if (ops) {
    rows.push(
      [`${opts.groups} groups`, `created (${opts.opConcurrency} concurrent operate_monitor)`, `${opts.groups} in ${ops.createSeconds.toFixed(1)} s (${(opts.groups / ops.createSeconds).toFixed(0)}/s)`],
      ['', `operate_monitor replacing random groups, ${opts.opSeconds} s`, `${ops.rate.toFixed(0)}/s`],
      ['', 'operate_monitor latency p50 / p99 / max', `${ms(percentile(ops.latencies, 50))} / ${ms(percentile(ops.latencies, 99))} / ${ms(Math.max(...ops.latencies))}`],
      ['', 'controller CPU / RSS max meanwhile', `${pct(ops.usage.cpuPercent)} / ${mb(ops.usage.rssMax)}`],
      ['', 'agent probes a last change, after its operate_monitor', `${ops.settleSeconds.toFixed(2)} s`],
      ['', 'groups listed at the end', String(ops.groups)],
    );
  }
  rows.push(['all', 'agent runs', agentRuns]);
  rows.push(['all', 'priority of agent, controller, target, blackbox_exporter', opts.nice ? `nice -${Math.min(19, opts.nice)}` : 'unchanged']);
  printTable(`prober: ${opts.rounds} round(s) of ${opts.interval} s per size, one agent, loopback HTTP target`, rows, ['size', 'metric', 'value']);
  const parts: string[] = [];
  const big = phases.at(-1);
  if (big) {
    const verdict = big.agent.cpuPercent <= TARGET_CPU && big.lateness.p99 < TARGET_LATENESS ? 'meets' : 'MISSES';
    parts.push(`${big.monitors} monitors @ ${opts.interval} s, agent ${opts.tsx ? 'via tsx' : 'as installed'}: agent ${pct(big.agent.cpuPercent)} of one core, RSS ${mb(big.agent.rssMax)}, start lateness p99 ${ms(big.lateness.p99)}, latency p50 ${ms(percentile(big.outpostMs, 50))} vs blackbox_exporter ${ms(percentile(big.blackbox.map((s) => s.total), 50))} (${verdict} target: ≤ ${TARGET_CPU} % CPU, p99 < ${TARGET_LATENESS} ms)`);
  }
  if (ops) parts.push(`operate_monitor at ${opts.groups} groups: ${ops.rate.toFixed(0)}/s, p99 ${ms(percentile(ops.latencies, 99))} (${ops.rate >= TARGET_OPS ? 'meets' : 'MISSES'} target ≥ ${TARGET_OPS}/s)`);
  figure('prober', parts.join('; '));
} finally {
  await agent?.stop().catch(() => undefined);
  await controller?.stop().catch(() => undefined);
  for (const ch of children) ch.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
  if (compiled) await rm(dirname(compiled), { recursive: true, force: true });
}
