/**
 * The storage contract: what every backend of the SDK's store, log and queue must do, as one suite.
 * `npm test` runs it on files (test/store-contract.test.ts); the e2e run on a real PostgreSQL
 * (test/e2e/store-postgres.e2e.ts). Everything is opened through the SDK's own entry points
 * (openStore, openLog, openQueue) on a data dir: a PostgreSQL place is a dir mounted on a database.
 *
 * Some tests need what only a shared backend has (two processes on one store: a second controller);
 * they run where `shared` says so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { onRemoteChange, openStore, type RemoteChange, type Store } from '../../plugins/sdk/store.ts';
import { onRemoteAppend, openLog, refreshLog, type LogOptions } from '../../plugins/sdk/durable/log.ts';
import { Counters as CountersLog, Rec } from './counters-log.ts';
import { openQueue, type DueQueue } from '../../plugins/sdk/durable/queue.ts';
import { openHistory } from '../../plugins/sdk/durable/history.ts';
import { work } from '../../plugins/sdk/durable/queue-worker.ts';
import { StorageConflictError, StorageWriteError } from '../../plugins/sdk/durable/storage-error.ts';
import type { LogFs } from '../../plugins/sdk/durable/files.ts';
import { createLog, type Log } from '../../plugins/sdk/log.ts';
import { ROOT, until } from './cluster.ts';

/** A data dir on the backend under test, empty when made. */
export interface Place {
  dir: string;
  /** Options every log and queue here is opened with (files: a faulty file system to fill up). */
  logOpts: { fs?: LogFs; fsync?: 'none' };
  /** Makes writes fail (files: a full disk; PostgreSQL: the server stopped) until heal(). */
  break(): Promise<void>;
  heal(): Promise<void>;
  /** Environment for a child process that opens this place (test/fixtures/queue-child.ts). */
  env: Record<string, string>;
  close(): Promise<void>;
}

export interface Backend {
  name: string;
  /** Several processes can open the same data at once (a second controller on the database). */
  shared: boolean;
  /** break() also makes store commits fail (a file store has no injectable file system). */
  breaksStores: boolean;
  place(): Promise<Place>;
  /** Another process's view of a place's data (shared backends). */
  peer?(place: Place): Promise<Place>;
}

const quiet: Log = createLog('contract', 'silent');
type Closable<T extends object> = Store<T> & { close?(): Promise<void> };
const closeStore = (s: Closable<object>) => s.close?.();

/** Counters in a place: its log options (a faulty file system for files) under the test's own. */
const Counters = {
  open: (p: Place, opts: Partial<LogOptions<Rec>> = {}) => CountersLog.open(p.dir, { log: quiet, ...p.logOpts, ...opts }),
};

const Item = z.object({ n: z.number() });
type Item = z.infer<typeof Item>;
/** Data read back has objects without prototypes; compare it as JSON. */
const plain = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;
const ns = (list: Array<{ item: Item }>) => list.map((x) => x.item.n);
const openQ = (p: Place) => openQueue('q', Item, { dir: p.dir, log: quiet, ...p.logOpts });

async function withPlace(b: Backend, fn: (p: Place) => Promise<void>): Promise<void> {
  const p = await b.place();
  try {
    await fn(p);
  } finally {
    await p.close();
  }
}

async function withQueue(b: Backend, fn: (p: Place, q: DueQueue<Item>) => Promise<void>): Promise<void> {
  await withPlace(b, async (p) => {
    const q = await openQ(p);
    try {
      await fn(p, q);
    } finally {
      await q.close().catch(() => undefined);
    }
  });
}

