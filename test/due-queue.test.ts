/** The SDK's due-time queue: due order, per-key lanes, leases and their expiry, failures with backoff, a full disk, kill -9. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { openQueue, type DueQueue } from '../plugins/sdk/durable/queue.ts';
import { work } from '../plugins/sdk/durable/queue-worker.ts';
import { StorageWriteError } from '../plugins/sdk/durable/storage-error.ts';
import { createLog } from '../plugins/sdk/log.ts';
import { ROOT, tempDir, until, sleep } from './helpers/cluster.ts';
import { FaultyFs } from './helpers/faulty-fs.ts';

const Item = z.object({ n: z.number() });
type Item = z.infer<typeof Item>;
const quiet = createLog('test', 'silent');
const open = (dir: string, fs?: FaultyFs) => openQueue('q', Item, { dir, log: quiet, fs, fsync: 'none' });
const ns = (list: Array<{ item: Item }>) => list.map((x) => x.item.n);

async function withQueue(fn: (dir: string, q: DueQueue<Item>) => Promise<void>): Promise<void> {
  const dir = await tempDir('outpost-queue-');
  const q = await open(dir);
  try {
    await fn(dir, q);
  } finally {
    await q.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

test('only due items are leased, earliest first; a leased item is nobody else\'s; ack removes it for good', () =>
  withQueue(async (dir, q) => {
    const now = Date.now();
    await q.schedule({ n: 2 }, now - 1000);
    await q.schedule({ n: 1 }, now - 2000);
    await q.schedule({ n: 3 }, now + 3_600_000);
    assert.deepEqual(ns(q.lease(10, 60_000)), [1, 2]);
    assert.deepEqual(q.lease(10, 60_000), [], 'leased and not-yet-due items are not handed out');
    assert.deepEqual(q.counts(), { pending: 1, leased: 2 });
    const next = q.nextDueAt()!;
    assert.ok(next >= now + 60_000 && next < now + 3_600_000, 'next: the leases running out, before the future item');
    assert.equal(q.get('q_1')?.item.n, 2);
    assert.equal(await q.ack('q_1'), true);
    assert.equal(await q.ack('q_1'), false);
    await q.close();
    const again = await open(dir);
    // The lease on n=1 died with the process: available again. n=2 was acked.
    assert.deepEqual(ns(again.lease(10, 60_000)), [1]);
    assert.deepEqual({ ...again.get('q_3')?.item }, { n: 3 });
    await again.close();
  }));

test('items sharing a key go one at a time, in schedule order, also across a failure with backoff; other keys go on', () =>
  withQueue(async (dir, q) => {
    const past = Date.now() - 1000;
    for (const [n, key] of [[1, 'a'], [2, 'a'], [3, 'b'], [4, 'a'], [5, undefined]] as const) await q.schedule({ n }, past + n, key ? { key } : {});
    const first = q.lease(10, 60_000);
    assert.deepEqual(ns(first), [1, 3, 5], 'only the head of each lane');
    const a1 = first[0];
    assert.equal(await q.fail(a1.id, 3_600_000, { token: a1.token, error: 'receiver answered HTTP 503' }), true);
    assert.deepEqual(q.lease(10, 60_000), [], 'a failed head holds its lane back until its backoff is over');
    assert.equal(q.get(a1.id)?.attempts, 1);
    assert.equal(q.get(a1.id)?.lastError, 'receiver answered HTTP 503');
    // Reopened: lanes, attempts and errors come back as they were.
    await q.close();
    const r = await open(dir);
    assert.deepEqual(ns(r.lease(10, 60_000)), [3, 5]);
    const head = r.get(a1.id)!;
    assert.equal(head.attempts, 1);
    assert.ok(head.dueAt > Date.now() + 3_000_000);
    assert.equal(await r.fail(a1.id, 0), true);
    const again = r.lease(10, 60_000);
    assert.deepEqual(ns(again), [1]);
    await r.ack(again[0].id, again[0].token);
    assert.deepEqual(ns(r.lease(10, 60_000)), [2]);
    await r.close();
  }));

test('items() lists what is on disk in schedule order; reschedule moves a waiting head to now, not a leased one; a checkpoint lands with its batch', () =>
  withQueue(async (dir, q) => {
    const later = Date.now() + 3_600_000;
    await q.scheduleMany([{ item: { n: 1 }, dueAt: later, key: 'a' }, { item: { n: 2 }, dueAt: Date.now(), key: 'a' }, { item: { n: 3 }, dueAt: Date.now() }], { checkpoint: 7 });
    assert.equal(q.checkpoint(), 7);
    assert.deepEqual([...q.items()].map((x) => x.item.n), [1, 2, 3]);
    assert.deepEqual(ns(q.lease(10, 60_000)), [3], 'the lane waits for its head, due in an hour');
    const head = [...q.items()][0];
    assert.equal(await q.reschedule(head.id, Date.now()), true);
    const now = q.lease(10, 60_000);
    assert.deepEqual(ns(now), [1]);
    assert.equal(await q.reschedule(now[0].id, Date.now()), false, 'a leased item keeps its lease');
    assert.equal(await q.reschedule('q_nope', Date.now()), false);
    // A lower checkpoint never moves it back; an empty batch with a higher one still stores it.
    await q.scheduleMany([], { checkpoint: 3 });
    assert.equal(q.checkpoint(), 7);
    await q.scheduleMany([], { checkpoint: 9 });
    await q.close();
    const again = await open(dir);
    assert.equal(again.checkpoint(), 9);
    assert.deepEqual([...again.items()].map((x) => x.item.n), [1, 2, 3], 'order survives a reload');
    assert.equal(again.get(head.id)?.attempts, 0, 'reschedule is not a failed attempt');
    await again.compact();
    await again.close();
    const compacted = await open(dir);
    assert.equal(compacted.checkpoint(), 9, 'the checkpoint survives compaction');
    assert.deepEqual([...compacted.items()].map((x) => x.item.n), [1, 2, 3]);
    await compacted.close();
  }));

test('an expired lease makes the item available again; the old holder\'s token is refused; renew keeps a lease', () =>
  withQueue(async (_dir, q) => {
    await q.schedule({ n: 1 }, Date.now() - 1);
    const [first] = q.lease(1, 1);
    const second = await until('the lease ran out and the item is leased again', () => q.lease(1, 60_000)[0]);
    assert.equal(second.id, first.id);
    assert.notEqual(second.token, first.token);
    assert.equal(q.renew(first.id, first.token, 60_000), false);
    assert.equal(await q.fail(first.id, 0, { token: first.token }), false, 'a late failure from the lost lease changes nothing');
    assert.equal(await q.ack(first.id, first.token), false, 'nor does a late ack');
    assert.equal(q.renew(second.id, second.token, 120_000), true);
    assert.equal(await q.ack(second.id, second.token), true);
    assert.deepEqual(q.counts(), { pending: 0, leased: 0 });
  }));

test('cancel removes a waiting or a leased item and lets its lane move on; own ids make scheduling idempotent', () =>
  withQueue(async (dir, q) => {
    const past = Date.now() - 1000;
    const [t1, t1again, t2] = await q.scheduleMany([
      { item: { n: 1 }, dueAt: past, key: 'k', id: 'task-1' },
      { item: { n: 99 }, dueAt: past, key: 'k', id: 'task-1' },
      { item: { n: 2 }, dueAt: past, key: 'k', id: 'task-2' },
    ]);
    assert.deepEqual([t1, t1again, t2], ['task-1', 'task-1', 'task-2']);
    assert.deepEqual((await q.schedule({ n: 5 }, past, { id: 'task-1' })), 'task-1');
    assert.equal(q.counts().pending, 2);
    const [leased] = q.lease(5, 60_000);
    assert.equal(leased.id, 'task-1');
    assert.equal(await q.cancel('task-1'), true);
    assert.equal(await q.ack('task-1', leased.token), false, 'acking a cancelled item is refused');
    assert.deepEqual(ns(q.lease(5, 60_000)), [2]);
    assert.equal(await q.cancel('task-2'), true);
    assert.equal(await q.cancel('task-2'), false);
    await q.close();
    const r = await open(dir);
    assert.deepEqual(r.counts(), { pending: 0, leased: 0 });
    await assert.rejects(r.schedule({ n: 1 }, NaN), /dueAt must be a time/);
    await assert.rejects(r.schedule({ n: 'x' } as unknown as Item, 0), /record does not match its schema/);
    await r.close();
  }));

test('ids are never reused, also once compaction has dropped the items that had the highest ones', async () => {
  const dir = await tempDir('outpost-queue-ids-');
  try {
    const q = await open(dir);
    const ids = await q.scheduleMany([1, 2, 3].map((n) => ({ item: { n }, dueAt: 0 })));
    await q.ack(ids[1]);
    await q.ack(ids[2]);
    await q.compact();
    await q.close();
    const r = await open(dir);
    const next = await r.schedule({ n: 4 }, 0);
    assert.ok(!ids.includes(next), `${next} is new`);
    await r.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('work(): handlers run as items fall due, failures come back after the backoff, each lane stays in order', () =>
  withQueue(async (_dir, q) => {
    const seen: number[] = [];
    const fails = new Map<number, number>([[1, 2]]);
    const w = work(
      q,
      async (it) => {
        seen.push(it.item.n);
        const left = fails.get(it.item.n) ?? 0;
        if (left > 0) {
          fails.set(it.item.n, left - 1);
          throw new Error('not yet');
        }
      },
      { concurrency: 4, leaseMs: 60_000, backoff: () => 5 },
    );
    const soon = Date.now() + 20;
    await q.scheduleMany([1, 2, 3].map((n) => ({ item: { n }, dueAt: soon, key: 'lane' })));
    await q.schedule({ n: 10 }, soon + 10);
    await until('all handled', () => q.counts().pending + q.counts().leased === 0 && seen.length === 6);
    await w.stop();
    assert.deepEqual(seen.filter((n) => n < 10), [1, 1, 1, 2, 3], 'the lane waited for its failing head');
    assert.ok(seen.includes(10));
  }));

test('disk full: schedule rejects with a StorageWriteError and keeps nothing; the queue goes on once space returns', async () => {
  const dir = await tempDir('outpost-queue-full-');
  const fs = new FaultyFs();
  const q = await open(dir, fs);
  try {
    await q.schedule({ n: 1 }, 0);
    fs.free = 5;
    const err = await q.schedule({ n: 2 }, 0).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof StorageWriteError && err.full, String(err));
    assert.deepEqual(ns(q.lease(10, 60_000)), [1], 'the refused item is not in the queue');
    fs.free = Infinity;
    await q.schedule({ n: 3 }, 0);
    await q.close();
    const r = await open(dir);
    assert.deepEqual(ns(r.lease(10, 60_000)), [1, 3]);
    await r.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('kill -9 while scheduling, acking and failing: every acknowledged schedule is there, every acknowledged ack gone, leases free', async (t) => {
  const dir = await tempDir('outpost-queue-kill-');
  try {
    /** What the child was told: scheduled (and not leased since), leased (outcome unknown until A or F), acked. */
    const state = new Map<string, 'scheduled' | 'leased' | 'acked'>();
    const attempts = new Map<string, number>();
    const reused: string[] = [];
    for (let round = 0; round < 5; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/fixtures/queue-child.ts'), dir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      let buf = '';
      let lines = 0;
      const exited = new Promise((r) => child.on('exit', r));
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const parts = buf.split('\n');
        buf = parts.pop()!;
        for (const line of parts) {
          const [op, id, n] = line.split(' ');
          lines += 1;
          if (op === 'S') {
            if (state.has(id)) reused.push(id);
            state.set(id, 'scheduled');
          }
          else if (op === 'L') state.set(id, 'leased');
          else if (op === 'A') state.set(id, 'acked');
          else if (op === 'F') {
            state.set(id, 'scheduled');
            attempts.set(id, Math.max(attempts.get(id) ?? 0, Number(n)));
          }
        }
      });
      // Let it run a varying while, then kill it mid-work.
      const target = 200 + round * 150;
      await until('the child is working', () => lines >= target, 60_000, 5);
      child.kill('SIGKILL');
      await exited;
    }
    const q = await open(dir);
    try {
      const live = [...state].filter(([, s]) => s === 'scheduled').map(([id]) => id);
      const acked = [...state].filter(([, s]) => s === 'acked').map(([id]) => id);
      for (const id of live) assert.ok(q.get(id), `scheduled ${id} is still queued`);
      for (const id of acked) assert.equal(q.get(id), undefined, `acked ${id} stays gone`);
      for (const [id, n] of attempts) if (state.get(id) === 'scheduled') assert.ok(q.get(id)!.attempts >= n, `${id}: ${n} recorded failures`);
      assert.deepEqual(reused, [], 'an id is never handed out twice, also after compaction dropped the item that had it');
      // No lease survives the process: everything due can be leased (lanes give one item each).
      const leasable = q.lease(1_000_000, 60_000).length;
      assert.equal(q.counts().leased, leasable);
      t.diagnostic(`${state.size} items scheduled over 5 lives, ${acked.length} acked, ${live.length} (possibly more) left; ${q.counts().pending + q.counts().leased} in the queue`);
    } finally {
      await q.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
