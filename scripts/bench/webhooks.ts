/**
 * webhooks: real events (POST /api/v1/events/test → test.ping in the controller's event log) fanned
 * out through the durable outbox to loopback receivers subscribed via POST /api/v1/webhooks, in three
 * phases, each next to a bare HTTP client (lib/bare-webhook-client.ts) sending the same requests to
 * the same receiver in the same run:
 *
 * 1. lane: one subscription's lane draining a backlog. The receiver holds its first request until
 *    every event is queued, then answers everything at once: deliveries per second from then on.
 * 2. sustained: events at a steady rate (200/s); delay from the event's own timestamp to the
 *    receiver's acceptance (event log, fan-out, outbox, HTTP), p50 / p99 / max.
 * 3. mixed: a healthy, a slow and a failing (HTTP 500 on half the requests) receiver on one burst:
 *    nothing lost (every event reaches healthy and failing exactly once, in order; the slow lane's
 *    are accepted or still pending when the time bound ends the run), one lane never holds up another.
 */
import { randomBytes } from 'node:crypto';
import { http, TestController, sleep, until } from '../../test/helpers/cluster.ts';
import { numericFlags } from './lib/args.ts';
import { ProcMonitor, raisePriority, type Usage } from './lib/proc.ts';
import { profiler } from './lib/profile.ts';
import { figure, mb, ms, pct, percentile, printTable, progress } from './lib/report.ts';
import { BenchReceiver, type Accepted } from './lib/webhook-receiver.ts';
import { BareWebhookClient } from './lib/bare-webhook-client.ts';

const opts = numericFlags('webhooks', { lane: 5000, rate: 200, seconds: 20, mixed: 2000, slowMs: 200, failPercent: 50, concurrency: 8, maxSeconds: 180, profile: 0, nice: 10 });
const TARGET_RATE = 1000;
const TARGET_P99 = 50;
// The receivers live in this process: it runs at the controller's priority so they keep up with it.
raisePriority(process.pid, opts.nice);
const SECRET = randomBytes(18).toString('base64url');

const prof = await profiler(opts.profile, 'webhooks');
// Retries fast enough for the mixed phase to finish within the bound: 10 ms base, 100 ms cap (defaults:
// 1 s and 5 min); a request timeout long enough for the lane phase's first request, held while the
// backlog builds.
const controller = await TestController.start({
  config: { webhooks: { baseDelayMs: 10, maxDelayMs: 100, maxAgeMs: 3_600_000, timeoutMs: 300_000, concurrencyPerTarget: 4 } },
  env: { OUTPOST_LOG_LEVEL: 'error' },
  wrapper: prof.wrapper,
});
const receivers: BenchReceiver[] = [];

async function receiver(name: string, o: { delayMs?: number; failRate?: number } = {}): Promise<BenchReceiver> {
  const r = new BenchReceiver(name, SECRET, o);
  await r.start();
  receivers.push(r);
  return r;
}

async function subscribe(r: BenchReceiver): Promise<string> {
  const s = await controller.api('POST', '/api/v1/webhooks', { url: r.url, events: ['test.ping'], secret: SECRET, description: `bench ${r.name}` });
  if (s.status !== 201) throw new Error(`subscribing ${r.name} failed: ${s.text}`);
  return s.body.id;
}

async function unsubscribe(id: string): Promise<void> {
  const r = await controller.api('DELETE', `/api/v1/webhooks/${id}`);
  if (r.status !== 200) throw new Error(`deleting webhook ${id} failed: ${r.text}`);
}

/** n test events through the REST API, `concurrency` in flight; `rate` > 0 paces them at rate/s. Resolves with the seconds it took. */
async function emit(n: number, prefix: string, rate = 0): Promise<number> {
  const t0 = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      for (let i = next++; i < n; i = next++) {
        if (rate) await sleep(t0 + (i * 1000) / rate - Date.now());
        const r = await http('POST', `${controller.url}/api/v1/events/test`, { token: controller.adminToken, body: { message: `${prefix}-${i}` } });
        if (r.status !== 202) throw new Error(`event ${prefix}-${i}: HTTP ${r.status} ${r.text}`);
      }
    }),
  );
  return (Date.now() - t0) / 1000;
}

async function pending(): Promise<number> {
  return (await controller.api('GET', '/api/v1/status')).body.outbox.pending;
}

const delays = (a: Accepted[]) => a.map((x) => x.at - x.eventTs);
/** Every event once, none accepted before an event recorded earlier (concurrent POSTs are recorded in arrival order, not tag order). */
const onceInOrder = (r: BenchReceiver, n: number) => r.accepted.length === n && new Set(r.accepted.map((a) => a.tag)).size === n && r.outOfOrder() === 0;
const deadline = () => Date.now() + opts.maxSeconds * 1000;

