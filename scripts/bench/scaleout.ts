/**
 * scaleout (issue 14): several real controller processes on one PostgreSQL (a throwaway cluster,
 * test/e2e/lib/postgres.ts, fsync on), N simulated agents enrolled for real and spread evenly over
 * them (worker i links its agents to controller i % controllers), heartbeats every 2 s. Over one
 * steady window: each controller's CPU and RSS, heartbeat handling latency per controller (probe
 * agents, as in the link bench), PostgreSQL's CPU and its writes per second (transactions committed
 * and rows written, from pg_stat_database / pg_stat_user_tables; the goal is writes growing with the
 * controllers, not the agents). Then the lease holder is killed with SIGKILL `kills` times (restarted
 * each time): time from the kill to a survivor holding the lease, read off the lease row. Compared in
 * the same run with a single controller on lowdb files at `lowdbAgents` agents.
 *
 * Needs the PostgreSQL server binaries (Debian `postgresql`); without them it says so and exits 1.
 */
import pg from 'pg';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { http, run, TestController, sleep, stopProc, until } from '../../test/helpers/cluster.ts';
import { parsePrometheus, valueOf } from '../../test/helpers/prom.ts';
import type { SimAgent } from './lib/link-worker.ts';
import { PEER_PLUGIN, writePeerPlugin } from '../../test/helpers/peer-plugin.ts';
import { postgresBinDir, startPostgres, type Postgres } from '../../test/e2e/lib/postgres.ts';
import { numericFlags } from './lib/args.ts';
import { shippedControllerFlags } from './lib/shipped.ts';
import { measure, parentPid, raisePriority, treeCpuSeconds, type Usage } from './lib/proc.ts';
import { figure, mb, ms, pct, percentile, printTable, progress } from './lib/report.ts';
import { collectLatencyPerWorker, connectAll, enrollAll, markProbes, stopWorkers, sum, type Latency, type WorkerHandle } from './lib/link-fleet.ts';

const opts = numericFlags('scaleout', {
  agents: 30_000,
  controllers: 3,
  seconds: 30,
  kills: 10,
  lowdbAgents: 10_000,
  probes: 300,
  workers: 0,
  /** 1: probe agents in processes of their own (one per controller), apart from the thousands of others. */
  probeWorkers: 1,
  enrollConcurrency: 24,
  connectConcurrency: 150,
  leaseTtlMs: 6000,
  forward: 1000,
  nice: 10,
});
const HB_MS = 2000;
const HEARTBEAT = { intervalMs: HB_MS, downAfter: 3, upAfter: 2 };
const quiet = { OUTPOST_LOG_LEVEL: process.env.OUTPOST_LOG_LEVEL ?? 'warn' };
const CONTROLLERS = Math.max(1, Math.floor(opts.controllers));
const WELCOME_TIMEOUT_MS = 10_000;
const adminToken = `opa_bench_${Date.now().toString(36)}`;
/**
 * Controllers run with the node flags of the shipped systemd unit (its V8 flags are part of what was
 * measured); OUTPOST_BENCH_CONTROLLER_FLAGS replaces them for a comparison ("" for none).
 */
const override = process.env.OUTPOST_BENCH_CONTROLLER_FLAGS;
const nodeFlags = override === undefined ? await shippedControllerFlags() : override.split(/\s+/).filter(Boolean);

try {
  postgresBinDir();
} catch (err) {
  process.stderr.write(`scaleout: ${(err as Error).message}\n`);
  process.exit(1);
}

const fmtMs = (v: number[]) => (v.length ? `${ms(percentile(v, 50))} / ${ms(percentile(v, 99))} / ${ms(Math.max(...v))}` : 'none');
const cmdTimes = (x: CommandTimes | undefined) => (x ? `${ms(x.p50)} / ${ms(x.p99)} / ${ms(x.max)} (${x.n} sequential${x.failed ? `; ${x.failed} failed: ${x.error}` : ''})` : 'not measured');
const fmtLoop = (l: Loop) => `${ms(l.lagP99Ms)}; ${ms(l.gcMaxMs)}, ${l.gcMsPerS.toFixed(1)} ms/s (major ${l.majorMsPerS.toFixed(1)})`;
const sec = (v: number) => `${(v / 1000).toFixed(2)} s`;

