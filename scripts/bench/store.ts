/**
 * store: the SDK's storage on its two backends in one run, files (lowdb stores, file logs and queues,
 * fsync on) and PostgreSQL 15 (a local throwaway server, fsync on, as test/e2e/lib/postgres.ts starts
 * it), each opened through the same calls on a data dir (the PostgreSQL one mounted as a controller's):
 *
 * 1. store: a nodes store of N records; U updates each changing one record, C in flight (group
 *    commit): updates/s and latency. Files rewrite the whole document per commit; PostgreSQL writes
 *    the changed rows.
 * 2. log: A appends of ~200-byte records, C in flight: appends/s and latency.
 * 3. queue: Q items scheduled C at a time, then worked off by work() (concurrency 32): schedules/s
 *    and items/s leased and acked.
 *
 * Needs root (or the PostgreSQL server programs runnable as the current user) and the Debian package
 * postgresql. Run under the bench lock: flock /tmp/outpost-bench.lock npm run bench -- store
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { numericFlags } from './lib/args.ts';
import { figure, inFlight, ms, percentile, printTable, progress } from './lib/report.ts';
import { openStore } from '../../plugins/sdk/store.ts';
import { openLog } from '../../plugins/sdk/durable/log.ts';
import { openQueue } from '../../plugins/sdk/durable/queue.ts';
import { work } from '../../plugins/sdk/durable/queue-worker.ts';
import { StorageHealth } from '../../plugins/sdk/durable/health.ts';
import { createLog } from '../../plugins/sdk/log.ts';
import { openControllerStorage } from '../../runtime/storage/controller-storage.ts';
import { StoreConfig } from '../../runtime/storage/store-config.ts';
import { startPostgres } from '../../test/e2e/lib/postgres.ts';

const opts = numericFlags('store', { nodes: 10_000, updates: 2_000, appends: 20_000, items: 20_000, concurrency: 32 });
const quiet = createLog('bench', 'silent');

interface Result {
  storeRate: number;
  storeP50: number;
  storeP99: number;
  logRate: number;
  logP99: number;
  scheduleRate: number;
  workRate: number;
}

/** Calls/s and each call's latency. */
async function timed(n: number, c: number, op: (i: number) => Promise<unknown>): Promise<{ rate: number; lat: number[] }> {
  const { lat, seconds } = await inFlight(n, c, op);
  return { rate: n / seconds, lat };
}

async function measure(dir: string, label: string): Promise<Result> {
  type Node = { id: string; name: string; labels: Record<string, string>; address: string; state: string; enrolledAt: number; version: string };
  progress(`${label}: store of ${opts.nodes} nodes`);
  const nodes = await openStore<{ nodes: Record<string, Node> }>(dir, 'nodes', { nodes: {} });
  await nodes.update((d) => {
    for (let i = 0; i < opts.nodes; i++) d.nodes[`n_${i}`] = { id: `n_${i}`, name: `node-${i}`, labels: { zone: `z${i % 7}`, role: 'edge' }, address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, state: 'up', enrolledAt: Date.now(), version: '0.1.0' };
  });
  const st = await timed(opts.updates, opts.concurrency, (i) => nodes.update((d) => void (d.nodes[`n_${(i * 7919) % opts.nodes}`].state = i % 2 ? 'down' : 'up')));
  await nodes.close();

  progress(`${label}: ${opts.appends} log appends`);
  const log = await openLog('events', z.object({ seq: z.number(), event: z.string(), data: z.unknown() }), { dir, load: () => undefined, snapshot: () => [], log: quiet });
  const pad = 'x'.repeat(120);
  const lg = await timed(opts.appends, opts.concurrency, (i) => log.append([{ seq: i, event: 'node.up', data: { pad } }]));
  await log.close();

  progress(`${label}: ${opts.items} queue items`);
  const q = await openQueue('jobs', z.object({ task: z.number(), url: z.string() }), { dir, log: quiet });
  const due = Date.now();
  const sc = await timed(opts.items, opts.concurrency, (i) => q.schedule({ task: i, url: 'http://127.0.0.1/cb' }, due, i % 4 === 0 ? { key: `app${i % 50}` } : {}));
  let done = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const w = work(q, async () => {
      if (++done === opts.items) void w.stop().then(resolve);
    }, { concurrency: 32, leaseMs: 60_000, backoff: () => 1000 });
  });
  const workRate = opts.items / ((performance.now() - t0) / 1000);
  await q.close();
  return { storeRate: st.rate, storeP50: percentile(st.lat, 50), storeP99: percentile(st.lat, 99), logRate: lg.rate, logP99: percentile(lg.lat, 99), scheduleRate: sc.rate, workRate };
}

const root = await mkdtemp(join(tmpdir(), 'outpost-bench-store-'));
const pg = await startPostgres({ durable: true });
try {
  const files = await measure(join(root, 'files'), 'files');
  const url = await pg.createDatabase('bench');
  const dir = join(root, 'pg');
  const storage = await openControllerStorage(StoreConfig.parse({ kind: 'postgres', url }), dir, { health: new StorageHealth(), log: quiet, env: {} });
  let onPg: Result;
  try {
    onPg = await measure(dir, 'postgres');
  } finally {
    await storage.close();
  }
  const rate = (v: number) => `${Math.round(v).toLocaleString('en')}/s`;
  printTable(
    `store (${opts.nodes} nodes, ${opts.concurrency} in flight)`,
    [
      ['store update (one record changed)', rate(files.storeRate), rate(onPg.storeRate)],
      ['  latency p50 / p99', `${ms(files.storeP50)} / ${ms(files.storeP99)}`, `${ms(onPg.storeP50)} / ${ms(onPg.storeP99)}`],
      ['log append (one record)', rate(files.logRate), rate(onPg.logRate)],
      ['  latency p99', ms(files.logP99), ms(onPg.logP99)],
      ['queue schedule', rate(files.scheduleRate), rate(onPg.scheduleRate)],
      ['queue lease + ack (work, 32 at once)', rate(files.workRate), rate(onPg.workRate)],
    ],
    ['', 'files', 'postgres'],
  );
  figure('store', `postgres vs files: store updates ${rate(onPg.storeRate)} vs ${rate(files.storeRate)}, log appends ${rate(onPg.logRate)} vs ${rate(files.logRate)}, queue schedule ${rate(onPg.scheduleRate)} vs ${rate(files.scheduleRate)}, lease+ack ${rate(onPg.workRate)} vs ${rate(files.workRate)}`);
} finally {
  await pg.destroy();
  await rm(root, { recursive: true, force: true });
}