export function storeContract(b: Backend): void {
  const t = (name: string, fn: () => Promise<void>, opts: { skip?: string | false } = {}) => test(`[${b.name}] ${name}`, { skip: opts.skip }, fn);
  const sharedOnly = b.shared ? false : 'needs a backend shared between processes';

  // ---- stores ----

  t('store: update applies at once, resolves with its result once stored; reopened, the data is there with new defaults filled in', () =>
    withPlace(b, async (p) => {
      const s = await openStore<{ nodes: Record<string, { name: string; n: number }>; admin: string | null; list: number[] }>(p.dir, 'things', { nodes: {}, admin: null, list: [] });
      const r = s.update((d) => {
        d.nodes.a = { name: 'a', n: 1 };
        d.admin = 'hash';
        d.list.push(1, 2);
        return 'done';
      });
      assert.equal(s.data.nodes.a.n, 1, 'memory first');
      assert.equal(await r, 'done');
      await s.update((d) => {
        delete d.nodes.a;
        d.nodes.b = { name: 'b', n: 2 };
      });
      await closeStore(s);
      const again = await openStore<{ nodes: Record<string, { name: string; n: number }>; admin: string | null; list: number[]; added: Record<string, number> }>(p.dir, 'things', { nodes: {}, admin: null, list: [], added: {} });
      assert.deepEqual(plain(again.data.nodes), { b: { name: 'b', n: 2 } });
      assert.equal(again.data.admin, 'hash');
      assert.deepEqual(again.data.list, [1, 2]);
      assert.deepEqual(plain(again.data.added), {}, 'a field added to the defaults since');
      assert.equal(Object.getPrototypeOf(again.data.nodes), null, 'maps keyed by ids have no prototype');
      await closeStore(again);
    }));

  t('store: group commit: updates of one turn and those made while a commit is in flight all land, in order', () =>
    withPlace(b, async (p) => {
      const s = await openStore<{ seen: Record<string, number>; count: number; order: number[] }>(p.dir, 'gc', { seen: {}, count: 0, order: [] });
      const all: Array<Promise<number>> = [];
      for (let i = 0; i < 200; i++) {
        all.push(
          s.update((d) => {
            d.seen[`k${i}`] = i;
            d.count += 1;
            d.order.push(i);
            return d.count;
          }),
        );
        if (i === 100) await new Promise((r) => setImmediate(r));
      }
      assert.deepEqual(await Promise.all(all), Array.from({ length: 200 }, (_, i) => i + 1), 'each update saw the ones before it');
      await closeStore(s);
      const again = await openStore<{ seen: Record<string, number>; count: number; order: number[] }>(p.dir, 'gc', { seen: {}, count: 0, order: [] });
      assert.equal(again.data.count, 200);
      assert.equal(Object.keys(again.data.seen).length, 200);
      assert.deepEqual(again.data.order, Array.from({ length: 200 }, (_, i) => i));
      await closeStore(again);
    }));

  t('store: an update naming its touches stores them (entries added, changed, deleted; a plain field); a change beyond them is stored by the next update naming none', () =>
    withPlace(b, async (p) => {
      type D = { nodes: Record<string, { n: number }>; pending: number[]; other: Record<string, number> };
      const s = await openStore<D>(p.dir, 'touched', { nodes: {}, pending: [], other: {} });
      await s.update((d) => Object.assign(d.nodes, { a: { n: 1 }, b: { n: 2 } }));
      const rec = s.data.nodes.a;
      await Promise.all([
        s.update(() => void (rec.n = 10), { touches: [['nodes', 'a']] }),
        s.update((d) => void delete d.nodes.b, { touches: [['nodes', 'b']] }),
        s.update((d) => void (d.nodes.c = { n: 3 }), { touches: [['nodes', 'c'], ['pending']] }),
        s.update((d) => void d.pending.push(7), { touches: [['pending']] }),
      ]);
      // Beyond its touches: not promised by this update, stored by the next one that names none.
      await s.update((d) => {
        d.nodes.c.n = 30;
        d.other.x = 1;
      }, { touches: [['nodes', 'c']] });
      await s.update((d) => void (d.other.y = 2));
      await closeStore(s);
      const again = await openStore<D>(p.dir, 'touched', { nodes: {}, pending: [], other: {} });
      assert.deepEqual(plain(again.data), { nodes: { a: { n: 10 }, c: { n: 30 } }, pending: [7], other: { x: 1, y: 2 } });
      await closeStore(again);
    }));

  t('store: __proto__ and constructor as ids are ordinary entries, stored and read back', () =>
    withPlace(b, async (p) => {
      const s = await openStore<{ byId: Record<string, unknown> }>(p.dir, 'ids', { byId: {} });
      const hostile = JSON.parse('{"__proto__":{"polluted":"yes"},"ok":1}');
      await s.update((d) => {
        d.byId['__proto__'] = hostile;
        d.byId['constructor'] = 2;
      });
      await closeStore(s);
      const again = await openStore<{ byId: Record<string, unknown> }>(p.dir, 'ids', { byId: {} });
      assert.ok(Object.hasOwn(again.data.byId, '__proto__'));
      assert.ok(Object.hasOwn(again.data.byId['__proto__'] as object, '__proto__'));
      assert.equal(again.data.byId['constructor'], 2);
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      await closeStore(again);
    }));

  t(
    'store: a commit that fails is typed and undone in memory; once the storage is back, updates go on and only acknowledged ones are there',
    () =>
      withPlace(b, async (p) => {
        const s = await openStore<{ items: Record<string, number>; nodes: Record<string, { state: string }> }>(p.dir, 'failing', { items: {}, nodes: {} });
        await s.update((d) => {
          d.items.kept = 1;
          d.nodes.a = { state: 'unknown' };
        });
        // Code keeps records it found in the store (the registry does) and changes them in update().
        const held = s.data.nodes.a;
        await p.break();
        let err: unknown;
        try {
          await s.update((d) => {
            d.items.lost = 2;
            held.state = 'up';
          });
        } catch (e) {
          err = e;
        } finally {
          await p.heal();
        }
        assert.ok(err instanceof StorageWriteError, String(err));
        assert.equal(s.data.items.lost, undefined, 'what was refused is not in memory either (it would be written later)');
        assert.equal(held.state, 'unknown', 'a record held by the caller is undone too');
        assert.equal(s.data.nodes.a, held, 'and is still the store\'s record');
        await until('the storage answers again', () => s.update((d) => void (d.items.after = 3)).then(() => true, () => false), 30_000, 200);
        await closeStore(s);
        const again = await openStore<{ items: Record<string, number> }>(p.dir, 'failing', { items: {} });
        assert.deepEqual(plain(again.data.items), { kept: 1, after: 3 });
        await closeStore(again);
      }),
    { skip: b.breaksStores ? false : 'the file store has no injectable file system' },
  );

  t(
    'store: two processes on one store: different entries both land; the same entry conflicts (typed), the loser sees the winner and a retry counts exactly',
    () =>
      withPlace(b, async (p) => {
        const other = await b.peer!(p);
        try {
          type D = { tokens: Record<string, { uses: number }>; other: Record<string, number> };
          const a = await openStore<D>(p.dir, 'shared', { tokens: {}, other: {} });
          await a.update((d) => void (d.tokens.t = { uses: 0 }));
          const c = await openStore<D>(other.dir, 'shared', { tokens: {}, other: {} });
          assert.equal(c.data.tokens.t.uses, 0);
          await Promise.all([a.update((d) => void (d.other.a = 1)), c.update((d) => void (d.other.c = 1))]);
          // The same record from both, each from the value it holds (0): one wins, the other is told
          // and shown the winner's value. At once, as the other's notification could arrive first.
          const both = await Promise.allSettled([a.update((d) => void (d.tokens.t.uses += 1)), c.update((d) => void (d.tokens.t.uses += 1))]);
          const lost = both.filter((r) => r.status === 'rejected');
          assert.equal(lost.length, 1, 'exactly one of the two commits');
          assert.ok(lost[0].reason instanceof StorageConflictError, String(lost[0].reason));
          const loser = both[0].status === 'rejected' ? a : c;
          assert.equal(loser.data.tokens.t.uses, 1, "the loser's memory shows the winner's value");
          assert.equal(c.data.other.a, 1, "and the other process's changes to other entries");
          // Many increments from both, each retried until it lands: the count is exact.
          const inc = async (s: Store<D>) => {
            for (;;) {
              try {
                await s.update((d) => void (d.tokens.t.uses += 1));
                return;
              } catch (e) {
                if (!(e instanceof StorageConflictError)) throw e;
              }
            }
          };
          await Promise.all(Array.from({ length: 20 }, (_, i) => inc(i % 2 ? a : c)));
          await closeStore(a);
          await closeStore(c);
          const again = await openStore<D>(p.dir, 'shared', { tokens: {}, other: {} });
          assert.equal(again.data.tokens.t.uses, 21);
          assert.deepEqual(plain(again.data.other), { a: 1, c: 1 });
          await closeStore(again);
        } finally {
          await other.close();
        }
      }),
    { skip: sharedOnly },
  );

  t(
    "store: a process sees another's commits without writing itself, and its owners are told which entries changed",
    () =>
      withPlace(b, async (p) => {
        const other = await b.peer!(p);
        try {
          type D = { nodes: Record<string, { name: string }>; count: number };
          const a = await openStore<D>(p.dir, 'seen', { nodes: {}, count: 0 });
          const c = await openStore<D>(other.dir, 'seen', { nodes: {}, count: 0 });
          const heard: RemoteChange[] = [];
          onRemoteChange(c, (changes) => heard.push(...changes));
          const held = c.data.nodes;
          await a.update((d) => {
            d.nodes.n1 = { name: 'one' };
            d.count = 1;
          });
          await until('the other process holds the new entry', () => c.data.nodes.n1?.name === 'one' && c.data.count === 1, 10_000, 10);
          assert.equal(c.data.nodes, held, 'taken into the objects already held');
          await until('its owner is told', () => heard.some((h) => h.field === 'nodes' && h.key === 'n1') && heard.some((h) => h.field === 'count' && h.key === undefined), 10_000, 10);
          await a.update((d) => void delete d.nodes.n1);
          await until('a deletion too', () => !('n1' in c.data.nodes), 10_000, 10);
          await closeStore(a);
          await closeStore(c);
        } finally {
          await other.close();
        }
      }),
    { skip: sharedOnly },
  );

  // ---- logs ----

  t('log: records come back in order after a reopen; a record not matching the schema is refused', () =>
    withPlace(b, async (p) => {
      const a = await Counters.open(p);
      for (let i = 0; i < 50; i++) await a.change({ op: 'set', k: `k${i}`, v: i }, { op: 'inc', k: 'n' });
      await assert.rejects(a.log.append([{ op: 'nope' } as unknown as Rec]), /record does not match its schema/);
      await a.log.close();
      const seen: Rec[] = [];
      const r = await openLog('counters', Rec, { dir: p.dir, load: (x) => seen.push(x), snapshot: () => [], log: quiet, ...p.logOpts });
      assert.equal(seen.length, 100);
      assert.deepEqual(seen.slice(0, 3), [{ op: 'set', k: 'k0', v: 0 }, { op: 'inc', k: 'n' }, { op: 'set', k: 'k1', v: 1 }]);
      await r.close();
    }));

  t("log: an owner following remote appends is told nothing about its own records, on every backend", () =>
    withPlace(b, async (p) => {
      const a = await Counters.open(p);
      const heard: Rec[] = [];
      const off = onRemoteAppend(a.log, (recs) => heard.push(...recs));
      for (let i = 0; i < 20; i++) await a.change({ op: 'inc', k: 'n' });
      await refreshLog(a.log);
      await a.log.compact();
      await a.change({ op: 'inc', k: 'n' });
      await refreshLog(a.log);
      assert.deepEqual(heard, []);
      assert.equal(a.values.get('n'), 21);
      off();
      await a.log.close();
    }));

  t(
    "log: two processes appending to one log each take in the other's records once, in record order, and are told; compactions by both lose and double nothing",
    () =>
      withPlace(b, async (p) => {
        const other = await b.peer!(p);
        try {
          // Small compactions, so that both compact many times while the other appends and follows.
          const a = await Counters.open(p, { compactAfterBytes: 1500 });
          const c = await Counters.open(other, { compactAfterBytes: 1500 });
          const heard = { a: [] as Rec[], c: [] as Rec[] };
          onRemoteAppend(a.log, (recs, how) => (how.reset ? (heard.a = [...recs]) : heard.a.push(...recs)));
          onRemoteAppend(c.log, (recs, how) => (how.reset ? (heard.c = [...recs]) : heard.c.push(...recs)));
          const N = 150;
          const run = async (x: CountersLog, k: string) => {
            for (let i = 0; i < N; i += 3) await Promise.all([0, 1, 2].map(() => x.change({ op: 'inc', k: 'n' }, { op: 'inc', k })));
          };
          await Promise.all([run(a, 'a'), run(c, 'c')]);
          await until('each holds both processes\' records', () => a.values.get('n') === 2 * N && c.values.get('n') === 2 * N, 20_000, 10);
          for (const x of [a, c]) assert.deepEqual([x.values.get('a'), x.values.get('c'), x.values.get('n')], [N, N, 2 * N]);
          assert.ok(!heard.a.some((r) => r.op === 'inc' && r.k === 'a'), 'a process is not told its own records');
          assert.ok(heard.c.some((r) => r.op === 'inc' && r.k === 'a'), 'the other is told them');
          assert.ok(a.log.stats().generation + c.log.stats().generation > 2, 'compacted while both appended');
          // One more from each, then a reader that opens the log now sees every record once.
          await a.change({ op: 'set', k: 'last', v: 'a' });
          await until('the other sees the last record', () => c.values.get('last') === 'a', 10_000, 10);
          await c.log.close();
          await a.log.close();
          const r = await Counters.open(p);
          assert.deepEqual([r.values.get('a'), r.values.get('c'), r.values.get('n'), r.values.get('last')], [N, N, 2 * N, 'a']);
          await r.log.close();
        } finally {
          await other.close();
        }
      }),
    { skip: sharedOnly },
  );

  t(
    'log: an exclusive append is refused (typed, nothing kept) when another process appended first; taken in, the retry numbers after it; plain appends of the same batch are kept',
    () =>
      withPlace(b, async (p) => {
        const other = await b.peer!(p);
        try {
          // Each side numbers its records after the highest it holds, appended exclusively: the numbers stay unique.
          const a = await Counters.open(p);
          const c = await Counters.open(other);
          const numberAndAppend = async (x: CountersLog, who: string): Promise<number> => {
            for (let attempt = 0; ; attempt++) {
              const n = [...x.values.keys()].filter((k) => k.startsWith('#')).length + 1;
              const rec: Rec = { op: 'set', k: `#${n}`, v: who };
              x.apply(rec);
              try {
                await x.log.append([rec], { exclusive: true });
                return attempt;
              } catch (err) {
                // Unless the other's record of that number was taken in meanwhile.
                if (x.values.get(rec.k) === who) x.values.delete(rec.k);
                if (!(err instanceof StorageConflictError)) throw err;
                await refreshLog(x.log);
              }
            }
          };
          const retries: number[] = [];
          for (let i = 0; i < 20; i++) {
            const [ra, rc] = await Promise.all([numberAndAppend(a, 'a'), numberAndAppend(c, 'c'), c.change({ op: 'inc', k: 'plain' })]);
            retries.push(ra, rc);
          }
          assert.ok(retries.some((r) => r > 0), 'some appends raced and were retried');
          await refreshLog(a.log);
          await refreshLog(c.log);
          const numbered = (x: CountersLog) => [...x.values].filter(([k]) => k.startsWith('#')).sort(([k1], [k2]) => Number(k1.slice(1)) - Number(k2.slice(1)));
          assert.equal(numbered(a).length, 40, 'every record under a number of its own');
          assert.deepEqual(numbered(a), numbered(c));
          assert.equal(a.values.get('plain'), 20, 'plain appends sharing a refused batch are kept');
          await a.log.close();
          await c.log.close();
        } finally {
          await other.close();
        }
      }),
    { skip: sharedOnly },
  );

  t('log: appends of one turn share a write and all resolve; concurrent callers keep their order', () =>
    withPlace(b, async (p) => {
      const a = await Counters.open(p);
      await Promise.all(Array.from({ length: 300 }, (_, i) => a.change({ op: 'set', k: 'last', v: i }, { op: 'inc', k: 'n' })));
      await a.log.close();
      const b2 = await Counters.open(p);
      assert.equal(b2.values.get('n'), 300);
      assert.equal(b2.values.get('last'), 299, 'the last appended is the last replayed');
      await b2.log.close();
    }));

  t('log: compaction replaces the records with a snapshot; appends during it count once; the state reloads the same', () =>
    withPlace(b, async (p) => {
      const a = await Counters.open(p);
      for (let i = 0; i < 20; i++) await a.change({ op: 'inc', k: 'n' });
      const gen = a.log.stats().generation;
      const compacting = a.log.compact();
      const during = Promise.all(Array.from({ length: 10 }, () => a.change({ op: 'inc', k: 'n' })));
      await Promise.all([compacting, during]);
      assert.ok(a.log.stats().generation > gen);
      for (let i = 0; i < 5; i++) await a.change({ op: 'inc', k: 'n' });
      await a.log.close();
      const r = await Counters.open(p);
      assert.equal(r.values.get('n'), 35, 'no increment lost or counted twice');
      await r.log.compact();
      await r.log.close();
      const r2 = await Counters.open(p);
      assert.equal(r2.values.get('n'), 35);
      await r2.log.close();
    }));

  t('log: compaction by size happens by itself, in the background', () =>
    withPlace(b, async (p) => {
      const a = await Counters.open(p, { compactAfterBytes: 2000 });
      for (let i = 0; i < 200; i++) await a.change({ op: 'set', k: `k${i % 10}`, v: 'x'.repeat(20) }, { op: 'inc', k: 'n' });
      await until('a compaction', () => a.log.stats().generation >= 1);
      await a.log.close();
      const r = await Counters.open(p);
      assert.equal(r.values.get('n'), 200);
      assert.ok(r.log.stats().loaded.records < 400, `reloaded from a snapshot (${r.log.stats().loaded.records} records)`);
      await r.log.close();
    }));

  t('log: a failed append is typed and keeps nothing of its batch; appends resume when the storage is back; nothing acknowledged is lost', () =>
    withPlace(b, async (p) => {
      const a = await Counters.open(p);
      for (let i = 0; i < 5; i++) await a.change({ op: 'set', k: `ok${i}`, v: i });
      await p.break();
      let err: unknown;
      try {
        err = await a.log.append([{ op: 'set', k: 'lost', v: 'x'.repeat(40) }, { op: 'inc', k: 'lost-n' }]).then(() => undefined, (e: unknown) => e);
      } finally {
        await p.heal();
      }
      assert.ok(err instanceof StorageWriteError, String(err));
      await until('appends go through again', () => a.log.append([{ op: 'set', k: 'ok5', v: 5 }]).then(() => true, () => false), 30_000, 200);
      await a.log.close();
      const r = await Counters.open(p);
      for (let i = 0; i <= 5; i++) assert.equal(r.values.get(`ok${i}`), i);
      assert.equal(r.values.get('lost'), undefined, 'the refused batch left nothing');
      assert.equal(r.values.get('lost-n'), undefined);
      await r.log.close();
    }));

  t('log: __proto__ keys in records are plain data through append, reload and compaction, never a prototype (read back without prototypes, like the stores)', () =>
    withPlace(b, async (p) => {
      const hostile = JSON.parse('{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"ok":1}');
      const a = await Counters.open(p);
      await a.change({ op: 'set', k: '__proto__', v: hostile });
      await a.log.close();
      for (const compactFirst of [false, true]) {
        const r = await Counters.open(p);
        const v = r.values.get('__proto__') as Record<string, unknown>;
        assert.ok(Object.hasOwn(v, '__proto__'), 'an own key, as written');
        assert.deepEqual(Object.keys(v), ['__proto__', 'constructor', 'ok']);
        assert.equal(Object.getPrototypeOf(v), null);
        // Even a copy by assignment keeps it an ordinary key.
        assert.equal(Object.getPrototypeOf(Object.assign(Object.create(null), v)), null);
        assert.equal(({} as Record<string, unknown>).polluted, undefined);
        if (compactFirst) await r.log.compact();
        await r.log.close();
      }
    }));

  // ---- histories ----

  t('history: appends come back as the tail, oldest first, after a reopen too; old records go once it outgrows its bound', () =>
    withPlace(b, async (p) => {
      const h = await openHistory<{ i: number; pad: string }>(p.dir, 'done', { maxBytes: 2000 });
      await Promise.all([0, 1, 2].map((i) => h.append([{ i, pad: 'x'.repeat(40) }])));
      for (let i = 3; i < 100; i++) await h.append([{ i, pad: 'x'.repeat(40) }]);
      const tail = await h.tail(500);
      assert.ok(tail.length >= 5 && tail.length <= 10, `about 500 bytes of records (${tail.length})`);
      assert.deepEqual(tail.map((r) => r.i), Array.from({ length: tail.length }, (_, k) => 100 - tail.length + k));
      const again = await openHistory<{ i: number; pad: string }>(p.dir, 'done', { maxBytes: 2000 });
      assert.deepEqual(await again.tail(500), tail);
      const all = await again.tail(1e9);
      assert.ok(all.length < 100 && all.length >= 20, `bounded (${all.length} of 100 kept)`);
      assert.equal(all.at(-1)!.i, 99);
    }));

  // ---- queues ----

  t("queue: only due items are leased, earliest first; a leased item is nobody else's; ack removes it for good", () =>
    withQueue(b, async (p, q) => {
      const now = Date.now();
      await q.schedule({ n: 2 }, now - 1000);
      await q.schedule({ n: 1 }, now - 2000);
      await q.schedule({ n: 3 }, now + 3_600_000);
      assert.deepEqual(ns(await q.lease(10, 60_000)), [1, 2]);
      assert.deepEqual(await q.lease(10, 60_000), [], 'leased and not-yet-due items are not handed out');
      assert.deepEqual(await q.counts(), { pending: 1, leased: 2 });
      const next = (await q.nextDueAt())!;
      assert.ok(next >= now + 60_000 && next < now + 3_600_000, 'next: the leases running out, before the future item');
      assert.equal((await q.get('q_1'))?.item.n, 2);
      assert.equal(await q.ack('q_1'), true);
      assert.equal(await q.ack('q_1'), false);
      await q.close();
      const again = await openQ(p);
      // The lease on n=1 ended with its holder: available again. n=2 was acked.
      assert.deepEqual(ns(await again.lease(10, 60_000)), [1]);
      assert.deepEqual(plain((await again.get('q_3'))?.item), { n: 3 });
      await again.close();
    }));

  t('queue: items sharing a key go one at a time, in schedule order, also across a failure with backoff; other keys go on', () =>
    withQueue(b, async (p, q) => {
      const past = Date.now() - 1000;
      for (const [n, key] of [[1, 'a'], [2, 'a'], [3, 'b'], [4, 'a'], [5, undefined]] as const) await q.schedule({ n }, past + n, key ? { key } : {});
      const first = await q.lease(10, 60_000);
      assert.deepEqual(ns(first), [1, 3, 5], 'only the head of each lane');
      const a1 = first[0];
      assert.equal(await q.fail(a1.id, 3_600_000, { token: a1.token, error: 'receiver answered HTTP 503' }), true);
      assert.deepEqual(await q.lease(10, 60_000), [], 'a failed head holds its lane back until its backoff is over');
      assert.equal((await q.get(a1.id))?.attempts, 1);
      assert.equal((await q.get(a1.id))?.lastError, 'receiver answered HTTP 503');
      await q.close();
      const r = await openQ(p);
      assert.deepEqual(ns(await r.lease(10, 60_000)), [3, 5]);
      const head = (await r.get(a1.id))!;
      assert.equal(head.attempts, 1);
      assert.ok(head.dueAt > Date.now() + 3_000_000);
      assert.equal(await r.fail(a1.id, 0), true);
      const again = await r.lease(10, 60_000);
      assert.deepEqual(ns(again), [1]);
      await r.ack(again[0].id, again[0].token);
      assert.deepEqual(ns(await r.lease(10, 60_000)), [2]);
      await r.close();
    }));

  t('queue: items() lists what is stored in schedule order; reschedule moves a waiting head to now, not a leased one; a checkpoint lands with its batch', () =>
    withQueue(b, async (p, q) => {
      const later = Date.now() + 3_600_000;
      await q.scheduleMany([{ item: { n: 1 }, dueAt: later, key: 'a' }, { item: { n: 2 }, dueAt: Date.now(), key: 'a' }, { item: { n: 3 }, dueAt: Date.now() }], { checkpoint: 7 });
      assert.equal(q.checkpoint(), 7);
      assert.deepEqual(ns(await q.items()), [1, 2, 3]);
      assert.deepEqual(ns(await q.lease(10, 60_000)), [3], 'the lane waits for its head, due in an hour');
      const [head] = await q.items();
      assert.equal(await q.reschedule(head.id, Date.now()), true);
      const now = await q.lease(10, 60_000);
      assert.deepEqual(ns(now), [1]);
      assert.equal(await q.reschedule(now[0].id, Date.now()), false, 'a leased item keeps its lease');
      assert.equal(await q.reschedule('q_nope', Date.now()), false);
      await assert.rejects(q.reschedule(head.id, NaN), /dueAt must be a time/);
      // A lower checkpoint never moves it back; an empty batch with a higher one still stores it.
      await q.scheduleMany([], { checkpoint: 3 });
      assert.equal(q.checkpoint(), 7);
      await q.scheduleMany([], { checkpoint: 9, sync: false });
      await assert.rejects(q.scheduleMany([], { checkpoint: NaN }), /checkpoint must be a number/);
      await q.close();
      const again = await openQ(p);
      assert.equal(again.checkpoint(), 9);
      assert.deepEqual(ns(await again.items()), [1, 2, 3], 'order survives a reopen');
      assert.equal((await again.get(head.id))?.attempts, 0, 'reschedule is not a failed attempt');
      await again.compact();
      await again.close();
      const compacted = await openQ(p);
      assert.equal(compacted.checkpoint(), 9, 'the checkpoint survives compaction');
      assert.deepEqual(ns(await compacted.items()), [1, 2, 3]);
      await compacted.close();
    }));

  t("queue: an expired lease makes the item available again; the old holder's token is refused; renew keeps a lease", () =>
    withQueue(b, async (_p, q) => {
      await q.schedule({ n: 1 }, Date.now() - 1);
      const [first] = await q.lease(1, 1);
      const second = await until('the lease ran out and the item is leased again', async () => (await q.lease(1, 60_000))[0]);
      assert.equal(second.id, first.id);
      assert.notEqual(second.token, first.token);
      assert.equal(await q.renew(first.id, first.token, 60_000), false);
      assert.equal(await q.fail(first.id, 0, { token: first.token }), false, 'a late failure from the lost lease changes nothing');
      assert.equal(await q.ack(first.id, first.token), false, 'nor does a late ack');
      assert.equal(await q.renew(second.id, second.token, 120_000), true);
      assert.equal(await q.ack(second.id, second.token), true);
      assert.deepEqual(await q.counts(), { pending: 0, leased: 0 });
    }));

  t('queue: cancel removes a waiting or a leased item and lets its lane move on; own ids make scheduling idempotent', () =>
    withQueue(b, async (p, q) => {
      const past = Date.now() - 1000;
      const [t1, t1again, t2] = await q.scheduleMany([
        { item: { n: 1 }, dueAt: past, key: 'k', id: 'task-1' },
        { item: { n: 99 }, dueAt: past, key: 'k', id: 'task-1' },
        { item: { n: 2 }, dueAt: past, key: 'k', id: 'task-2' },
      ]);
      assert.deepEqual([t1, t1again, t2], ['task-1', 'task-1', 'task-2']);
      assert.deepEqual(await q.schedule({ n: 5 }, past, { id: 'task-1' }), 'task-1');
      assert.equal((await q.counts()).pending, 2);
      const [leased] = await q.lease(5, 60_000);
      assert.equal(leased.id, 'task-1');
      assert.equal(leased.item.n, 1, 'the first item with an id is the one kept');
      assert.equal(await q.cancel('task-1'), true);
      assert.equal(await q.ack('task-1', leased.token), false, 'acking a cancelled item is refused');
      assert.deepEqual(ns(await q.lease(5, 60_000)), [2]);
      assert.equal(await q.cancel('task-2'), true);
      assert.equal(await q.cancel('task-2'), false);
      await q.close();
      const r = await openQ(p);
      assert.deepEqual(await r.counts(), { pending: 0, leased: 0 });
      await assert.rejects(r.schedule({ n: 1 }, NaN), /dueAt must be a time/);
      await assert.rejects(r.schedule({ n: 'x' } as unknown as Item, 0), /record does not match its schema/);
      await r.close();
    }));

  t('queue: ids are never reused, also once the items that had the highest ones are gone', () =>
    withQueue(b, async (p, q) => {
      const ids = await q.scheduleMany([1, 2, 3].map((n) => ({ item: { n }, dueAt: 0 })));
      await q.ack(ids[1]);
      await q.ack(ids[2]);
      await q.compact();
      await q.close();
      const r = await openQ(p);
      const next = await r.schedule({ n: 4 }, 0);
      assert.ok(!ids.includes(next), `${next} is new`);
      // A caller's own id that looks like a generated one keeps it; the generated one steps aside.
      const own = await r.schedule({ n: 5 }, 0, { id: `q_${(parseInt(next.slice(2), 36) + 1).toString(36)}` });
      const gen = await r.schedule({ n: 6 }, 0);
      assert.notEqual(gen, own);
      await r.close();
    }));

  t('queue: work() runs handlers as items fall due, failures come back after the backoff, each lane stays in order', () =>
    withQueue(b, async (_p, q) => {
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
      await until('all handled', async () => {
        const c = await q.counts();
        return c.pending + c.leased === 0 && seen.length === 6;
      });
      await w.stop();
      assert.deepEqual(seen.filter((n) => n < 10), [1, 1, 1, 2, 3], 'the lane waited for its failing head');
      assert.ok(seen.includes(10));
    }));

  t('queue: a failed schedule is typed and keeps nothing; the queue goes on once the storage is back', () =>
    withQueue(b, async (p, q) => {
      await q.schedule({ n: 1 }, 0);
      await p.break();
      let err: unknown;
      try {
        err = await q.schedule({ n: 2 }, 0).then(() => undefined, (e: unknown) => e);
      } finally {
        await p.heal();
      }
      assert.ok(err instanceof StorageWriteError, String(err));
      await until('schedules go through again', () => q.schedule({ n: 3 }, 0).then(() => true, () => false), 30_000, 200);
      assert.deepEqual(ns(await q.lease(10, 60_000)), [1, 3], 'the refused item is not in the queue');
      await q.close();
      const r = await openQ(p);
      assert.deepEqual(ns(await r.lease(10, 60_000)), [1, 3]);
      await r.close();
    }));

  t('queue: kill -9 while scheduling, acking and failing: every acknowledged schedule is there, every acknowledged ack gone, leases free', () =>
    withPlace(b, async (p) => {
      const state = new Map<string, 'scheduled' | 'leased' | 'acked'>();
      const attempts = new Map<string, number>();
      const reused: string[] = [];
      for (let round = 0; round < 5; round++) {
        // Outside the place: a PostgreSQL place's dir is only a name.
        const progress = join(tmpdir(), `outpost-queue-child-${process.pid}-${Date.now()}-${round}.log`);
        const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/fixtures/queue-child.ts'), p.dir, progress], { cwd: ROOT, env: { ...process.env, ...p.env }, stdio: ['ignore', 'ignore', 'inherit'] });
        const exited = new Promise((r) => child.on('exit', r));
        const lines = () => (existsSync(progress) ? readFileSync(progress, 'utf8').split('\n').slice(0, -1) : []);
        const target = 200 + round * 150;
        await until('the child is working', () => lines().length >= target, 60_000, 5);
        child.kill('SIGKILL');
        await exited;
        for (const line of lines()) {
          const [op, id, n] = line.split(' ');
          if (op === 'S') {
            if (state.has(id)) reused.push(id);
            state.set(id, 'scheduled');
          } else if (op === 'L') state.set(id, 'leased');
          else if (op === 'A') state.set(id, 'acked');
          else if (op === 'F') {
            state.set(id, 'scheduled');
            attempts.set(id, Math.max(attempts.get(id) ?? 0, Number(n)));
          }
        }
        rmSync(progress, { force: true });
      }
      const q = await openQ(p);
      try {
        const live = [...state].filter(([, s]) => s === 'scheduled').map(([id]) => id);
        const acked = [...state].filter(([, s]) => s === 'acked').map(([id]) => id);
        for (const id of live) assert.ok(await q.get(id), `scheduled ${id} is still queued`);
        for (const id of acked) assert.equal(await q.get(id), undefined, `acked ${id} stays gone`);
        for (const [id, n] of attempts) if (state.get(id) === 'scheduled') assert.ok((await q.get(id))!.attempts >= n, `${id}: ${n} recorded failures`);
        assert.deepEqual(reused, [], 'an id is never handed out twice');
        // No lease of the killed process survives its restart: everything due can be leased (lanes give one item each).
        const leasable = (await q.lease(1_000_000, 60_000)).length;
        assert.equal((await q.counts()).leased, leasable);
      } finally {
        await q.close();
      }
    }));

  t(
    'queue: two processes leasing one queue never get the same item; lanes hold across them',
    () =>
      withPlace(b, async (p) => {
        const other = await b.peer!(p);
        try {
          const a = await openQ(p);
          const c = await openQ(other);
          const past = Date.now() - 1000;
          await a.scheduleMany(Array.from({ length: 200 }, (_, i) => ({ item: { n: i }, dueAt: past, ...(i % 4 === 0 ? { key: `lane${i % 8}` } : {}) })));
          const got: number[] = [];
          const laneHeld = new Map<string, number>();
          const drain = async (q: DueQueue<Item>) => {
            for (;;) {
              const items = await q.lease(7, 60_000);
              if (items.length === 0) {
                const left = await q.counts();
                if (left.pending + left.leased === 0) return;
                await new Promise((r) => setTimeout(r, 5));
                continue;
              }
              for (const it of items) {
                if (it.key) {
                  assert.equal(laneHeld.get(it.key), undefined, `lane ${it.key} handed out twice at once`);
                  laneHeld.set(it.key, it.item.n);
                }
                got.push(it.item.n);
              }
              await Promise.all(
                items.map(async (it) => {
                  if (it.key) laneHeld.delete(it.key);
                  assert.equal(await q.ack(it.id, it.token), true);
                }),
              );
            }
          };
          await Promise.all([drain(a), drain(c)]);
          assert.equal(got.length, 200);
          assert.equal(new Set(got).size, 200, 'no item twice');
          for (const lane of ['lane0', 'lane4']) {
            const order = got.filter((n) => n % 4 === 0 && `lane${n % 8}` === lane);
            assert.deepEqual(order, [...order].sort((x, y) => x - y), `${lane} in schedule order`);
          }
          await a.close();
          await c.close();
        } finally {
          await other.close();
        }
      }),
    { skip: sharedOnly },
  );
}