interface PgCounters {
  at: number;
  /** Each store's version (one per commit) and the highest log record seq: where the writes went. */
  storeVersions: Map<string, number>;
  logSeq: number;
  epoch: number;
  xactCommit: number;
  tupWritten: number;
  walBytes: number;
  tables: Map<string, number>;
}

/** Counters of the bench's database; its own queries (one transaction per reading) are in them too. */
async function pgCounters(c: pg.Client, database: string): Promise<PgCounters> {
  const db = await c.query<{ xact_commit: string; wal: string }>(`SELECT xact_commit::text, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text AS wal FROM pg_stat_database WHERE datname = $1`, [database]);
  const t = await c.query<{ relname: string; n: string }>(`SELECT relname, (n_tup_ins + n_tup_upd + n_tup_del)::text AS n FROM pg_stat_user_tables`);
  const tables = new Map(t.rows.map((r) => [r.relname, Number(r.n)]));
  const sv = await c.query<{ name: string; version: string }>('SELECT name, version::text FROM outpost_stores');
  const ls = await c.query<{ seq: string }>('SELECT coalesce(max(seq), 0)::text AS seq FROM outpost_log_records');
  const ep = await c.query<{ epoch: string }>(`SELECT epoch::text FROM outpost_leases WHERE name = 'singleton'`);
  return {
    at: performance.now(),
    storeVersions: new Map(sv.rows.map((r) => [r.name, Number(r.version)])),
    logSeq: Number(ls.rows[0].seq),
    epoch: Number(ep.rows[0]?.epoch ?? 0), xactCommit: Number(db.rows[0].xact_commit), walBytes: Number(db.rows[0].wal), tupWritten: [...tables.values()].reduce((a, b) => a + b, 0), tables };
}

/** Per store: commits and distinct rows changed since `a`; per log: records appended since `a`. */
async function pgWhere(c: pg.Client, a: PgCounters, b: PgCounters) {
  const s = (b.at - a.at) / 1000;
  const names = [...a.storeVersions.keys()];
  const rows = await c.query<{ store: string; n: string }>(
    'SELECT r.store, count(*)::text AS n FROM outpost_store_rows r JOIN unnest($1::text[], $2::bigint[]) AS v(name, version) ON r.store = v.name WHERE r.version > v.version GROUP BY r.store',
    [names, names.map((n) => a.storeVersions.get(n))],
  );
  const changed = new Map(rows.rows.map((r) => [r.store, Number(r.n)]));
  const stores = [...b.storeVersions]
    .map(([name, v]) => ({ name, commitsPerS: (v - (a.storeVersions.get(name) ?? 0)) / s, rows: changed.get(name) ?? 0 }))
    .filter((x) => x.commitsPerS > 0)
    .sort((x, y) => y.commitsPerS - x.commitsPerS);
  const logs = await c.query<{ log: string; n: string }>('SELECT log, count(*)::text AS n FROM outpost_log_records WHERE seq > $1 AND seq <= $2 GROUP BY log ORDER BY count(*) DESC', [a.logSeq, b.logSeq]);
  return { stores, logs: logs.rows.map((r) => ({ name: r.log, perS: Number(r.n) / s })) };
}

function pgRates(a: PgCounters, b: PgCounters) {
  const s = (b.at - a.at) / 1000;
  const tables = [...b.tables].map(([name, n]) => [name, (n - (a.tables.get(name) ?? 0)) / s] as const).filter(([, r]) => r > 0).sort((x, y) => y[1] - x[1]);
  return { commitsPerS: (b.xactCommit - a.xactCommit) / s, rowsPerS: (b.tupWritten - a.tupWritten) / s, walPerS: (b.walBytes - a.walBytes) / s, tables };
}

