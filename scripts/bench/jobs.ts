/**
 * jobs: N delayed jobs due within one window (`--spread` s, starting `--lead` s after creation
 * begins), each a signed HTTP callback to one loopback receiver in its own process that answers
 * `success`. Side by side, one after the other on the same receiver: BullMQ on a local redis-server,
 * and Outpost (controller + agent, tasks created through the signed API). Per side: create rate
 * (acknowledged creates/s with `--clients` concurrent clients), throughput (callbacks/s from the first
 * due time to the last callback), lateness (callback received − due) p50/p99/max, CPU and RSS of the
 * side's processes while the jobs run.
 */
import { numericFlags } from './lib/args.ts';
import { BullmqSide } from './lib/jobs-bullmq.ts';
import { OutpostSide } from './lib/jobs-outpost.ts';
import { JobsReceiver, type ReceiverStats } from './lib/jobs-receiver.ts';
import { SideUnavailable, type BenchJob, type JobsSide, type SideOptions } from './lib/jobs-side.ts';
import { ProcMonitor, raisePriority, type Usage } from './lib/proc.ts';
import { figure, mb, ms, pct, percentile, printTable, progress } from './lib/report.ts';
import { sleep } from '../../test/helpers/cluster.ts';

const opts = numericFlags('jobs', { jobs: 100_000, spread: 60, lead: 60, concurrency: 64, clients: 16, maxSeconds: 300, nice: 10 });
const N = opts.jobs;

interface SideResult {
  name: string;
  skipped?: string;
  createSeconds?: number;
  firstDue?: number;
  /** How long creation ran past the first due time, ms (0: finished in time). */
  overranMs?: number;
  stats?: ReceiverStats;
  usage?: Record<string, Usage>;
  timedOut?: boolean;
}

async function runSide(side: JobsSide, receiver: JobsReceiver): Promise<SideResult> {
  await receiver.reset(N);
  let pids: Record<string, number>;
  try {
    progress(`${side.name}: starting`);
    pids = await side.start();
  } catch (err) {
    await side.stop().catch(() => undefined);
    if (err instanceof SideUnavailable) return { name: side.name, skipped: err.message };
    throw err;
  }
  try {
    for (const pid of Object.values(pids)) raisePriority(pid, opts.nice);
    const t0 = Date.now();
    const firstDue = t0 + opts.lead * 1000;
    const jobs: BenchJob[] = Array.from({ length: N }, (_, i) => ({ i, due: firstDue + Math.floor((i * opts.spread * 1000) / N) }));
    progress(`${side.name}: creating ${N} jobs with ${opts.clients} clients, due from +${opts.lead} s over ${opts.spread} s`);
    await side.create(jobs);
    const createSeconds = (Date.now() - t0) / 1000;
    const overranMs = Math.max(0, Date.now() - firstDue);
    progress(`${side.name}: created in ${createSeconds.toFixed(1)} s (${(N / createSeconds).toFixed(0)}/s)${overranMs ? `, ${(overranMs / 1000).toFixed(1)} s past the first due time` : ''}`);
    await sleep(firstDue - Date.now());
    const mons = Object.entries(pids).map(([k, pid]) => [k, new ProcMonitor(pid, 500).start()] as const);
    const deadline = firstDue + (opts.spread + opts.maxSeconds) * 1000;
    let lastLog = Date.now();
    let s = await receiver.stats();
    while (s.count < N && Date.now() < deadline) {
      await sleep(250);
      s = await receiver.stats();
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        progress(`${side.name}: ${s.count}/${N} callbacks received`);
      }
    }
    const usage = Object.fromEntries(mons.map(([k, m]) => [k, m.stop()]));
    return { name: side.name, createSeconds, firstDue, overranMs, stats: await receiver.stats(true), usage, timedOut: s.count < N };
  } finally {
    await side.stop();
  }
}

const receiver = await JobsReceiver.start();
raisePriority(receiver.pid, opts.nice);
const sideOpts: SideOptions = { receiverUrl: receiver.url, concurrency: opts.concurrency, clients: opts.clients };
const results: SideResult[] = [];
try {
  for (const side of [new BullmqSide(sideOpts), new OutpostSide(sideOpts)]) results.push(await runSide(side, receiver));
} finally {
  await receiver.stop();
}

/** Callbacks per second from the first due time to the last callback received. */
const throughput = (r: SideResult) => {
  const s = r.stats!;
  const span = (s.last - r.firstDue!) / 1000;
  return span > 0 ? s.count / span : 0;
};
const sum = (u: Record<string, Usage>, f: (x: Usage) => number) => Object.values(u).reduce((a, x) => a + f(x), 0);
const ran = results.filter((r) => r.stats);

printTable(
  `jobs: ${N} delayed jobs due over ${opts.spread} s (offered ${(N / Math.max(opts.spread, 1e-9)).toFixed(0)}/s), callbacks to one loopback receiver, ${opts.concurrency} in flight at most, created by ${opts.clients} clients`,
  results.map((r) => {
    if (!r.stats) return [r.name, 'not run (below)', '', '', '', '', ''];
    const l = r.stats.lateness;
    return [
      r.name,
      `${r.stats.count}/${N}${r.timedOut ? ' (time bound hit)' : ''}`,
      `${(N / r.createSeconds!).toFixed(0)}/s${r.overranMs ? ` (overran first due by ${(r.overranMs / 1000).toFixed(1)} s)` : ''}`,
      `${throughput(r).toFixed(0)}/s`,
      `${ms(percentile(l, 50))} / ${ms(percentile(l, 99))} / ${ms(Math.max(...l))}`,
      pct(sum(r.usage!, (u) => u.cpuPercent)),
      mb(sum(r.usage!, (u) => u.rssMax)),
    ];
  }),
  ['side', 'callbacks', 'create rate', 'throughput', 'lateness p50 / p99 / max', 'CPU (% of one core)', 'RSS max'],
);
for (const r of results) if (r.skipped) process.stdout.write(`\n${r.name} not run: ${r.skipped}\n`);
for (const r of ran) {
  printTable(
    `${r.name}: processes while the jobs ran`,
    Object.entries(r.usage!).map(([k, u]) => [k, pct(u.cpuPercent), `${mb(u.rssAvg)} (${mb(u.rssMax)})`]),
    ['process', 'CPU', 'RSS avg (max)'],
  );
  printTable(`${r.name}: delivery`, [
    ['duplicate callbacks (at-least-once)', String(r.stats!.duplicates)],
    ['callbacks without signed headers', String(r.stats!.unsigned)],
    ['unreadable callbacks', String(r.stats!.malformed)],
  ]);
}
process.stdout.write(`\nThe original (Serendipity-Job) published no figure but ~22 creates/s (100 /nsq/publish in 4.5 s, its HttpTest.php).\n`);
figure(
  'jobs',
  results
    .map((r) => {
      if (!r.stats) return `${r.name.split(' ')[0]}: not run (${r.skipped})`;
      const l = r.stats.lateness;
      return `${r.name.split(' ')[0]} ${r.stats.count}/${N} at ${throughput(r).toFixed(0)}/s, lateness p50 ${ms(percentile(l, 50))} p99 ${ms(percentile(l, 99))}, create ${(N / r.createSeconds!).toFixed(0)}/s, CPU ${pct(sum(r.usage!, (u) => u.cpuPercent))}, RSS ${mb(sum(r.usage!, (u) => u.rssMax))}`;
    })
    .join('; '),
);
if (ran.some((r) => r.timedOut || r.stats!.malformed)) process.exitCode = 1;
