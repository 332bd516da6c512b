/**
 * link-channels: best-effort plugin messages from one real controller to N real agents over the
 * real link (issue 10 §4). 1 KB payloads broadcast to every agent as binary frames (raw bytes) and,
 * for comparison in the same run, as JSON text (the bytes in base64, what a plugin would have to do
 * without binary frames): messages delivered per second, dropped, controller CPU per message. Then
 * comet's case: one-node pushes at a fixed rate (default 1,000/s), one-way latency measured on the
 * machine's monotonic clock, p50/p99/max.
 *
 * The controller runs in one process (scripts/bench/lib/channel-controller.ts), the agents in
 * --workers processes (lib/channel-agents.ts), each driving its host's channel hub as a plugin does.
 */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { http, tempDir, until } from '../../test/helpers/cluster.ts';
import { parsePrometheus } from '../../test/helpers/prom.ts';
import { numericFlags } from './lib/args.ts';
import { forkChild, type IpcChild } from './lib/ipc-child.ts';
import { ProcMonitor, raisePriority, type Usage } from './lib/proc.ts';
import { figure, ms, pct, percentile, printTable, progress } from './lib/report.ts';
import type { ControllerCommand, ControllerEvent } from './lib/channel-controller.ts';
import type { PayloadKind } from './lib/channel-payload.ts';
import type { AgentsCommand, AgentsEvent } from './lib/channel-agents.ts';

const opts = numericFlags('link-channels', { agents: 20, workers: 2, size: 1024, rate: 1000, seconds: 10, pushRate: 1000, nice: 10 });
const KINDS: PayloadKind[] = ['binary', 'json'];

type Ctl = IpcChild<ControllerCommand, ControllerEvent>;
type Agents = IpcChild<AgentsCommand, AgentsEvent>;

async function droppedTotal(url: string): Promise<number> {
  const fam = parsePrometheus((await http('GET', `${url}/metrics`)).text).get('outpost_link_messages_dropped_total');
  return (fam?.samples ?? []).filter((s) => s.labels.plugin === 'bench').reduce((a, s) => a + s.value, 0);
}

async function stats(workers: Agents[]): Promise<{ received: number; bytes: number; latencies: number[] }> {
  const all = await Promise.all(workers.map((w) => w.ask({ t: 'stats' }, 'stats')));
  return { received: all.reduce((a, s) => a + s.received, 0), bytes: all.reduce((a, s) => a + s.bytes, 0), latencies: all.flatMap((s) => s.latencies) };
}

interface Run {
  calls: number;
  seconds: number;
  /** The controller's own CPU time over the send window (process.cpuUsage in that process). */
  cpuSeconds: number;
  received: number;
  bytes: number;
  dropped: number;
  latencies: number[];
  /** Agent processes over the window and the settling after it. */
  agents: Usage[];
}

/** One measured window: the controller runs cmd while every process is sampled. */
async function run(ctl: Ctl, url: string, workers: Agents[], cmd: Extract<ControllerCommand, { t: 'broadcast' | 'paced' | 'bare-paced' }>): Promise<Run> {
  await Promise.all(workers.map((w) => w.ask({ t: 'reset' }, 'reset')));
  const dropped0 = await droppedTotal(url);
  const mons = workers.map((p) => new ProcMonitor(p.child.pid!, 500).start());
  const done = await ctl.ask(cmd, 'done');
  // Let what is in flight land before counting it.
  let last = -1;
  await until('deliveries settled', async () => {
    const n = (await stats(workers)).received;
    const settled = n === last;
    last = n;
    return settled;
  }, 30_000, 300);
  const a = mons.map((m) => m.stop());
  const s = await stats(workers);
  return { calls: done.calls, seconds: done.seconds, cpuSeconds: done.cpuSeconds, ...s, dropped: (await droppedTotal(url)) - dropped0, agents: a };
}

const perSec = (n: number, s: number) => Math.round(n / s);
const cpuOf = (us: Usage[]) => us.reduce((a, u) => a + u.cpuPercent, 0);
const ctlCpu = (r: Run) => (r.cpuSeconds / r.seconds) * 100;

