/**
 * forward: commands forwarded between controllers sharing one PostgreSQL 15 (a local throwaway server,
 * as test/e2e/lib/postgres.ts starts it). Controllers A and B, one agent linked to each, the peer test
 * plugin (test/helpers/peer-plugin.ts) on all of them; A's plugin sends N sequential commands to the
 * node linked to B (A → B over the internal endpoint → the agent's link, and back) and N to the node
 * linked to A itself, timing each inside the plugin (ctx.command's own latency, no REST round trip).
 * Also: the same through A's REST API from a client (one request per command), and peers.call to B.
 *
 * Needs root (or the PostgreSQL server programs runnable as the current user) and the Debian package
 * postgresql. Run under the bench lock: flock /tmp/outpost-bench.lock npm run bench -- forward
 */
import { numericFlags } from './lib/args.ts';
import { figure, ms, percentile, printTable, progress } from './lib/report.ts';
import { startPostgres } from '../../test/e2e/lib/postgres.ts';
import { TestAgent, TestController, until } from '../../test/helpers/cluster.ts';
import { PEER_PLUGIN, writePeerPlugin } from '../../test/helpers/peer-plugin.ts';

const opts = numericFlags('forward', { commands: 1000, rest: 300, calls: 300 });

const pg = await startPostgres();
const started: Array<TestController | TestAgent> = [];
try {
  const url = await pg.createDatabase();
  const dir = await writePeerPlugin();
  const config = { pluginDirs: [dir], plugins: { [PEER_PLUGIN]: {} }, heartbeat: { intervalMs: 1000, downAfter: 3, upAfter: 2 } };
  progress('controllers A and B, one agent on each');
  // One admin token for both: the first controller stores it, the second finds it.
  const adminToken = `opa_bench_forward_${Date.now().toString(36)}`;
  const start = () => TestController.start({ env: { OUTPOST_STORE_URL: url }, config, adminToken });
  const a = await start();
  const b = await start();
  started.push(a, b);
  const agentOpts = (name: string) => ({ name, plugins: { [PEER_PLUGIN]: {} }, config: { pluginDirs: [dir] } });
  const onA = await TestAgent.start(a, agentOpts('bench-a'));
  const onB = await TestAgent.start(b, agentOpts('bench-b'));
  started.push(onA, onB);
  const idb = (await b.api('GET', '/api/v1/status')).body.controller.id as string;
  await until('A sees the node linked to B', async () => (await a.api('GET', `/api/v1/nodes/${onB.nodeId}`)).body.node?.controller === idb, 30_000);

  const bench = async (node: string) => {
    const r = await a.api('POST', '/api/v1/zz-fwd/bench', { node, n: opts.commands });
    if (r.status !== 200) throw new Error(`bench route answered ${r.status}: ${r.text}`);
    const body = r.body as { n: number; failed: number; error?: string; p50: number; p99: number; max: number };
    if (body.failed) throw new Error(`${body.failed} of ${opts.commands} commands failed: ${body.error}`);
    return body;
  };
  progress('warm-up');
  await bench('bench-b');
  await bench('bench-a');
  progress(`${opts.commands} forwarded and ${opts.commands} local commands, sequential`);
  const forwarded = await bench('bench-b');
  const local = await bench('bench-a');

  const restLat = async (node: string) => {
    const lat: number[] = [];
    for (let i = 0; i < opts.rest; i++) {
      const t = performance.now();
      const r = await a.api('POST', '/api/v1/zz-fwd/one', { node, text: `r${i}` });
      lat.push(performance.now() - t);
      if (!r.body?.ok) throw new Error(`command through REST failed: ${r.text}`);
    }
    return lat;
  };
  progress(`${opts.rest} commands through A's REST API each way`);
  const restFwd = await restLat('bench-b');
  const restLocal = await restLat('bench-a');
  progress(`${opts.calls} peers.call to B`);
  const callLat: number[] = [];
  for (let i = 0; i < opts.calls; i++) {
    const t = performance.now();
    const r = await a.api('POST', '/api/v1/zz-fwd/peers', { to: idb, text: 'x' });
    callLat.push(performance.now() - t);
    if (!r.body?.call?.ok) throw new Error(`peers.call failed: ${r.text}`);
  }

  printTable(`commands from controller A (${opts.commands} sequential, timed in the plugin)`, [
    ['forwarded (node linked to B)', ms(forwarded.p50), ms(forwarded.p99), ms(forwarded.max)],
    ['local (node linked to A)', ms(local.p50), ms(local.p99), ms(local.max)],
    [`REST → A, forwarded (${opts.rest})`, ms(percentile(restFwd, 50)), ms(percentile(restFwd, 99)), ms(Math.max(...restFwd))],
    [`REST → A, local (${opts.rest})`, ms(percentile(restLocal, 50)), ms(percentile(restLocal, 99)), ms(Math.max(...restLocal))],
    [`REST → A: peers.call B + broadcast (${opts.calls})`, ms(percentile(callLat, 50)), ms(percentile(callLat, 99)), ms(Math.max(...callLat))],
  ], ['path', 'p50', 'p99', 'max']);
  figure('forward', `p99 ${forwarded.p99.toFixed(2)} ms (p50 ${forwarded.p50.toFixed(2)} ms; local p99 ${local.p99.toFixed(2)} ms) over ${forwarded.n} forwarded commands`);
} finally {
  for (const s of started.reverse()) await s.stop().catch(() => undefined);
  await pg.destroy();
}
