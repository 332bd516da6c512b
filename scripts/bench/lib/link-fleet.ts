/**
 * The simulated agent fleet of the link benchmarks (link.ts, scaleout.ts): enrollment for real through
 * POST /api/v1/enroll, worker processes (link-worker.ts) holding the links and heartbeating, and the
 * probe agents' heartbeat handling latency collected from them.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { http, sleep, until } from '../../../test/helpers/cluster.ts';
import { raisePriority } from './proc.ts';
import { progress } from './report.ts';
import type { SimAgent, WorkerCommand, WorkerEvent } from './link-worker.ts';

export interface WorkerHandle {
  child: ChildProcess;
  last: Extract<WorkerEvent, { t: 'progress' }>;
  next(t: WorkerEvent['t']): Promise<WorkerEvent>;
  send(cmd: WorkerCommand): void;
}

export function startWorker(): WorkerHandle {
  // A larger young generation: a worker playing 10,000 agents allocates a message per beat, and with
  // the default one its scavenges took a fifth of its time (at 30,000 agents: 65 % of a core for the
  // workers, their own loop delay p99 ~70 ms; with 32 MB semi-spaces 55 % and ~35 ms).
  const child = fork(join(import.meta.dirname, 'link-worker.ts'), [], { execArgv: ['--max-semi-space-size=32', '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiters: Array<{ t: string; resolve(e: WorkerEvent): void }> = [];
  const h: WorkerHandle = {
    child,
    last: { t: 'progress', connected: 0, failed: 0, closed: 0, helloRetries: 0, errors: [] },
    next: (t) => new Promise((resolve) => waiters.push({ t, resolve })),
    send: (cmd) => child.send(cmd),
  };
  child.on('message', (e: WorkerEvent) => {
    if (e.t === 'progress') h.last = e;
    const i = waiters.findIndex((w) => w.t === e.t);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(e);
  });
  return h;
}

export const sum = (ws: WorkerHandle[], k: 'connected' | 'failed' | 'closed' | 'helloRetries') => ws.reduce((a, w) => a + w.last[k], 0);

export interface EnrollResult {
  agents: SimAgent[];
  seconds: number;
  /** Latency of each enrollment, ms. */
  lat: number[];
  /** Enrollments refused with "retry" (a write that raced another controller's) and tried again. */
  conflicts: number;
}

/**
 * Enrolls n agents, `concurrency` requests in flight, request i to urls[i % urls.length] with
 * tokens[i % tokens.length] (every controller of a cluster accepts every token and its credentials
 * are valid on all). Marks `probes` of them, evenly spread, as probe agents.
 */
export async function enrollAll(urls: string[], tokens: string[], n: number, opts: { concurrency: number; probes: number; prefix?: string; lanes?: number }): Promise<EnrollResult> {
  const agents: SimAgent[] = new Array(n);
  const lat: number[] = [];
  const t0 = performance.now();
  let next = 0;
  let done = 0;
  let conflicts = 0;
  await Promise.all(Array.from({ length: opts.concurrency }, async () => {
    for (let i = next++; i < n; i = next++) {
      const t = performance.now();
      const enroll = () => http('POST', `${urls[i % urls.length]}/api/v1/enroll`, { body: { token: tokens[i % tokens.length], name: `${opts.prefix ?? 'sim'}-${i}`, address: '127.0.0.1' } });
      let r = await enroll();
      // Controllers sharing a store refuse a write that raced another controller's, saying "retry": a client would.
      for (let attempt = 1; r.status !== 201 && /retry$/.test(r.body?.error?.message ?? '') && attempt <= 20; attempt++) {
        conflicts++;
        await sleep(Math.random() * 20 * attempt);
        r = await enroll();
      }
      if (r.status !== 201) throw new Error(`enrollment ${i} failed: HTTP ${r.status} ${r.text}`);
      lat.push(performance.now() - t);
      agents[i] = { nodeId: r.body.nodeId, credential: r.body.credential, probe: false };
      if (++done % 1000 === 0) progress(`enrolled ${done}/${n}`);
    }
  }));
  markProbes(agents, opts.probes, opts.lanes ?? 1);
  return { agents, seconds: (performance.now() - t0) / 1000, lat, conflicts };
}

/**
 * Marks `probes` agents, evenly spread, as probe agents, each lane getting its share: agent j goes to
 * lane j % lanes (connectAll's workers), and an even stride alone may land every probe in one lane.
 */
