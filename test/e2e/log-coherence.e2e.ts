/**
 * Durable logs followed across controllers on a real PostgreSQL (runtime/storage/postgres/pg-log.ts),
 * beyond what the storage contract checks on both backends (test/helpers/store-contract.ts): a
 * follower that fell behind two compactions of another controller reloads from the snapshot when its
 * owner can reset, and goes on without compacting when it cannot; and the propagation delay of an
 * append, from append() resolved on one controller to the hook on another (printed, not asserted).
 *
 * "A controller" is a data dir mounted on the database: with a controller's storage (pool, LISTEN
 * connection) for the appender and the measured follower, and with a pool but no LISTEN connection
 * for the follower that must fall behind (it reads only when asked).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir, until } from '../helpers/cluster.ts';
import { Counters, type Rec } from '../helpers/counters-log.ts';
import { startPostgres, type Postgres } from './lib/postgres.ts';
import { openControllerStorage, openDatabase, type ControllerStorage } from '../../runtime/storage/controller-storage.ts';
import { StoreConfig, resolveStore } from '../../runtime/storage/store-config.ts';
import { StorageHealth } from '../../plugins/sdk/durable/health.ts';
import { mountStorage } from '../../plugins/sdk/durable/backend.ts';
import { onRemoteAppend, refreshLog } from '../../plugins/sdk/durable/log.ts';
import { createLog } from '../../plugins/sdk/log.ts';
import { PgContext } from '../../runtime/storage/postgres/context.ts';
import { PostgresBackend } from '../../runtime/storage/postgres/backend.ts';

let pg: Postgres;
const cleanup: Array<() => Promise<unknown> | unknown> = [];
before(async () => {
  pg = await startPostgres();
});
after(async () => {
  for (const c of cleanup.reverse()) await c();
  await pg?.destroy();
});

const quiet = createLog('log-coherence', 'silent');

/** A data dir mounted the way a controller mounts its own: pool and LISTEN connection. */
async function controller(url: string): Promise<{ dir: string; storage: ControllerStorage }> {
  const root = await tempDir('outpost-logtail-');
  const dir = join(root, 'data');
  const storage = await openControllerStorage(StoreConfig.parse({ kind: 'postgres', url }), dir, { health: new StorageHealth(), log: quiet, env: {} });
  cleanup.push(() => rm(root, { recursive: true, force: true }), () => storage.close());
  return { dir, storage };
}

/** A data dir on the database with a pool and no listener: it reads other controllers' records only when refreshed. */
async function deaf(url: string): Promise<string> {
  const root = await tempDir('outpost-logtail-deaf-');
  const dir = join(root, 'data');
  const store = resolveStore(StoreConfig.parse({ kind: 'postgres', url }), {});
  if (store.kind !== 'postgres') throw new Error('postgres expected');
  const { db } = await openDatabase(store, 'outpost-test-deaf');
  const unmount = mountStorage(dir, new PostgresBackend(new PgContext(db, `deaf:${dir}`, quiet, undefined)));
  cleanup.push(() => rm(root, { recursive: true, force: true }), () => db.close(), unmount);
  return dir;
}

const inc = (x: Counters, n: number) => Promise.all(Array.from({ length: n }, () => x.change({ op: 'inc', k: 'n' })));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

test('a follower behind two compactions of another controller reloads from the snapshot and is told so; one that cannot reset goes on and never compacts', async () => {
  const url = await pg.createDatabase();
  const a = await Counters.open((await controller(url)).dir, { compactAfterBytes: 1e9 });
  const fDir = await deaf(url);
  const f = await Counters.open(fDir);
  const told: Array<{ n: number; reset: boolean }> = [];
  onRemoteAppend(f.log, (recs, how) => told.push({ n: recs.length, reset: how.reset }));
  const g = await Counters.open(fDir, { reset: undefined });

  await inc(a, 10);
  await refreshLog(f.log);
  assert.equal(f.values.get('n'), 10);
  assert.deepEqual(told, [{ n: 10, reset: false }]);

  // One compaction keeps the records it replaced for followers: still read one by one.
  await inc(a, 5);
  await a.log.compact();
  await refreshLog(f.log);
  assert.equal(f.values.get('n'), 15);
  assert.deepEqual(told.at(-1), { n: 5, reset: false });

  // Two compactions past it: what it had not read is gone, so it resets and replays the snapshot.
  await inc(a, 5);
  await a.log.compact();
  await inc(a, 5);
  await a.log.compact();
  await inc(a, 2);
  await refreshLog(f.log);
  assert.equal(f.values.get('n'), 27, 'the whole log again, nothing twice');
  assert.equal(told.at(-1)?.reset, true);
  // It follows and compacts as before.
  await inc(f, 3);
  await until('the appender sees the follower\'s records', () => a.values.get('n') === 30, 10_000, 10);
  const gen = f.log.stats().generation;
  await f.log.compact();
  assert.equal(f.log.stats().generation, gen + 1);
  await until('the appender takes it in', async () => (await refreshLog(a.log), a.values.get('n') === 30), 10_000, 10);

  // The owner without reset missed the records the compactions dropped: it keeps what it has and
  // the records after them, and refuses to snapshot what it knows is incomplete.
  await refreshLog(g.log);
  assert.ok((g.values.get('n') as number) < 30, `missed the dropped records (holds ${String(g.values.get('n'))})`);
  const held = g.values.get('n') as number;
  await inc(a, 1);
  await refreshLog(g.log);
  assert.equal(g.values.get('n'), held + 1, 'goes on with later records');
  const gGen = g.log.stats().generation;
  await g.log.compact();
  assert.equal(g.log.stats().generation, gGen, 'no compaction from an incomplete state');

  for (const x of [a, f, g]) await x.log.close();
  const r = await Counters.open(fDir);
  assert.equal(r.values.get('n'), 31, 'reopened: every record once');
  await r.log.close();
});

test('the propagation delay of a log append between two controllers (append resolved on one → the hook on the other)', async () => {
  const url = await pg.createDatabase();
  const a = await Counters.open((await controller(url)).dir);
  const b = await Counters.open((await controller(url)).dir);
  let wait: { k: string; done: () => void } | undefined;
  onRemoteAppend(b.log, (recs: Rec[]) => {
    if (wait && recs.some((r) => r.op === 'set' && r.k === wait!.k)) wait.done();
  });
  const delays: number[] = [];
  for (let i = 0; i < 200; i++) {
    const seen = new Promise<void>((done) => (wait = { k: `k${i}`, done }));
    await a.change({ op: 'set', k: `k${i}`, v: i });
    const appended = performance.now();
    await Promise.race([seen, new Promise((_, no) => setTimeout(() => no(new Error(`record ${i} not seen within 5 s`)), 5000).unref())]);
    delays.push(performance.now() - appended);
  }
  delays.sort((x, y) => x - y);
  assert.equal(b.values.size, 200);
  console.log(`log propagation between controllers over ${delays.length} appends: p50 ${percentile(delays, 50).toFixed(1)} ms, p99 ${percentile(delays, 99).toFixed(1)} ms, max ${delays.at(-1)!.toFixed(1)} ms`);
  await a.log.close();
  await b.log.close();
});
