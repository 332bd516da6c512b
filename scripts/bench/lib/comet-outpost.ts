/**
 * comet --target outpost: the plugin as deployed, a real controller and two real agents (CLI
 * processes, the real link), comet on both with its default config.
 *
 * 1. Key push end to end: goim's `POST /goim/push/keys` to the controller at --pushRate/s, each to
 *    one of --keys clients spread over both agents; latency from the HTTP request's send time to the
 *    frame at the client (CLOCK_MONOTONIC stamps in the body, every message sampled). Peer in the
 *    same run: the same requests and clients on one bare uWS process serving both the HTTP route and
 *    `/sub` (lib/comet-e2e-peer.ts): the floor without controller, link and agent.
 * 2. Count convergence: a client on agent a heartbeats while three clients join (then leave) its room
 *    on agent b; the time until op 3 carries the new count.
 * 3. Memory: agent b's RSS empty, with --idle idle connections, and with --idleMax when the open-files
 *    limit allows; per connection on the agent and on the controller (its routing tables). The key
 *    push window runs again with the --idle connections held.
 */
import { execFileSync } from 'node:child_process';
import { TestAgent, TestController, until } from '../../../test/helpers/cluster.ts';
import { WsClient } from '../../../test/comet-fixtures.ts';
import { pushKeysAt, type PushRun } from './comet-http-pusher.ts';
import { FD_WANTED, isProgress, isReport, startServer, startWorker, type ServerProc, type WorkerProc } from './comet-procs.ts';
import { raisePriority, readProc } from './proc.ts';
import { progress } from './report.ts';

export interface OutpostOptions {
  keys: number;
  pushRate: number;
  seconds: number;
  warmup: number;
  idle: number;
  idleMax: number;
  trials: number;
  workers: number;
  concurrency: number;
  nice: number;
}

export interface LatencyRun {
  name: string;
  push: PushRun;
  received: number;
  latencies: number[];
}