async function waitAccepted(r: BenchReceiver, n: number, end: number): Promise<boolean> {
  while (r.accepted.length < n && Date.now() < end) await sleep(20);
  return r.accepted.length >= n;
}

/** Phase 1: a lane's drain rate. */
async function lanePhase() {
  const N = opts.lane;
  const rx = await receiver('lane (healthy, gated)');
  const sub = await subscribe(rx);
  rx.closeGate();
  const emitSeconds = await emit(N, 'lane');
  progress(`lane: ${N} events emitted in ${emitSeconds.toFixed(1)} s; waiting for all to be queued`);
  await until('the backlog queued', async () => rx.held() === 1 && (await pending()) >= N, opts.maxSeconds * 1000, 100);
  const mon = new ProcMonitor(controller.proc.child.pid!).start();
  const opened = rx.openGate();
  const complete = await waitAccepted(rx, N, deadline());
  const usage = mon.stop();
  const outpostRate = rx.accepted.length > 1 ? (rx.accepted.length - 1) / ((rx.accepted.at(-1)!.at - opened) / 1000) : 0;
  const ok = complete && onceInOrder(rx, N) && rx.duplicates === 0 && rx.badSignatures === 0;
  await unsubscribe(sub);
  rx.reset();
  progress(`lane: Outpost ${outpostRate.toFixed(0)}/s; bare client next`);
  const bare = new BareWebhookClient(rx.url, SECRET);
  const bareRate = await bare.burst(N, 'bare');
  bare.close();
  return { N, emitSeconds, outpostRate, bareRate, ok, usage, accepted: complete ? N : rx.accepted.length };
}

/** Phase 2: delay at a steady rate. */
async function sustainedPhase() {
  const N = Math.round(opts.rate * opts.seconds);
  const rx = await receiver(`steady (${opts.rate}/s)`);
  const sub = await subscribe(rx);
  const mon = new ProcMonitor(controller.proc.child.pid!).start();
  const emitSeconds = await emit(N, 'steady', opts.rate);
  const complete = await waitAccepted(rx, N, deadline());
  const usage = mon.stop();
  const outpost = delays(rx.accepted);
  const ok = complete && onceInOrder(rx, N) && rx.duplicates === 0 && rx.badSignatures === 0;
  await unsubscribe(sub);
  rx.reset();
  progress(`sustained: Outpost p99 ${ms(percentile(outpost, 99))}; bare client next`);
  const bare = new BareWebhookClient(rx.url, SECRET);
  await bare.paced(N, opts.rate, 'bare');
  bare.close();
  return { N, emitSeconds, outpost, bare: delays(rx.accepted), ok, usage };
}

/** Phase 3: healthy, slow and failing lanes on one burst; nothing lost. */
async function mixedPhase() {
  const N = opts.mixed;
  const healthy = await receiver('healthy');
  const slow = await receiver(`slow (${opts.slowMs} ms per request)`, { delayMs: opts.slowMs });
  const failing = await receiver(`failing ${opts.failPercent} % (HTTP 500)`, { failRate: opts.failPercent / 100 });
  const trio = [healthy, slow, failing];
  for (const r of trio) await subscribe(r);
  const mon = new ProcMonitor(controller.proc.child.pid!).start();
  const t0 = Date.now();
  const emitSeconds = await emit(N, 'mixed');
  progress(`mixed: ${N} events emitted in ${emitSeconds.toFixed(1)} s; waiting for deliveries (at most ${opts.maxSeconds} s)`);
  const end = t0 + opts.maxSeconds * 1000;
  // Done when every receiver has everything, or when only the slow lane is left and it cannot finish in time.
  const slowCannotFinish = () => (N - slow.accepted.length) * opts.slowMs > end - Date.now();
  while (Date.now() < end && trio.some((r) => r.accepted.length < N)) {
    if (healthy.accepted.length >= N && failing.accepted.length >= N && slowCannotFinish()) break;
    await sleep(200);
  }
  const usage = mon.stop();
  // Receivers stop answering, and the answers already sent are settled, before the count: a delivery
  // accepted while its acknowledgement is on its way back would count as accepted and as pending.
  for (const r of trio) r.closeGate();
  await sleep(opts.slowMs + 500);
  const left = await pending();
  const complete = (r: BenchReceiver) => new Set(r.accepted.map((a) => a.tag)).size === N;
  const unique = trio.every((r) => new Set(r.accepted.map((a) => a.tag)).size === r.accepted.length);
  const acceptedAll = trio.reduce((a, r) => a + r.accepted.length, 0);
  const accounted = unique && acceptedAll + left === trio.length * N;
  const lost = !complete(healthy) || !complete(failing) || !accounted;
  const rate = (r: BenchReceiver) => (r.accepted.length ? r.accepted.length / ((r.accepted.at(-1)!.at - t0) / 1000) : 0);
  const rows = trio.map((r) => {
    const d = delays(r.accepted);
    return [r.name, `${r.accepted.length}/${N}`, `${rate(r).toFixed(0)}/s`, `${ms(percentile(d, 50))} / ${ms(percentile(d, 99))} / ${ms(Math.max(...d))}`, String(r.requests), String(r.failedOnPurpose), String(r.duplicates), String(r.outOfOrder()), String(r.badSignatures)];
  });
  return { N, emitSeconds, rows, left, acceptedAll, accounted, lost, usage, failing, slow };
}

