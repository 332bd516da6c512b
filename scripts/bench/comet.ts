/**
 * comet, in one run (`--target all`, the default) or one part at a time:
 *
 * --target gateway: room fan-out from one gateway process to N WebSocket clients, side by side with
 * a `ws` broadcast server and a bare uWebSockets.js pub/sub server (lib/comet-*-peer.ts): same push
 * stream (--rate pushes/s generated inside each server process), same message (goim's benchmark
 * body plus a send time), same clients (raw-socket clients in separate worker processes,
 * lib/comet-client-worker.ts). The gateway runs twice: its default room batch window (5 ms) and the
 * longest allowed (50 ms). Figures: messages delivered per second, server CPU from /proc, messages
 * per second per core (= delivered / CPU share), latency from push to client (sampled), and the
 * gateway's memory per idle connection at N and at --idle connections (capped by the open-files
 * limit, with the projection to 50,000 printed).
 *
 * --target outpost: the plugin as deployed, a controller and two agents (lib/comet-outpost.ts): key
 * push end to end at --pushRate/s against a bare uWS HTTP → WebSocket peer, count convergence, the
 * agent's memory with --conns and --idle idle connections.
 */
import { execFileSync } from 'node:child_process';
import { numericFlags } from './lib/args.ts';
import { profiler } from './lib/profile.ts';
import { measure, raisePriority, readProc } from './lib/proc.ts';
import { figure, mb, ms, pct, percentile, printTable, progress } from './lib/report.ts';
import { FD_WANTED, isProgress, isReport, startServer, startWorker, type ServerProc, type WorkerProc } from './lib/comet-procs.ts';
import type { ServerEvent } from './lib/comet-bench-ipc.ts';
import { outpostTarget, type OutpostResult } from './lib/comet-outpost.ts';

const argv = process.argv.slice(2);
const ti = argv.indexOf('--target');
const target = ti >= 0 ? argv.splice(ti, 2)[1] : 'all';
const opts = numericFlags('comet', { conns: 10_000, seconds: 10, warmup: 3, rate: 100, workers: 2, idle: 50_000, concurrency: 200, nice: 10, repeat: 1, profile: 0, keys: 200, pushRate: 1000, trials: 5 }, argv);
if (!['gateway', 'outpost', 'all'].includes(target)) {
  process.stderr.write(`bench comet: --target must be gateway, outpost or all, got "${target}"\n`);
  process.exit(2);
}
const prof = await profiler(opts.profile, 'comet');
const batchConfig = (ms: number) => ({ COMET_BENCH_CONFIG: JSON.stringify({ delivery: { roomBatchMs: ms } }) });
const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;

/** The gateway twice: its default room batch window, and the longest the config allows (goim's job waits up to 1 s). */
const SERVERS: Array<{ name: string; file: string; env: Record<string, string>; outpost: boolean }> = [
  { name: 'outpost gateway (default, 5 ms batches)', file: 'comet-gateway-server.ts', env: {}, outpost: true },
  { name: 'outpost gateway (50 ms batches)', file: 'comet-gateway-server.ts', env: batchConfig(50), outpost: true },
  { name: 'peer: ws', file: 'comet-ws-peer.ts', env: {}, outpost: false },
  { name: 'peer: bare uWS', file: 'comet-uws-peer.ts', env: {}, outpost: false },
];