/** The singleton lease as the database sees it: its holder while it is unexpired. */
async function leaseHolder(c: pg.Client): Promise<{ holder: string; epoch: number } | undefined> {
  // bigint comes back as text from this client: compared as text, epoch 10 came "before" 9.
  const r = await c.query<{ holder: string; epoch: string }>(`SELECT holder, epoch::text FROM outpost_leases WHERE name = 'singleton' AND expires_at > now()`);
  return r.rows[0] && { holder: r.rows[0].holder, epoch: Number(r.rows[0].epoch) };
}

/** A controller's event-loop delay and GC pauses over the window, from its /metrics (read at the start to reset them). */
interface Loop {
  lagP99Ms: number;
  gcMaxMs: number;
  gcMsPerS: number;
  /** Of which mark-compact (a large live heap) rather than scavenges (the allocation rate). */
  majorMsPerS: number;
}

const GC_KINDS = ['minor', 'major', 'incremental', 'weakcb'];

async function loopFigures(c: TestController): Promise<{ lagP99Ms: number; gcMaxMs: number; gcSeconds: number; majorSeconds: number }> {
  const r = await http('GET', `${c.url}/metrics`);
  const m = parsePrometheus(r.text);
  return {
    lagP99Ms: (valueOf(m, 'outpost_controller_event_loop_lag_seconds') ?? NaN) * 1000,
    gcMaxMs: (valueOf(m, 'outpost_controller_gc_pause_max_seconds') ?? NaN) * 1000,
    gcSeconds: GC_KINDS.reduce((a, kind) => a + (valueOf(m, 'outpost_controller_gc_pause_seconds_total', { kind }) ?? 0), 0),
    majorSeconds: valueOf(m, 'outpost_controller_gc_pause_seconds_total', { kind: 'major' }) ?? NaN,
  };
}

interface Steady {
  usage: Record<string, Usage>;
  loops: Loop[];
  /** Per probe worker (probe worker i: agents of controller i). */
  perWorker: Latency[];
  /** The largest event-loop delay p99 of the workers playing the other agents, ms. */
  bulkLoopP99Ms: number;
  pgCpuPercent?: number;
  pg?: ReturnType<typeof pgRates> & Awaited<ReturnType<typeof pgWhere>> & { epochs: [number, number] };
}

/** One window: CPU/RSS of every controller and worker, probe latency per worker, and PostgreSQL's CPU and writes when given. */
async function steadyWindow(controllers: TestController[], fleet: { workers: WorkerHandle[]; probes: WorkerHandle[] }, db?: { client: pg.Client; name: string; postmaster: number }): Promise<Steady> {
  const { workers, probes } = fleet;
  // A scrape renders every node's series (tens of thousands at this size): it is done before the
  // probes' window opens and after it closes, so its own pause is not counted as heartbeat latency.
  const loops0 = await Promise.all(controllers.map(loopFigures));
  await sleep(2000);
  await collectLatencyPerWorker(workers);
  const pids: Record<string, number> = {};
  controllers.forEach((c, i) => (pids[`c${i}`] = c.proc.child.pid!));
  workers.forEach((w, i) => (pids[`w${i}`] = w.child.pid!));
  const before = db && (await pgCounters(db.client, db.name));
  const pgCpu0 = db && treeCpuSeconds(db.postmaster);
  const t0 = performance.now();
  const usage = await measure(pids, opts.seconds);
  const seconds = (performance.now() - t0) / 1000;
  const pgCpuPercent = db ? ((treeCpuSeconds(db.postmaster) - pgCpu0!) / ((performance.now() - t0) / 1000)) * 100 : undefined;
  const after = db && (await pgCounters(db.client, db.name));
  const all = await collectLatencyPerWorker(workers);
  const perWorker = probes.map((w) => all[workers.indexOf(w)]);
  const bulkLoopP99Ms = Math.max(0, ...all.filter((_, i) => !probes.includes(workers[i])).map((l) => l.loopP99Ms));
  const loops1 = await Promise.all(controllers.map(loopFigures));
  const loops = loops1.map((l, i) => ({ lagP99Ms: l.lagP99Ms, gcMaxMs: l.gcMaxMs, gcMsPerS: ((l.gcSeconds - loops0[i].gcSeconds) * 1000) / seconds, majorMsPerS: ((l.majorSeconds - loops0[i].majorSeconds) * 1000) / seconds }));
  const where = before && after && db ? await pgWhere(db.client, before, after) : undefined;
  return { usage, loops, perWorker, bulkLoopP99Ms, pgCpuPercent, pg: before && after && where ? { ...pgRates(before, after), ...where, epochs: [before.epoch, after.epoch] } : undefined };
}