export function markProbes(agents: SimAgent[], probes: number, lanes: number): void {
  const n = agents.length;
  const count = Math.min(probes, n);
  for (const a of agents) a.probe = false;
  for (let i = 0; i < count; i++) {
    const j = Math.floor((i * n) / count);
    const k = j - (j % lanes) + (i % lanes);
    agents[k < n ? k : j].probe = true;
  }
}

/**
 * Runs the agents through `workers` processes; worker i links its agents (every workers-th one) to
 * urls[i % urls.length]. With `probeWorkers`, the probe agents go to processes of their own instead,
 * one per url, linked where they would have been: a worker playing thousands of agents has an event
 * loop delay of tens of milliseconds on a busy machine, which a probe's timing would otherwise
 * include. Resolves once every agent is connected (or failed); `probes` are the workers holding the
 * probe agents (all of them without `probeWorkers`), probe worker u linked to urls[u].
 */
export async function connectAll(urls: string[], agents: SimAgent[], opts: { workers: number; connectConcurrency: number; nice: number; hbMs: number; welcomeTimeoutMs?: number; probeWorkers?: boolean }): Promise<{ workers: WorkerHandle[]; probes: WorkerHandle[]; seconds: number }> {
  const lanes = Math.max(1, opts.workers);
  const bulk = Array.from({ length: lanes }, startWorker);
  const probeLanes = opts.probeWorkers ? urls.map(() => startWorker()) : [];
  const workers = [...bulk, ...probeLanes];
  for (const w of workers) raisePriority(w.child.pid, opts.nice);
  const t0 = performance.now();
  const start = (w: WorkerHandle, url: string, mine: SimAgent[], share: number) =>
    w.send({ t: 'start', url, agents: mine, hbMs: opts.hbMs, welcomeTimeoutMs: opts.welcomeTimeoutMs, connectConcurrency: Math.max(1, Math.ceil(opts.connectConcurrency * share)) });
  const apart = (a: SimAgent) => opts.probeWorkers === true && a.probe;
  bulk.forEach((w, i) => start(w, urls[i % urls.length], agents.filter((a, j) => j % lanes === i && !apart(a)), 1 / lanes));
  probeLanes.forEach((w, u) => start(w, urls[u], agents.filter((a, j) => apart(a) && (j % lanes) % urls.length === u), 1 / lanes));
  let lastLog = 0;
  await until(
    'all simulated agents connected',
    () => {
      const done = sum(workers, 'connected') + sum(workers, 'failed');
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        progress(`connected ${sum(workers, 'connected')}/${agents.length}, failed ${sum(workers, 'failed')}`);
      }
      return done >= agents.length;
    },
    Math.max(300_000, agents.length * 100),
    200,
  );
  const failed = sum(workers, 'failed');
  if (failed) progress(`${failed} agents failed to connect: ${workers.flatMap((w) => w.last.errors).slice(0, 5).join('; ')}`);
  return { workers, probes: opts.probeWorkers ? probeLanes : bulk, seconds: (performance.now() - t0) / 1000 };
}

export interface Latency {
  rtts: number[];
  sentAt: number[];
  late: number;
  /** The worker's own event-loop delay over the same time, ms. */
  loopP99Ms: number;
  loopMaxMs: number;
}

/** Latency of every probe since the last collection, per worker: heartbeat sent → ack of the report queued behind it. */
export async function collectLatencyPerWorker(workers: WorkerHandle[]): Promise<Latency[]> {
  return Promise.all(workers.map(async (w) => {
    const p = w.next('latency');
    w.send({ t: 'collect' });
    const e = (await p) as Extract<WorkerEvent, { t: 'latency' }>;
    return { rtts: e.rtts, sentAt: e.sentAt, late: e.late, loopP99Ms: e.loopP99Ms, loopMaxMs: e.loopMaxMs };
  }));
}

export async function collectLatency(workers: WorkerHandle[]): Promise<Latency> {
  const parts = await collectLatencyPerWorker(workers);
  return { rtts: parts.flatMap((p) => p.rtts), sentAt: parts.flatMap((p) => p.sentAt), late: parts.reduce((a, p) => a + p.late, 0), loopP99Ms: Math.max(0, ...parts.map((p) => p.loopP99Ms)), loopMaxMs: Math.max(0, ...parts.map((p) => p.loopMaxMs)) };
}

export function stopWorkers(workers: WorkerHandle[]): void {
  for (const w of workers) if (w.child.connected) w.send({ t: 'stop' });
}