interface Run {
  name: string;
  /** Messages the pushes issued in the window were for (pushes × clients). */
  asked: number;
  /** Dropped by the server for clients over its send limit; undefined where the server cannot tell. */
  dropped: number | undefined;
  connected: number;
  failed: number;
  delivered: number;
  perSecond: number;
  cpu: number;
  perCore: number;
  clientCpu: number;
  latencies: number[];
  bad: number;
  rssIdle: number;
  rssConns: number;
  rssBusy: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function connectClients(server: ServerProc, conns: number): Promise<{ workers: WorkerProc[]; connected: number; failed: number; seconds: number }> {
  const n = Math.max(1, opts.workers);
  const workers = Array.from({ length: n }, startWorker);
  for (const w of workers) raisePriority(w.child.pid, opts.nice);
  const t0 = performance.now();
  const per = Math.ceil(conns / n);
  const done = workers.map((w, i) => {
    const count = Math.min(per, conns - i * per);
    w.send({ t: 'connect', port: server.port, conns: count, firstId: 1 + i * per, concurrency: Math.ceil(opts.concurrency / n), localAddresses: 8 });
    return w.next((e): e is Extract<typeof e, { t: 'progress' }> => isProgress(e) && e.connected + e.failed >= count);
  });
  const ticker = setInterval(() => progress(`  connected ${workers.reduce((a, w) => a + (w.last && isProgress(w.last) ? w.last.connected : 0), 0)}/${conns}`), 5000);
  const final = await Promise.all(done);
  clearInterval(ticker);
  const failed = final.reduce((a, e) => a + e.failed, 0);
  if (failed) progress(`  ${failed} clients failed: ${final.flatMap((e) => e.errors).slice(0, 3).join('; ')}`);
  return { workers, connected: final.reduce((a, e) => a + e.connected, 0), failed, seconds: (performance.now() - t0) / 1000 };
}

async function report(workers: WorkerProc[]): Promise<{ received: number; bad: number; latencies: number[] }> {
  const parts = await Promise.all(workers.map((w) => {
    const p = w.next(isReport);
    w.send({ t: 'report' });
    return p;
  }));
  return { received: parts.reduce((a, p) => a + p.received, 0), bad: parts.reduce((a, p) => a + p.bad, 0), latencies: parts.flatMap((p) => p.latenciesMs) };
}

async function serverStats(server: ServerProc): Promise<Extract<ServerEvent, { t: 'stats' }>> {
  const p = server.next((e): e is Extract<ServerEvent, { t: 'stats' }> => e.t === 'stats');
  server.send({ t: 'stats' });
  return p;
}

async function gc(server: ServerProc): Promise<void> {
  const p = server.next((e): e is { t: 'gc-done' } => e.t === 'gc-done');
  server.send({ t: 'gc' });
  await p;
}

async function fanOut(spec: (typeof SERVERS)[number]): Promise<Run> {
  progress(`${spec.name}: starting`);
  const gateway = spec.outpost;
  const server = await startServer(spec.file, spec.env, gateway && prof.dir ? ['--cpu-prof', `--cpu-prof-dir=${prof.dir}`] : []);
  const pid = server.child.pid!;
  raisePriority(pid, opts.nice);
  let workers: WorkerProc[] = [];
  try {
    await sleep(1000);
    await gc(server);
    const rssIdle = readProc(pid).rssBytes;
    const conn = await connectClients(server, opts.conns);
    workers = conn.workers;
    progress(`${spec.name}: ${conn.connected} clients in ${conn.seconds.toFixed(1)} s; pushing ${opts.rate}/s to the room`);
    await sleep(1000);
    await gc(server);
    const rssConns = readProc(pid).rssBytes;
    server.send({ t: 'push', rate: opts.rate });
    await sleep(opts.warmup * 1000);
    const statsBefore = await serverStats(server);
    const before = await report(workers);
    const pids: Record<string, number> = { server: pid };
    workers.forEach((w, i) => (pids[`w${i}`] = w.child.pid!));
    const u = await measure(pids, opts.seconds, 500);
    const after = await report(workers);
    const statsAfter = await serverStats(server);
    server.send({ t: 'stop-push' });
    const delivered = after.received - before.received;
    const seconds = u.server.seconds;
    const perSecond = delivered / seconds;
    const cpu = u.server.cpuPercent;
    return {
      name: spec.name,
      asked: (statsAfter.pushes - statsBefore.pushes) * conn.connected,
      dropped: statsAfter.dropped === undefined ? undefined : statsAfter.dropped - (statsBefore.dropped ?? 0),
      connected: conn.connected,
      failed: conn.failed,
      delivered,
      perSecond,
      cpu,
      perCore: cpu > 0 ? perSecond / (cpu / 100) : 0,
      clientCpu: workers.reduce((a, _, i) => a + u[`w${i}`].cpuPercent, 0),
      latencies: after.latencies,
      bad: after.bad,
      rssIdle,
      rssConns,
      rssBusy: u.server.rssMax,
    };
  } finally {
    for (const w of workers) w.stop();
    // A clean exit lets --cpu-prof write its profile.
    if (gateway && prof.dir) {
      server.send({ t: 'exit' });
      await sleep(3000);
    }
    server.stop();
    await sleep(1000);
  }
}

/** The gateway alone with `n` idle authenticated clients: RSS and memory per connection. */
async function idleMemory(n: number): Promise<{ connected: number; failed: number; rssIdle: number; rss: number; perConn: number }> {
  progress(`outpost gateway: ${n} idle connections`);
  const server = await startServer('comet-gateway-server.ts');
  const pid = server.child.pid!;
  let workers: WorkerProc[] = [];
  try {
    await sleep(1000);
    await gc(server);
    const rssIdle = readProc(pid).rssBytes;
    const conn = await connectClients(server, n);
    workers = conn.workers;
    await sleep(2000);
    await gc(server);
    const rss = readProc(pid).rssBytes;
    return { connected: conn.connected, failed: conn.failed, rssIdle, rss, perConn: conn.connected ? (rss - rssIdle) / conn.connected : 0 };
  } finally {
    for (const w of workers) w.stop();
    server.stop();
    await sleep(1000);
  }
}

async function gatewayTarget(): Promise<string> {
  // --repeat N: the servers take turns N times (so load that comes and goes hits each alike); each column
  // shows its median run by messages per core.
  const tries: Run[][] = SERVERS.map(() => []);
  for (let i = 0; i < Math.max(1, opts.repeat); i++) for (const [j, s] of SERVERS.entries()) tries[j].push(await fanOut(s));
  const runs = tries.map((t) => [...t].sort((a, b) => a.perCore - b.perCore)[Math.floor((t.length - 1) / 2)]);
  const [gw, gw50, wsPeer, uwsPeer] = runs;
  if (prof.dir) progress(`gateway CPU profile in ${prof.dir}`);
  printTable(
    `comet fan-out: ${opts.conns} WebSocket clients in one room, ${opts.rate} pushes/s (${(opts.conns * opts.rate).toLocaleString('en')} messages/s asked), ${opts.seconds} s window, CPU = % of one core${opts.repeat > 1 ? `, median of ${opts.repeat} runs each` : ''}`,
    [
      ['clients connected / failed', ...runs.map((r) => `${r.connected} / ${r.failed}`)],
      ['messages pushed in the window / delivered', ...runs.map((r) => `${r.asked.toLocaleString('en')} / ${r.delivered.toLocaleString('en')}`)],
      ['dropped by the server (client over its send limit)', ...runs.map((r) => (r.dropped === undefined ? 'not counted (uWS skips silently)' : r.dropped.toLocaleString('en')))],
      ['messages delivered / s', ...runs.map((r) => Math.round(r.perSecond).toLocaleString('en'))],
      ['server CPU', ...runs.map((r) => pct(r.cpu))],
      ['messages / s per core', ...runs.map((r) => Math.round(r.perCore).toLocaleString('en'))],
      ['push → client latency p50 / p99', ...runs.map((r) => `${ms(percentile(r.latencies, 50))} / ${ms(percentile(r.latencies, 99))}`)],
      ['latency samples', ...runs.map((r) => String(r.latencies.length))],
      ['malformed messages seen', ...runs.map((r) => String(r.bad))],
      ['server RSS: empty / with clients / busy max', ...runs.map((r) => `${mb(r.rssIdle)} / ${mb(r.rssConns)} / ${mb(r.rssBusy)}`)],
      ['memory per idle connection', ...runs.map((r) => kb((r.rssConns - r.rssIdle) / Math.max(1, r.connected)))],
      ['client workers CPU (sum)', ...runs.map((r) => pct(r.clientCpu))],
      ...(opts.repeat > 1 ? [['messages / s per core, every run', ...tries.map((t) => t.map((r) => `${(r.perCore / 1e6).toFixed(2)} M`).join(', '))]] : []),
    ],
    ['metric', ...runs.map((r) => r.name)],
  );

  // One process holds one descriptor per connection: past the hard open-files limit it cannot accept more,
  // and only a process with CAP_SYS_RESOURCE may raise that limit.
  const fdLimit = Number(execFileSync('/bin/sh', ['-c', `ulimit -Hn ${FD_WANTED} 2>/dev/null; ulimit -Hn`], { encoding: 'utf8' }).trim()) || 0;
  const idleTarget = fdLimit > 0 && opts.idle > fdLimit - 500 ? fdLimit - 500 : opts.idle;
  if (idleTarget < opts.idle) progress(`${opts.idle} connections need an open-files hard limit above ${opts.idle}; this machine allows ${fdLimit} per process and raising it needs CAP_SYS_RESOURCE: measuring ${idleTarget}`);
  const idle = idleTarget > 0 ? await idleMemory(idleTarget) : undefined;
  if (idle) {
    printTable(`outpost gateway memory, idle authenticated connections (open-files wanted ${FD_WANTED})`, [
      ['connected / failed', `${idle.connected} / ${idle.failed}`],
      ['RSS empty → with connections', `${mb(idle.rssIdle)} → ${mb(idle.rss)}`],
      ['memory per idle connection', kb(idle.perConn)],
      ['projected RSS at 50,000 (empty + 50,000 × per connection)', mb(idle.rssIdle + 50_000 * idle.perConn)],
      ['open-files hard limit per process', idleTarget < opts.idle ? `${fdLimit} (asked for ${opts.idle} connections)` : String(fdLimit)],
    ]);
  }
  const ratio = (a: Run, b: Run) => (b.perCore > 0 ? (a.perCore / b.perCore).toFixed(2) : 'n/a');
  return `${(gw.perCore / 1e6).toFixed(2)} M messages/s per core to ${gw.connected} connections at ${opts.rate} pushes/s (${ratio(gw, wsPeer)}× ws, ${ratio(gw, uwsPeer)}× bare uWS; 50 ms batches ${(gw50.perCore / 1e6).toFixed(2)} M, ${ratio(gw50, uwsPeer)}× bare uWS), p99 push→client ${ms(percentile(gw.latencies, 99))}, ${kb((gw.rssConns - gw.rssIdle) / Math.max(1, gw.connected))}/idle connection at ${gw.connected}${idle ? `, ${kb(idle.perConn)} at ${idle.connected} (RSS ${mb(idle.rss)}${idle.connected < 50_000 ? `, ${mb(idle.rssIdle + 50_000 * idle.perConn)} projected at 50,000` : ''})` : ''}`;
}

/** The outpost target's tables; its part of the closing line. */
async function outpostTargetFigures(): Promise<string> {
  const r = await outpostTarget({ keys: opts.keys, pushRate: opts.pushRate, seconds: opts.seconds, warmup: opts.warmup, idle: opts.conns, idleMax: opts.idle, trials: opts.trials, workers: opts.workers, concurrency: opts.concurrency, nice: opts.nice });
  const q = (xs: number[], n: number) => ms(percentile(xs, n));
  printTable(
    `comet end to end: key pushes at ${opts.pushRate}/s to ${opts.keys} clients on two agents, HTTP request → frame at the client, every message timed (${opts.seconds} s window)`,
    r.latency.map((l) => [l.name, `${l.push.ok} / ${l.push.sent}${l.push.failed ? ` (${l.push.failed} failed: ${l.push.errors[0]})` : ''}`, l.received, q(l.latencies, 50), q(l.latencies, 99), q(l.latencies, 100), q(l.push.answerMs, 99)]),
    ['path', 'HTTP ok / sent', 'frames received', 'p50', 'p99', 'max', 'HTTP answer p99'],
  );
  printTable(`comet count convergence at the default config (feedIntervalMs 250, onlineRefreshMs 1000): op 3 on agent a after 3 clients join / leave the room on agent b, ${opts.trials} trials`, [
    ['join', q(r.joinMs, 50), q(r.joinMs, 100)],
    ['leave', q(r.leaveMs, 50), q(r.leaveMs, 100)],
  ], ['change', 'median', 'max']);
  const per = (m: OutpostResult['memory'][number]) => ({ agent: (m.agentRss - r.agentRssEmpty) / Math.max(1, m.conns), controller: (m.controllerRss - r.controllerRssEmpty) / Math.max(1, m.conns) });
  printTable(
    `comet memory with idle connections on agent b (an agent under tsx; open-files hard limit ${r.fdLimit})`,
    [['empty', '0', mb(r.agentRssEmpty), '–', mb(r.controllerRssEmpty), '–'], ...r.memory.map((m) => [`${m.conns.toLocaleString('en')} idle`, String(m.failed), mb(m.agentRss), kb(per(m).agent), mb(m.controllerRss), kb(per(m).controller)])],
    ['connections', 'failed', 'agent RSS', 'agent per connection', 'controller RSS', 'controller per connection'],
  );
  const [outpost, peer] = r.latency;
  const most = r.memory.at(-1);
  const capped = most && most.conns < r.asked ? ` (${r.asked.toLocaleString('en')} needs an open-files limit this machine does not allow: ${r.fdLimit})` : '';
  const mem = r.memory.map((m) => `agent RSS ${mb(m.agentRss)} at ${m.conns.toLocaleString('en')} (${kb(per(m).agent)}/connection)`).join(', ') + capped;
  const met = percentile(outpost.latencies, 99) <= 5 ? 'met' : 'NOT met';
  return `key push end to end at ${opts.pushRate}/s p50 ${q(outpost.latencies, 50)} p99 ${q(outpost.latencies, 99)} (target p99 <= 5 ms: ${met}; bare uWS HTTP→WS peer p99 ${q(peer.latencies, 99)}), counts converge in ${q([...r.joinMs, ...r.leaveMs], 100)} at most, ${mem || 'no idle connections measured'}`;
}

const parts: string[] = [];
if (target !== 'outpost') parts.push(await gatewayTarget());
if (target !== 'gateway') parts.push(await outpostTargetFigures());
figure('comet', parts.join('; '));
