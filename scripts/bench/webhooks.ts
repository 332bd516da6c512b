/**
 * webhooks: N real events (POST /api/v1/events/test → test.ping on the controller's bus) fanned out
 * through the durable outbox to three loopback receivers subscribed via POST /api/v1/webhooks: one
 * healthy, one slow, one failing half of its requests with HTTP 500. Measures delivery rate, delay
 * from event timestamp to acceptance, retries, and checks that nothing is lost: every event reaches
 * the healthy receiver exactly once, in order; the failing and the slow receiver (a FIFO lane with
 * one request in flight limits it to 1000/delayMs events per second) have every event either
 * accepted once, in order, or still pending in the outbox when the time bound ends the run.
 */
import { randomBytes } from 'node:crypto';
import { http, TestController, sleep } from '../../test/helpers/cluster.ts';
import { numericFlags } from './lib/args.ts';
import { ProcMonitor, raisePriority } from './lib/proc.ts';
import { profiler } from './lib/profile.ts';
import { figure, mb, ms, pct, percentile, printTable, progress } from './lib/report.ts';
import { BenchReceiver, type Accepted } from './lib/webhook-receiver.ts';

const opts = numericFlags('webhooks', { events: 10_000, slowMs: 200, failPercent: 50, concurrency: 8, rate: 0, maxSeconds: 420, profile: 0, nice: 10 });
// The receivers live in this process: it runs at the controller's priority so they keep up with it.
raisePriority(process.pid, opts.nice);
const N = opts.events;
const SECRET = randomBytes(18).toString('base64url');

const healthy = new BenchReceiver('healthy', SECRET);
const slow = new BenchReceiver(`slow (${opts.slowMs} ms per request)`, SECRET, { delayMs: opts.slowMs });
const failing = new BenchReceiver(`failing ${opts.failPercent} % (HTTP 500)`, SECRET, { failRate: opts.failPercent / 100 });
const receivers = [healthy, slow, failing];
for (const r of receivers) await r.start();

const prof = await profiler(opts.profile, 'webhooks');
// Retries fast enough to finish within the bound: 10 ms base, 100 ms cap (defaults: 1 s and 5 min).
const controller = await TestController.start({
  config: { webhooks: { baseDelayMs: 10, maxDelayMs: 100, maxAgeMs: 3_600_000, timeoutMs: 10_000, concurrencyPerTarget: 4 } },
  env: { OUTPOST_LOG_LEVEL: 'error' },
  wrapper: prof.wrapper,
});
try {
  for (const r of receivers) {
    const s = await controller.api('POST', '/api/v1/webhooks', { url: r.url, events: ['test.ping'], secret: SECRET, description: `bench ${r.name}` });
    if (s.status !== 201) throw new Error(`subscribing ${r.name} failed: ${s.text}`);
  }
  raisePriority(controller.proc.child.pid, opts.nice);
  const mon = new ProcMonitor(controller.proc.child.pid!).start();
  const t0 = Date.now();
  let next = 0;
  await Promise.all(Array.from({ length: opts.concurrency }, async () => {
    for (let i = next++; i < N; i = next++) {
      // --rate N paces emission at N events/s (0: as fast as the controller takes them, a burst).
      if (opts.rate) await sleep(t0 + (i * 1000) / opts.rate - Date.now());
      const r = await http('POST', `${controller.url}/api/v1/events/test`, { token: controller.adminToken, body: { message: `bench-${i}` } });
      if (r.status !== 202) throw new Error(`event ${i}: HTTP ${r.status} ${r.text}`);
    }
  }));
  const genSeconds = (Date.now() - t0) / 1000;
  progress(`${N} events emitted in ${genSeconds.toFixed(1)} s; waiting for deliveries (at most ${opts.maxSeconds} s)`);

  const deadline = t0 + opts.maxSeconds * 1000;
  let lastLog = 0;
  // Done when every receiver has everything, or when only the slow lane is left and it cannot finish in time.
  const slowCannotFinish = () => (N - slow.accepted.length) * opts.slowMs > deadline - Date.now();
  while (Date.now() < deadline && receivers.some((r) => r.accepted.length < N)) {
    if (healthy.accepted.length >= N && failing.accepted.length >= N && slowCannotFinish()) break;
    if (Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      progress(receivers.map((r) => `${r.name}: ${r.accepted.length}`).join(', '));
    }
    await sleep(200);
  }
  const usage = mon.stop();
  const status = await controller.api('GET', '/api/v1/status');
  const pending: number = status.body.outbox.pending;

  const rate = (r: BenchReceiver) => (r.accepted.length ? r.accepted.length / ((r.accepted.at(-1)!.at - t0) / 1000) : 0);
  const delays = (a: Accepted[]) => a.map((x) => x.at - x.eventTs);
  const complete = (r: BenchReceiver) => new Set(r.accepted.map((a) => a.tag)).size === N;
  // Each receiver accepted each event at most once, and every delivery not accepted is still pending in the outbox.
  const unique = receivers.every((r) => new Set(r.accepted.map((a) => a.tag)).size === r.accepted.length);
  const acceptedAll = receivers.reduce((a, r) => a + r.accepted.length, 0);
  const accounted = unique && acceptedAll + pending === receivers.length * N;
  const lost = !complete(healthy) || !accounted;

  printTable(
    `webhooks: ${N} test.ping events ${opts.rate ? `paced at ${opts.rate}/s, ` : ''}emitted in ${genSeconds.toFixed(1)} s (${(N / genSeconds).toFixed(0)}/s, ${opts.concurrency} concurrent POST /api/v1/events/test)`,
    receivers.map((r) => {
      const d = delays(r.accepted);
      return [r.name, `${r.accepted.length}/${N}`, `${rate(r).toFixed(0)}/s`, `${ms(percentile(d, 50))} / ${ms(percentile(d, 99))} / ${ms(Math.max(...d))}`, String(r.requests), String(r.failedOnPurpose), String(r.duplicates), String(r.outOfOrder()), String(r.badSignatures)];
    }),
    ['receiver', 'accepted', 'rate', 'delay p50 / p99 / max', 'requests', '500s', 'dupes', 'out of order', 'bad sig'],
  );
  printTable('controller', [
    ['CPU during the run (% of one core)', pct(usage.cpuPercent)],
    ['RSS avg (max)', `${mb(usage.rssAvg)} (${mb(usage.rssMax)})`],
    ['outbox still pending at the end', String(pending)],
    ['accepted (all receivers) + pending = 3 x events', `${acceptedAll} + ${pending} = ${acceptedAll + pending} of ${receivers.length * N} (${accounted ? 'ok' : 'MISMATCH'})`],
    ['nothing lost', lost ? 'NO: see above' : 'yes'],
    ['priority of controller and receivers', opts.nice ? `nice -${Math.min(19, opts.nice)}` : 'unchanged'],
  ]);
  const hd = delays(healthy.accepted);
  figure('webhooks', `${N} events, healthy ${healthy.accepted.length}/${N} at ${rate(healthy).toFixed(0)}/s, p99 delay ${ms(percentile(hd, 99))}; failing-${opts.failPercent}% ${failing.accepted.length}/${N} after ${failing.failedOnPurpose} retries; slow ${slow.accepted.length}/${N} (${pending} pending, ${(1000 / opts.slowMs).toFixed(0)}/s lane); ${lost ? 'EVENTS LOST' : 'nothing lost'}`);
  if (lost) process.exitCode = 1;
} finally {
  await controller.stop();
  for (const r of receivers) await r.close();
  if (prof.dir) progress(`controller CPU profile written to ${prof.dir}`);
}