export interface OutpostResult {
  latency: LatencyRun[];
  joinMs: number[];
  leaveMs: number[];
  memory: Array<{ conns: number; failed: number; agentRss: number; controllerRss: number }>;
  agentRssEmpty: number;
  controllerRssEmpty: number;
  fdLimit: number;
  /** The most idle connections asked for (--idle), whether or not this machine allowed them. */
  asked: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Agents hold one descriptor per connection: raise their open-files limit as far as this machine allows. */
const ULIMIT_WRAPPER = ['/bin/sh', '-c', `ulimit -Hn ${FD_WANTED} 2>/dev/null; ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`];

function hardFdLimit(): number {
  return Number(execFileSync('/bin/sh', ['-c', `ulimit -Hn ${FD_WANTED} 2>/dev/null; ulimit -Hn`], { encoding: 'utf8' }).trim()) || 0;
}

/** What each worker was asked for and had settled so far (its progress counts are cumulative). */
const tally = new WeakMap<WorkerProc, { issued: number; connected: number; failed: number }>();

/** Clients from worker processes: `count` more, keys `<prefix><id>` when a prefix is given. */
async function connect(workers: WorkerProc[], port: number, count: number, firstId: number, o: OutpostOptions, extra: { keyPrefix?: string; sampleEvery?: number }): Promise<{ connected: number; failed: number }> {
  const per = Math.ceil(count / workers.length);
  const done = workers.map(async (w, i) => {
    const n = Math.max(0, Math.min(per, count - i * per));
    const t = tally.get(w) ?? { issued: 0, connected: 0, failed: 0 };
    tally.set(w, t);
    if (n === 0) return { connected: 0, failed: 0 };
    t.issued += n;
    w.send({ t: 'connect', port, conns: n, firstId: firstId + i * per, concurrency: Math.ceil(o.concurrency / workers.length), localAddresses: 8, ...extra });
    const e = await w.next((x): x is Extract<typeof x, { t: 'progress' }> => isProgress(x) && x.connected + x.failed >= t.issued);
    const r = { connected: e.connected - t.connected, failed: e.failed - t.failed };
    t.connected = e.connected;
    t.failed = e.failed;
    return r;
  });
  const r = await Promise.all(done);
  return { connected: r.reduce((a, x) => a + x.connected, 0), failed: r.reduce((a, x) => a + x.failed, 0) };
}

async function report(workers: WorkerProc[]): Promise<{ received: number; latencies: number[] }> {
  const parts = await Promise.all(
    workers.map((w) => {
      const p = w.next(isReport);
      w.send({ t: 'report' });
      return p;
    }),
  );
  return { received: parts.reduce((a, p) => a + p.received, 0), latencies: parts.flatMap((p) => p.latenciesMs) };
}

/** One window of key pushes at the rate: warm up, then measure what arrived and how late. */
async function keyPushWindow(name: string, base: string, token: string | undefined, workers: WorkerProc[], keys: number, o: OutpostOptions): Promise<LatencyRun> {
  const keyFor = (i: number) => `k-${1 + (i % keys)}`;
  progress(`${name}: key pushes at ${o.pushRate}/s (${o.warmup} s warm-up, ${o.seconds} s measured)`);
  await pushKeysAt(base, token, o.pushRate, o.warmup, keyFor);
  await sleep(500);
  const before = await report(workers);
  const push = await pushKeysAt(base, token, o.pushRate, o.seconds, keyFor);
  await sleep(1000);
  const after = await report(workers);
  return { name, push, received: after.received - before.received, latencies: after.latencies };
}

/** How long until a client's op 3 on one node carries a count that changed on another. */
async function convergence(watcher: WsClient, joinUrl: string, trials: number): Promise<{ joinMs: number[]; leaveMs: number[] }> {
  const op3 = async (): Promise<number> => {
    const n = watcher.frames.length;
    watcher.heartbeat();
    await watcher.until('op 3', () => watcher.frames.slice(n).some((f) => f.op === 3));
    return watcher.frames.slice(n).find((f) => f.op === 3)!.body.readInt32BE(0);
  };
  const waitFor = async (count: number, t0: number): Promise<number> => {
    for (;;) {
      if ((await op3()) === count) return performance.now() - t0;
      if (performance.now() - t0 > 30_000) throw new Error(`op 3 never said ${count}`);
      await sleep(10);
    }
  };
  const joinMs: number[] = [];
  const leaveMs: number[] = [];
  await waitFor(1, performance.now());
  for (let i = 0; i < trials; i++) {
    const joiners = await Promise.all([0, 1, 2].map((j) => WsClient.authed(joinUrl, { mid: 900 + j, room_id: 'conv://1', accepts: [] }, { autoHeartbeat: false })));
    joinMs.push(await waitFor(4, performance.now()));
    const t0 = performance.now();
    for (const j of joiners) j.close();
    leaveMs.push(await waitFor(1, t0));
  }
  return { joinMs, leaveMs };
}

export async function outpostTarget(o: OutpostOptions): Promise<OutpostResult> {
  const fdLimit = hardFdLimit();
  progress('outpost: a controller and two agents (comet on both, default config)');
  const c = await TestController.start({ config: { plugins: { comet: {} } }, env: { OUTPOST_LOG_LEVEL: 'warn' } });
  const agents: TestAgent[] = [];
  const workers: WorkerProc[] = [];
  const peerWorkers: WorkerProc[] = [];
  let peer: ServerProc | undefined;
  let watcher: WsClient | undefined;
  try {
    for (const name of ['a', 'b']) agents.push(await TestAgent.start(c, { name, plugins: { comet: { ws: { port: 0 }, tcp: { port: 0 } } }, wrapper: ULIMIT_WRAPPER, env: { OUTPOST_LOG_LEVEL: 'warn' } }));
    // The pushing (this process) and every process on the path get the same priority as the peer's.
    for (const pid of [process.pid, c.proc.child.pid, ...agents.map((a) => a.proc.child.pid)]) raisePriority(pid, o.nice);
    const instances = await until('both gateways listed', async () => {
      const r = await c.api('GET', '/goim/nodes/instances');
      return r.body?.data?.length === 2 ? (r.body.data as Array<{ hostname: string; addrs: string[] }>) : undefined;
    }, 60_000);
    const wsOf = (name: string) => instances.find((i) => i.hostname === name)!.addrs.find((a) => a.startsWith('ws://'))!;
    const portOf = (name: string) => Number(new URL(wsOf(name)).port);
    const b = agents[1];

    // 1. Key pushes end to end, then the peer.
    for (let i = 0; i < Math.max(1, o.workers); i++) workers.push(startWorker());
    for (const w of workers) raisePriority(w.child.pid, o.nice);
    const half = Math.ceil(o.keys / 2);
    // Odd keys on agent a, even on b (the worker's ids are 1-based): every other push crosses to each agent.
    await connect(workers, portOf('a'), half, 1, o, { keyPrefix: 'k-', sampleEvery: 1 });
    await connect(workers, portOf('b'), o.keys - half, 1 + half, o, { keyPrefix: 'k-', sampleEvery: 1 });
    await until(`${o.keys} keys routed`, async () => (await c.api('GET', '/goim/online/total')).body?.data?.conn_count === o.keys, 30_000);
    const latency: LatencyRun[] = [await keyPushWindow('outpost: controller → link → agent', c.url, c.adminToken, workers, o.keys, o)];

    peer = await startServer('comet-e2e-peer.ts');
    raisePriority(peer.child.pid, o.nice);
    for (let i = 0; i < Math.max(1, o.workers); i++) peerWorkers.push(startWorker());
    for (const w of peerWorkers) raisePriority(w.child.pid, o.nice);
    await connect(peerWorkers, peer.port, o.keys, 1, o, { keyPrefix: 'k-', sampleEvery: 1 });
    latency.push(await keyPushWindow('peer: bare uWS HTTP → WebSocket, one process', `http://127.0.0.1:${peer.port}`, undefined, peerWorkers, o.keys, o));
    for (const w of peerWorkers.splice(0)) w.stop();
    peer.stop();
    peer = undefined;

    // 2. Count convergence at the default feed and refresh intervals.
    progress(`outpost: count convergence, ${o.trials} joins and leaves`);
    watcher = await WsClient.authed(wsOf('a'), { mid: 899, room_id: 'conv://1', accepts: [] }, { autoHeartbeat: false });
    const { joinMs, leaveMs } = await convergence(watcher, wsOf('b'), o.trials);

    // 3. Memory with idle connections on agent b.
    await sleep(2000);
    const agentRssEmpty = readProc(b.proc.child.pid!).rssBytes;
    const controllerRssEmpty = readProc(c.proc.child.pid!).rssBytes;
    const memory: OutpostResult['memory'] = [];
    let held = 0;
    // One descriptor per connection in the agent: past its open-files limit it cannot accept more.
    const cap = fdLimit - o.keys - 500;
    const targets = [...new Set([o.idle, o.idleMax].filter((n) => n > 0).map((n) => Math.min(n, cap)))].sort((x, y) => x - y);
    if (o.idleMax > cap) progress(`outpost: ${o.idleMax} connections need an open-files limit above ${o.idleMax + o.keys + 500}; this machine allows ${fdLimit} per process (raising it needs CAP_SYS_RESOURCE): measuring ${cap}`);
    for (const target of targets) {
      progress(`outpost: ${target - held} more idle connections to agent b (${target} held)`);
      const r = await connect(workers, portOf('b'), target - held, 100_000 + held, o, {});
      held += r.connected;
      await until(`${held} idle connections routed`, async () => (await c.api('GET', '/goim/online/total')).body?.data?.conn_count >= o.keys + held, 120_000, 500);
      await sleep(3000);
      memory.push({ conns: held, failed: r.failed, agentRss: readProc(b.proc.child.pid!).rssBytes, controllerRss: readProc(c.proc.child.pid!).rssBytes });
      if (target === o.idle) latency.push(await keyPushWindow(`outpost, ${held} idle connections held on agent b`, c.url, c.adminToken, workers, o.keys, o));
    }
    return { latency, joinMs, leaveMs, memory, agentRssEmpty, controllerRssEmpty, fdLimit, asked: o.idleMax };
  } finally {
    watcher?.close();
    for (const w of [...workers, ...peerWorkers]) w.stop();
    peer?.stop();
    for (const x of agents) await x.stop();
    await c.stop();
  }
}