async function status(c: TestController): Promise<any> {
  const r = await c.api('GET', '/api/v1/status');
  if (r.status !== 200) throw new Error(`status of ${c.url}: HTTP ${r.status} ${r.text}`);
  return r.body;
}

/** Links held per controller: each one's own count. */
async function linked(cs: TestController[]): Promise<number[]> {
  return Promise.all(cs.map(async (c) => (await status(c)).link.connected as number));
}

const prioritise = (pid: number | undefined) => raisePriority(pid, opts.nice);
const workerCount = (n: number) => Math.max(n, opts.workers || n);

// ---- Several controllers on PostgreSQL ----------------------------------------------------------
interface CommandTimes {
  /** Commands answered; failed ones are counted apart with the first error. */
  n: number;
  failed?: number;
  error?: string;
  p50: number;
  p99: number;
  max: number;
}

interface ClusterResult {
  connected: number;
  local?: CommandTimes;
  forwarded?: CommandTimes;
  failed: number;
  helloRetries: number;
  importSeconds: number;
  connectSeconds: number;
  steady: Steady;
  upAfter: number;
  closed: number;
  takeovers: number[];
  agentsAtKills: number[];
  killError?: string;
  restartSeconds: number[];
}

async function runCluster(database: Postgres, fleet: Fleet): Promise<ClusterResult> {
  const name = `outpost_scaleout_${process.pid}`;
  const url = await database.createDatabase(name);
  // The enrolled fleet moves into PostgreSQL the way an operator moves a controller there.
  const ti = performance.now();
  const imp = run(['store', 'import', '--data', fleet.dataDir], { ...quiet, OUTPOST_STORE_URL: url });
  if ((await imp.exited) !== 0) throw new Error(`outpost store import failed:\n${imp.output().slice(-3000)}`);
  const importSeconds = (performance.now() - ti) / 1000;
  progress(`imported the lowdb data dir (${fleet.agents.length} nodes) into PostgreSQL in ${importSeconds.toFixed(1)} s`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const backend = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const postmaster = parentPid(backend.rows[0].pid);
  prioritise(postmaster);
  // The test plugin zz-fwd times n sequential commands inside the controller (test/helpers/peer-plugin.ts).
  const pluginDir = await writePeerPlugin();
  const config = { heartbeat: HEARTBEAT, cluster: { leaseTtlMs: opts.leaseTtlMs }, pluginDirs: [pluginDir], plugins: { 'server-stats': {}, [PEER_PLUGIN]: {} } };
  const start = () => TestController.start({ env: { ...quiet, OUTPOST_STORE_URL: url }, config, adminToken, nodeFlags });
  const cs: TestController[] = [];
  let workers: WorkerHandle[] = [];
  try {
    // The first initialises the store (schema, admin token) before the others start.
    cs.push(await start());
    await until('the first controller holds the lease', () => leaseHolder(client), 30_000, 100);
    for (let i = 1; i < CONTROLLERS; i++) cs.push(await start());
    for (const c of cs) prioritise(c.proc.child.pid);
    const ids = new Map<string, TestController>();
    for (const c of cs) ids.set((await status(c)).controller.id, c);
    progress(`${CONTROLLERS} controllers on PostgreSQL ${database.port}: ${cs.map((c) => c.url).join(', ')}`);

    // Two agents answer the echo command: one linked to the first controller, one to the second.
    const W = workerCount(CONTROLLERS);
    const controllerOf = (j: number) => (j % W) % CONTROLLERS;
    const echoAt = (ci: number) => fleet.agents.findIndex((a, j) => !a.probe && controllerOf(j) === ci);
    const echoes = [echoAt(0), CONTROLLERS > 1 ? echoAt(1) : -1].map((j) => (j >= 0 ? fleet.agents[j] : undefined));
    for (const a of echoes) if (a) a.echo = { name: 'echo' };
    const conn = await connectAll(cs.map((c) => `${c.url}/api/v1/link`), fleet.agents, { workers: workerCount(CONTROLLERS), connectConcurrency: opts.connectConcurrency, nice: opts.nice, hbMs: HB_MS, welcomeTimeoutMs: WELCOME_TIMEOUT_MS, probeWorkers: opts.probeWorkers > 0 });
    workers = conn.workers;
    const connected = sum(workers, 'connected');
    progress(`${connected} agents connected in ${conn.seconds.toFixed(1)} s (${(await linked(cs)).join(' / ')} per controller); waiting for them up on the lease holder`);
    const holderOf = async () => ids.get((await leaseHolder(client))?.holder ?? '');
    await until('every connected node up', async () => ((await status((await holderOf()) ?? cs[0])).nodes.up as number) >= connected, 180_000, 2000).catch((err: Error) => progress(`${err.message}; measuring anyway`));
    progress(`settling 5 s, then measuring ${opts.seconds} s`);
    await sleep(5000);
    const steady = await steadyWindow(cs, conn, { client, name, postmaster });
    const upAfter = (await status((await holderOf()) ?? cs[0])).nodes.up as number;
    const closed = sum(workers, 'closed');

    // Commands sent to the first controller for a node linked to the second, timed inside the plugin;
    // the same for a node linked to the first (local) beside it.
    const timeCommands = async (a: SimAgent | undefined) => {
      if (!a || opts.forward <= 0) return undefined;
      const r = await cs[0].api('POST', `/api/v1/${PEER_PLUGIN}/bench`, { node: a.nodeId, n: opts.forward });
      if (r.status !== 200) throw new Error(`${opts.forward} commands to ${a.nodeId}: HTTP ${r.status} ${r.text}`);
      return r.body as CommandTimes;
    };
    const local = await timeCommands(echoes[0]);
    const forwarded = await timeCommands(echoes[1]);
    if (forwarded) progress(`${forwarded.n} forwarded commands: p50 ${ms(forwarded.p50)}, p99 ${ms(forwarded.p99)} (local p99 ${local ? ms(local.p99) : 'n/a'})`);

    // Takeover: SIGKILL the holder, time until the lease row names a survivor, restart the killed one.
    const takeovers: number[] = [];
    const agentsAtKills: number[] = [];
    const restartSeconds: number[] = [];
    let killError: string | undefined;
    for (let k = 1; k <= opts.kills && !killError; k++) {
      try {
        const before = await until('a lease holder', () => leaseHolder(client), 30_000, 100);
        const victim = ids.get(before.holder);
        if (!victim) throw new Error(`the lease holder ${before.holder} is none of the bench's controllers`);
        agentsAtKills.push(connected - sum(workers, 'closed'));
        const killedAt = performance.now();
        victim.proc.child.kill('SIGKILL');
        const next = await until(`a survivor holds the lease after kill ${k}`, async () => {
          const h = await leaseHolder(client);
          return h && h.holder !== before.holder ? h : undefined;
        }, 60_000, 20);
        takeovers.push(performance.now() - killedAt);
        if (next.epoch <= before.epoch) throw new Error(`epoch ${next.epoch} after ${before.epoch}`);
        progress(`kill ${k}/${opts.kills}: ${sec(takeovers.at(-1)!)} to a survivor's lease (epoch ${next.epoch})`);
        await stopProc(victim.proc, 'SIGKILL');
        const rs = performance.now();
        await victim.boot(120_000);
        prioritise(victim.proc.child.pid);
        restartSeconds.push((performance.now() - rs) / 1000);
        // The restarted one joins as a member; wait for its first presence beat before the next kill.
        await sleep(HB_MS);
      } catch (err) {
        // Figures measured so far are kept; the report says why the kills stopped.
        killError = `kill ${k}: ${(err as Error).message.split('\n')[0]}`;
        progress(killError);
      }
    }
    return { connected, killError, local, forwarded, failed: sum(conn.workers, 'failed'), helloRetries: sum(conn.workers, 'helloRetries'), importSeconds, connectSeconds: conn.seconds, steady, upAfter, closed, takeovers, agentsAtKills, restartSeconds };
  } catch (err) {
    // What the controllers said is what explains a stalled phase.
    for (const [i, c] of cs.entries()) process.stderr.write(`\n--- controller ${i + 1} (${c.url}), last output:\n${c.proc.output().slice(-3000)}\n`);
    throw err;
  } finally {
    stopWorkers(workers);
    for (const c of cs) await c.stop().catch(() => undefined);
    await client.end().catch(() => undefined);
    await rm(pluginDir, { recursive: true, force: true });
  }
}

// ---- One controller on lowdb files --------------------------------------------------------------
interface SingleResult {
  connected: number;
  steady: Steady;
  upAfter: number;
}

/** The agents of the whole run, enrolled on the lowdb controller, and its data dir (stopped). */
interface Fleet {
  agents: SimAgent[];
  dataDir: string;
  enrollSeconds: number;
  enrollLat: number[];
}

/**
 * A single controller on lowdb files: enrolls the first `n` agents and measures them linked (the
 * comparison), then enrolls the rest of the run's agents and stops, its data dir ready for import.
 * Enrolling on files is 3× faster than through a controller on PostgreSQL (46/s here, fsync on): the
 * default 30,000 would take 11 minutes there.
 */
async function runSingle(n: number, total: number): Promise<{ single?: SingleResult; fleet: Fleet }> {
  const c = await TestController.start({ config: { heartbeat: HEARTBEAT }, env: quiet, adminToken, nodeFlags });
  prioritise(c.proc.child.pid);
  let workers: WorkerHandle[] = [];
  try {
    const token = await c.joinToken({ uses: Math.max(n, total), ttl: '2h' });
    const enroll = (count: number, prefix: string) => enrollAll([c.url], [token], count, { concurrency: opts.enrollConcurrency, probes: Math.round((opts.probes * count) / Math.max(1, total)), prefix, lanes: workerCount(1) });
    const first = await enroll(n, 'sim');
    progress(`lowdb: enrolled ${n} in ${first.seconds.toFixed(1)} s`);
    let single: SingleResult | undefined;
    if (n > 0) {
      const conn = await connectAll([`${c.url}/api/v1/link`], first.agents, { workers: workerCount(1), connectConcurrency: opts.connectConcurrency, nice: opts.nice, hbMs: HB_MS, probeWorkers: opts.probeWorkers > 0 });
      workers = conn.workers;
      const connected = sum(workers, 'connected');
      await until('every connected node up', async () => ((await status(c)).nodes.up as number) >= connected, 120_000, 1000);
      progress(`lowdb: ${connected} up; settling 5 s, then measuring ${opts.seconds} s`);
      await sleep(5000);
      const steady = await steadyWindow([c], conn);
      single = { connected, steady, upAfter: (await status(c)).nodes.up };
      stopWorkers(workers);
      workers = [];
    }
    const rest = await enroll(Math.max(0, total - n), 'scale');
    progress(`lowdb: enrolled ${total} in all (${(first.seconds + rest.seconds).toFixed(1)} s)`);
    const agents = [...first.agents, ...rest.agents].slice(0, total);
    // Probes evenly over the whole fleet, so that each controller of the cluster gets its share.
    markProbes(agents, opts.probes, workerCount(CONTROLLERS));
    await stopProc(c.proc);
    return { single, fleet: { agents, dataDir: c.dataDir, enrollSeconds: first.seconds + rest.seconds, enrollLat: [...first.lat, ...rest.lat] } };
  } catch (err) {
    await c.stop();
    throw err;
  } finally {
    stopWorkers(workers);
  }
}

// ---- Run and report -----------------------------------------------------------------------------
const { single, fleet } = await runSingle(Math.min(opts.lowdbAgents, opts.agents), opts.agents);
const database = await startPostgres({ durable: true });
let cluster: ClusterResult;
try {
  cluster = await runCluster(database, fleet);
} finally {
  await database.destroy();
  await rm(join(fleet.dataDir, '..'), { recursive: true, force: true });
}

const workerCpu = (s: Steady) => Object.entries(s.usage).filter(([k]) => k.startsWith('w')).reduce((a, [, u]) => a + u.cpuPercent, 0);
const ctlUsage = (s: Steady) => Object.entries(s.usage).filter(([k]) => k.startsWith('c')).map(([, u]) => u);
const allRtts = (s: Steady) => s.perWorker.flatMap((l) => l.rtts);
const cu = ctlUsage(cluster.steady);
const maxCpu = Math.max(...cu.map((u) => u.cpuPercent));
const p99 = percentile(allRtts(cluster.steady), 99);
const rates = cluster.steady.pg!;
const rows: string[][] = [
  ['agents connected / failed', `${cluster.connected} / ${cluster.failed}`, single ? `${single.connected} / 0` : ''],
  ...cu.map((u, i) => [`controller ${i + 1} CPU, RSS avg (max)`, `${pct(u.cpuPercent)}, ${mb(u.rssAvg)} (${mb(u.rssMax)})`, i === 0 && single ? `${pct(ctlUsage(single.steady)[0].cpuPercent)}, ${mb(ctlUsage(single.steady)[0].rssAvg)} (${mb(ctlUsage(single.steady)[0].rssMax)})` : '']),
  ...cluster.steady.loops.map((l, i) => [`controller ${i + 1} event-loop delay p99; GC pause max, GC ms per s (over the window)`, fmtLoop(l), i === 0 && single ? fmtLoop(single.steady.loops[0]) : '']),
  ...cluster.steady.perWorker.map((l, i) => [`hb latency p50 / p99 / max, agents of controller ${(i % CONTROLLERS) + 1}`, `${fmtMs(l.rtts)} (${l.rtts.length} samples, ${l.late} late); the probing worker's own loop delay p99 ${ms(l.loopP99Ms)}, max ${ms(l.loopMaxMs)}`, '']),
  [`event-loop delay p99 of the workers playing the other agents (max)`, opts.probeWorkers > 0 ? ms(cluster.steady.bulkLoopP99Ms) : 'the probes share them', single && opts.probeWorkers > 0 ? ms(single.steady.bulkLoopP99Ms) : ''],
  ['hb latency p50 / p99 / max, all probes', fmtMs(allRtts(cluster.steady)), single ? fmtMs(allRtts(single.steady)) : ''],
  ['PostgreSQL CPU (postmaster + backends)', pct(cluster.steady.pgCpuPercent!), 'n/a'],
  ['PostgreSQL transactions committed /s', rates.commitsPerS.toFixed(1), 'n/a'],
  ['PostgreSQL rows written /s (ins+upd+del)', rates.rowsPerS.toFixed(1), 'n/a'],
  ['PostgreSQL WAL written /s', `${(rates.walPerS / 1024).toFixed(1)} KB`, 'n/a'],
  ['rows written /s by table', rates.tables.map(([t, r]) => `${t} ${r.toFixed(1)}`).join(', ') || 'none', 'n/a'],
  ['store commits /s by store (distinct rows changed in the window)', rates.stores.map((x) => `${x.name} ${x.commitsPerS.toFixed(1)} (${x.rows})`).join(', ') || 'none', 'n/a'],
  ['log records /s by log', rates.logs.map((x) => `${x.name} ${x.perS.toFixed(1)}`).join(', ') || 'none', 'n/a'],
  ['lease epoch at the window start / end', `${rates.epochs[0]} / ${rates.epochs[1]}`, 'n/a'],
  ['command to a node on controller 2, sent to controller 1: p50 / p99 / max', cmdTimes(cluster.forwarded), ''],
  ['command to a node on controller 1, sent to controller 1 (local)', cmdTimes(cluster.local), ''],
  ['nodes up on the lease holder after the window', `${cluster.upAfter} of ${cluster.connected}`, single ? `${single.upAfter} of ${single.connected}` : ''],
  ['links closed by a controller in the window', String(cluster.closed), ''],
  ['bench workers CPU (sum)', pct(workerCpu(cluster.steady)), single ? pct(workerCpu(single.steady)) : ''],
  ['enrollment (on the lowdb controller), import', `${opts.agents} in ${fleet.enrollSeconds.toFixed(1)} s (${(opts.agents / fleet.enrollSeconds).toFixed(0)}/s), p99 ${ms(percentile(fleet.enrollLat, 99))}; store import ${cluster.importSeconds.toFixed(1)} s`, ''],
  ['connect all agents (hellos without a welcome in 10 s, retried)', `${cluster.connectSeconds.toFixed(1)} s (${cluster.helloRetries})`, ''],
  [`controllers' node flags (${override === undefined ? 'as in scripts/systemd/outpost-controller.service' : 'OUTPOST_BENCH_CONTROLLER_FLAGS'})`, nodeFlags.join(' ') || 'none', nodeFlags.join(' ') || 'none'],
];
printTable(`scaleout: ${opts.agents} agents over ${CONTROLLERS} controllers on PostgreSQL (fsync on), heartbeat every ${HB_MS / 1000} s, ${opts.seconds} s window (CPU = % of one core)`, rows, ['metric', `${CONTROLLERS} controllers, PostgreSQL`, single ? `1 controller, lowdb, ${opts.lowdbAgents} agents` : '']);

const t = cluster.takeovers;
if (t.length) {
  printTable(`lease takeover: the holder killed with SIGKILL ${t.length} times (lease ttl ${opts.leaseTtlMs / 1000} s), time to a survivor holding it`, [
    ['takeover p50 / p99 / max', `${sec(percentile(t, 50))} / ${sec(percentile(t, 99))} / ${sec(Math.max(...t))}`],
    ['each kill', t.map((x) => (x / 1000).toFixed(1)).join(', ') + ' s'],
    ['agents still linked at each kill', cluster.agentsAtKills.join(', ')],
    ['restart of the killed controller (to listening)', `median ${percentile(cluster.restartSeconds, 50).toFixed(1)} s`],
    ...(cluster.killError ? [['kills stopped', cluster.killError]] : []),
  ]);
}
const fw = cluster.forwarded;
const forwarded = fw ? `forwarded command p99 ${ms(fw.p99)}${fw.failed ? ` (${fw.failed} failed)` : ''}` : 'forwarded commands not measured';
const met = maxCpu <= 25 && p99 <= 25 && (!t.length || percentile(t, 99) <= 10_000) && (!fw || (fw.p99 <= 20 && !fw.failed));
figure(
  'scaleout',
  `${cluster.connected} agents on ${CONTROLLERS} controllers: CPU max ${pct(maxCpu)} per controller, hb p99 ${ms(p99)}, PostgreSQL ${rates.commitsPerS.toFixed(0)} commits/s and ${rates.rowsPerS.toFixed(0)} rows/s, ` +
    `takeover p99 ${t.length ? sec(percentile(t, 99)) : 'n/a'} over ${t.length} kills; ${forwarded}` +
    (single ? `; 1 lowdb controller at ${single.connected}: ${pct(ctlUsage(single.steady)[0].cpuPercent)} CPU, hb p99 ${ms(percentile(allRtts(single.steady), 99))}` : '') +
    `; targets (<= 25 % CPU, p99 <= 25 ms, takeover p99 <= 10 s, forwarded p99 <= 20 ms) ${met ? 'met' : 'MISSED'}`,
);