try {
  raisePriority(controller.proc.child.pid, opts.nice);
  const lane = opts.lane ? await lanePhase() : undefined;
  const steady = opts.seconds && opts.rate ? await sustainedPhase() : undefined;
  const mixed = opts.mixed ? await mixedPhase() : undefined;

  const cpu = (u: Usage) => `${pct(u.cpuPercent)}, RSS ${mb(u.rssMax)}`;
  const rows: Array<Array<string | number>> = [];
  if (lane) {
    rows.push(
      ['lane', `deliveries/s draining ${lane.N} queued (one lane, one request in flight)`, `${lane.outpostRate.toFixed(0)}/s`, `${lane.bareRate.toFixed(0)}/s`],
      ['', 'all delivered once, in order, signed', lane.ok ? 'yes' : `NO (${lane.accepted}/${lane.N})`, ''],
      ['', 'controller CPU (of one core) while draining, RSS max', cpu(lane.usage), ''],
      ['', `events emitted (${opts.concurrency} concurrent POST /api/v1/events/test)`, `${lane.N} in ${lane.emitSeconds.toFixed(1)} s (${(lane.N / lane.emitSeconds).toFixed(0)}/s)`, ''],
    );
  }
  if (steady) {
    const [o, b] = [steady.outpost, steady.bare];
    rows.push(
      ['sustained', `delay event → receiver at ${opts.rate}/s, p50 / p99 / max`, `${ms(percentile(o, 50))} / ${ms(percentile(o, 99))} / ${ms(Math.max(...o))}`, `${ms(percentile(b, 50))} / ${ms(percentile(b, 99))} / ${ms(Math.max(...b))}`],
      ['', `all ${steady.N} delivered once, in order, signed`, steady.ok ? 'yes' : 'NO', ''],
      ['', 'controller CPU (of one core), RSS max', cpu(steady.usage), ''],
    );
  }
  rows.push(['all', 'priority of controller and receivers', opts.nice ? `nice -${Math.min(19, opts.nice)}` : 'unchanged', '']);
  printTable('webhooks: one lane to a healthy receiver, Outpost next to a bare HTTP client (node:http keep-alive, one request in flight)', rows, ['phase', 'metric', 'Outpost', 'bare client']);
  if (mixed) {
    printTable(`mixed: ${mixed.N} events in one burst (${mixed.emitSeconds.toFixed(1)} s) to three receivers`, mixed.rows, ['receiver', 'accepted', 'rate', 'delay p50 / p99 / max', 'requests', '500s', 'dupes', 'out of order', 'bad sig']);
    printTable('mixed: controller', [
      ['CPU during the phase (% of one core), RSS max', cpu(mixed.usage)],
      ['accepted (all receivers) + pending = 3 x events', `${mixed.acceptedAll} + ${mixed.left} = ${mixed.acceptedAll + mixed.left} of ${3 * mixed.N} (${mixed.accounted ? 'ok' : 'MISMATCH'})`],
      ['nothing lost', mixed.lost ? 'NO: see above' : 'yes'],
    ]);
  }
  const parts: string[] = [];
  const bad = (lane && !lane.ok) || (steady && !steady.ok) || mixed?.lost;
  if (lane) parts.push(`lane ${lane.outpostRate.toFixed(0)} deliveries/s (bare client ${lane.bareRate.toFixed(0)}/s)`);
  if (steady) parts.push(`at ${opts.rate}/s p99 ${ms(percentile(steady.outpost, 99))} event to receiver (bare client ${ms(percentile(steady.bare, 99))})`);
  if (lane && steady) parts.push(`${lane.outpostRate >= TARGET_RATE && percentile(steady.outpost, 99) <= TARGET_P99 ? 'meets' : 'MISSES'} target ≥ ${TARGET_RATE}/s, p99 ≤ ${TARGET_P99} ms`);
  if (mixed) parts.push(`mixed: failing-${opts.failPercent}% ${mixed.failing.accepted.length}/${mixed.N} after ${mixed.failing.failedOnPurpose} retries, slow ${mixed.slow.accepted.length}/${mixed.N} (${mixed.left} pending)`);
  parts.push(bad ? 'EVENTS LOST OR OUT OF ORDER' : 'nothing lost');
  figure('webhooks', parts.join('; '));
  if (bad) process.exitCode = 1;
} finally {
  await controller.stop();
  for (const r of receivers) await r.close();
  if (prof.dir) progress(`controller CPU profile written to ${prof.dir}`);
}