async function main(): Promise<void> {
  const dir = await tempDir('outpost-bench-channels-');
  const adminToken = `opa_bench_${randomBytes(12).toString('hex')}`;
  const ctl: Ctl = forkChild(join(import.meta.dirname, 'lib/channel-controller.ts'));
  const workers: Agents[] = [];
  try {
    raisePriority(ctl.child.pid, opts.nice);
    const { url } = await ctl.ask({ t: 'start', dataDir: join(dir, 'controller'), adminToken }, 'ready');
    const token = await http('POST', `${url}/api/v1/tokens`, { token: adminToken, body: { ttl: '10m', uses: opts.agents } });
    if (token.status !== 201) throw new Error(`token create failed: ${token.text}`);
    const per = Math.ceil(opts.agents / opts.workers);
    for (let w = 0, left = opts.agents; left > 0; w++, left -= per) {
      const agents: Agents = forkChild(join(import.meta.dirname, 'lib/channel-agents.ts'));
      raisePriority(agents.child.pid, opts.nice);
      workers.push(agents);
      await agents.ask({ t: 'start', url, token: token.body.token, count: Math.min(per, left), dir: join(dir, `w${w}`), prefix: `bench${w}` }, 'ready');
    }
    await until('every agent link open', async () => (await ctl.ask({ t: 'lanes' }, 'lanes')).open === opts.agents, 30_000, 200);
    progress(`${opts.agents} agents linked; warming up`);
    await run(ctl, url, workers, { t: 'broadcast', kind: 'binary', rate: 200, seconds: 2, size: opts.size });

    const rows: Array<Array<string | number>> = [];
    const result: Record<string, { fixed: Run; max: Run; push: Run }> = {};
    for (const kind of KINDS) {
      progress(`${kind}: broadcast at ${opts.rate}/s`);
      const fixed = await run(ctl, url, workers, { t: 'broadcast', kind, rate: opts.rate, seconds: opts.seconds, size: opts.size });
      progress(`${kind}: broadcast as fast as the controller can`);
      const max = await run(ctl, url, workers, { t: 'broadcast', kind, rate: 0, seconds: opts.seconds, size: opts.size });
      progress(`${kind}: one-node pushes at ${opts.pushRate}/s`);
      const push = await run(ctl, url, workers, { t: 'paced', kind, rate: opts.pushRate, seconds: opts.seconds, size: opts.size });
      result[kind] = { fixed, max, push };
      for (const [label, r] of [[`broadcast ${opts.rate}/s`, fixed], ['broadcast, no pacing', max], [`push ${opts.pushRate}/s`, push]] as const) {
        rows.push([
          kind,
          label,
          perSec(r.calls, r.seconds),
          perSec(r.received, r.seconds),
          r.dropped,
          pct(ctlCpu(r)),
          r.received ? ((r.cpuSeconds * 1e6) / r.received).toFixed(1) : '-',
          pct(cpuOf(r.agents)),
        ]);
      }
    }
    progress(`peer: bare hyper-express → ws, paced at ${opts.pushRate}/s`);
    const { port } = await ctl.ask({ t: 'bare-start' }, 'bare-ready');
    const per2 = Math.ceil(opts.agents / workers.length);
    await Promise.all(workers.map((w, i) => w.ask({ t: 'bare-connect', port, count: Math.max(0, Math.min(per2, opts.agents - i * per2)) }, 'bare-connected')));
    const bare = await run(ctl, url, workers, { t: 'bare-paced', rate: opts.pushRate, seconds: opts.seconds, size: opts.size });
    rows.push(['peer: bare uWS → ws', `push ${opts.pushRate}/s`, perSec(bare.calls, bare.seconds), perSec(bare.received, bare.seconds), '-', pct(ctlCpu(bare)), bare.received ? ((bare.cpuSeconds * 1e6) / bare.received).toFixed(1) : '-', pct(cpuOf(bare.agents))]);

    printTable(`${opts.agents} agents, ${opts.size}-byte payloads, ${opts.seconds} s per row (binary: raw bytes in a binary frame; json: base64 in a text frame)`, rows, ['payload', 'load', 'calls/s', 'delivered msgs/s', 'dropped', 'controller CPU', 'µs CPU/msg', 'agents CPU']);
    const lat = KINDS.map((k) => {
      const l = result[k].push.latencies;
      return [k, l.length, ms(percentile(l, 50)), ms(percentile(l, 99)), ms(percentile(l, 100))];
    });
    lat.push(['peer: bare uWS → ws', bare.latencies.length, ms(percentile(bare.latencies, 50)), ms(percentile(bare.latencies, 99)), ms(percentile(bare.latencies, 100))]);
    printTable(`one-way latency of one-node pushes at ${opts.pushRate}/s (send() on the controller → onMessage on the agent)`, lat, ['payload', 'messages', 'p50', 'p99', 'max']);
    const b = result.binary;
    const j = result.json;
    const p99 = percentile(b.push.latencies, 99);
    figure(
      'link-channels',
      `binary 1 KB broadcast to ${opts.agents} agents: ${perSec(b.max.received, b.max.seconds)} msgs/s delivered at most (json+base64 ${perSec(j.max.received, j.max.seconds)}); ` +
        `at ${opts.rate * opts.agents} msgs/s controller CPU ${pct(ctlCpu(b.fixed))} (json ${pct(ctlCpu(j.fixed))}); ` +
        `pushes at ${opts.pushRate}/s one-way p50 ${ms(percentile(b.push.latencies, 50))} p99 ${ms(p99)} (target p99 <= 5 ms: ${p99 <= 5 ? 'met' : 'missed'}; bare uWS → ws peer p99 ${ms(percentile(bare.latencies, 99))})`,
    );
  } finally {
    await Promise.all(workers.map((w) => w.ask({ t: 'stop' }, 'stopped').catch(() => undefined)));
    await ctl.ask({ t: 'stop' }, 'stopped').catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
