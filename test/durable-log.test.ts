/** The SDK's durable log (plugins/sdk/durable): torn tails, compaction, crashes mid-compaction, a full disk, fsync modes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { z } from 'zod';
import { openLog } from '../plugins/sdk/durable/log.ts';
import { Counters, Rec } from './helpers/counters-log.ts';
import { StorageWriteError, isStorageFull } from '../plugins/sdk/durable/storage-error.ts';
import { StorageHealth } from '../plugins/sdk/durable/health.ts';
import type { Log } from '../plugins/sdk/log.ts';
import { sleep, tempDir, until } from './helpers/cluster.ts';
import { FaultyFs } from './helpers/faulty-fs.ts';

function capture(): { log: Log; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, log: pino<never>({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) }) };
}
const quiet = (): Log => pino<never>({ level: 'silent' });

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir('outpost-log-');
  try {
    await fn(join(dir, 'data'));
  } finally {
    await rm(dir, { recursive: true, force: true, maxRetries: 5 });
  }
}

const journalOf = (dir: string) => join(dir, 'counters.journal.jsonl');
const snapshotOf = (dir: string) => join(dir, 'counters.snapshot.jsonl');

test('records come back in order after a reopen; files are 0600 in a 0700 directory', () =>
  withDir(async (dir) => {
    const a = await Counters.open(dir);
    await a.change({ op: 'set', k: 'x', v: 1 }, { op: 'inc', k: 'n' });
    await Promise.all([a.change({ op: 'inc', k: 'n' }), a.change({ op: 'inc', k: 'n' }), a.change({ op: 'del', k: 'x' })]);
    await a.log.close();
    const b = await Counters.open(dir);
    assert.deepEqual([...b.values], [['n', 3]]);
    assert.equal(b.log.stats().loaded.records, 5);
    assert.equal((await stat(journalOf(dir))).mode & 0o777, 0o600);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    await assert.rejects(b.log.append([{ op: 'set', k: 1 } as unknown as Rec]), /record does not match its schema: k: /);
    await b.log.close();
    await assert.rejects(b.log.append([{ op: 'inc', k: 'n' }]), /closed/);
  }));

test('a torn last record is cut off with a warning; every record before it is kept and appends continue after it', () =>
  withDir(async (dir) => {
    const a = await Counters.open(dir);
    for (let i = 0; i < 5; i++) await a.change({ op: 'inc', k: 'n' });
    await a.log.close();
    const intact = (await stat(journalOf(dir))).size;
    await appendFile(journalOf(dir), '{"op":"inc","k":"n"');
    const { log, lines } = capture();
    const b = await Counters.open(dir, { log });
    assert.equal(b.values.get('n'), 5);
    assert.equal(b.log.stats().loaded.tornBytes, 19);
    assert.ok(lines.some((l) => l.level === 40 && /torn record/.test(String(l.msg)) && l.kept === 5), JSON.stringify(lines));
    assert.equal((await stat(journalOf(dir))).size, intact, 'the torn bytes are gone from the file');
    await b.change({ op: 'inc', k: 'n' });
    await b.log.close();
    const c = await Counters.open(dir);
    assert.equal(c.values.get('n'), 6);
    assert.equal(c.log.stats().loaded.skipped, 0);
    await c.log.close();
  }));

test('an unreadable line in the middle is skipped with a warning, the records around it load', () =>
  withDir(async (dir) => {
    const a = await Counters.open(dir);
    await a.change({ op: 'inc', k: 'n' });
    await a.log.close();
    await appendFile(journalOf(dir), 'not json\n{"op":"bogus"}\n{"op":"inc","k":"n"}\n');
    const { log, lines } = capture();
    const b = await Counters.open(dir, { log });
    assert.equal(b.values.get('n'), 2);
    assert.equal(b.log.stats().loaded.skipped, 2);
    assert.equal(lines.filter((l) => /unreadable record/.test(String(l.msg))).length, 2);
    await b.log.close();
  }));

test('compaction folds the journal into a snapshot; the state reloads the same; the generation advances', () =>
  withDir(async (dir) => {
    const a = await Counters.open(dir, { compactAfterBytes: 2_000 });
    let appended = 0;
    for (let i = 0; i < 300; i++) {
      const recs: Rec[] = [{ op: 'set', k: `k${i % 20}`, v: i }, { op: 'inc', k: 'n' }];
      await a.change(...recs);
      for (const r of recs) appended += Buffer.byteLength(JSON.stringify(r)) + 1;
    }
    // Compactions run in the background, next to the appends; how much the journal holds at the end
    // depends on when the last one started (machine load), but it never holds everything appended.
    await until('compacted twice', () => a.log.stats().generation >= 2);
    const st = a.log.stats();
    assert.ok(st.journalBytes < appended, `journal holds ${st.journalBytes} of the ${appended} bytes appended: it was never cut back`);
    await a.log.compact();
    // compact() first lets a background compaction still under way finish, which advances it too.
    assert.ok(a.log.stats().generation > st.generation, 'an explicit compaction advances the generation');
    const afterCompact = (await readFile(journalOf(dir), 'utf8')).trim().split('\n');
    assert.equal(afterCompact.length, 1, 'only the header is left in the journal');
    await a.change({ op: 'inc', k: 'n' });
    await a.log.close();
    const b = await Counters.open(dir);
    assert.equal(b.values.get('n'), 301);
    assert.equal(b.values.get('k19'), 299);
    assert.equal(b.values.size, 21);
    assert.ok(b.log.stats().loaded.records <= 22, `${b.log.stats().loaded.records} records loaded: the 21 of the snapshot and at most the one appended since`);
    await b.log.close();
  }));

test('crash mid-compaction: a half-written snapshot is discarded; a journal older than its snapshot is not replayed twice', () =>
  withDir(async (dir) => {
    const fs = new FaultyFs();
    const a = await Counters.open(dir, { fs });
    for (let i = 0; i < 10; i++) await a.change({ op: 'inc', k: 'n' });
    // Cut 1: the snapshot's rename fails: nothing changed on disk but a leftover temp file.
    fs.failOnce.set('rename', (p) => p === snapshotOf(dir));
    await assert.rejects(a.log.compact(), (err: unknown) => err instanceof StorageWriteError && /counters snapshot/.test(err.message));
    await writeFile(`${snapshotOf(dir)}.tmp`, '{"$outpostLog":1,"gen":7}\n{"op":"set","k":"n","v":999}\n{"op":"se');
    // Cut 2: the snapshot is in place, but the journal of the new generation cannot be put in place.
    fs.failOnce.set('rename', (p) => p === journalOf(dir));
    await a.log.compact();
    assert.equal(a.log.stats().generation, 1);
    // Appends go on into the old journal, after the byte the snapshot covers up to.
    for (let i = 0; i < 3; i++) {
      fs.failOnce.set('rename', (p) => p === journalOf(dir));
      await a.change({ op: 'inc', k: 'n' });
    }
    // The process "dies" here: on disk, snapshot gen 1 (10 incs) next to the gen 0 journal of 13.
    await a.log.close();
    const onDisk = await readFile(journalOf(dir), 'utf8');
    assert.match(onDisk, /^\{"\$outpostLog":1,"gen":0\}\n/);
    assert.equal(onDisk.trim().split('\n').length, 14);
    assert.match(await readFile(snapshotOf(dir), 'utf8'), /^\{"\$outpostLog":1,"gen":1,"base":0,"cut":\d+\}\n/);
    const b = await Counters.open(dir);
    assert.equal(b.values.get('n'), 13, 'every increment counts once: 10 from the snapshot, 3 from the journal after its cut');
    assert.match(await readFile(journalOf(dir), 'utf8'), /^\{"\$outpostLog":1,"gen":1\}\n(\{"op":"inc","k":"n"\}\n){3}$/, 'open cut the journal');
    await b.change({ op: 'inc', k: 'n' });
    await b.log.close();
    const c = await Counters.open(dir);
    assert.equal(c.values.get('n'), 14);
    await c.log.close();
    await assert.rejects(stat(`${snapshotOf(dir)}.tmp`), /ENOENT/);
  }));

test('records appended while a compaction waits on the disk are not in its snapshot: each counts once', () =>
  withDir(async (dir) => {
    const fs = new FaultyFs();
    const a = await Counters.open(dir, { fs });
    for (let i = 0; i < 10; i++) await a.change({ op: 'inc', k: 'n' });
    // The snapshot goes in, the new journal does not: the next write must first put one in place (it waits on the disk).
    fs.failOnce.set('rename', (p) => p === journalOf(dir));
    await a.log.compact();
    let release!: () => void;
    let held!: () => void;
    const writeStarted = new Promise<void>((r) => (held = r));
    fs.holdOpen = (p) => {
      if (p !== `${journalOf(dir)}.tmp`) return undefined;
      fs.holdOpen = undefined;
      held();
      return new Promise<void>((r) => (release = r));
    };
    const compacting = a.log.compact();
    await writeStarted;
    // These land while that write is under way, between its start and its snapshot.
    const during = Promise.all(Array.from({ length: 5 }, () => a.change({ op: 'inc', k: 'n' })));
    release();
    await Promise.all([compacting, during]);
    assert.equal(a.values.get('n'), 15);
    await a.log.close();
    const b = await Counters.open(dir);
    assert.equal(b.values.get('n'), 15, 'reloaded: no increment counted twice');
    await b.log.close();
  }));

test('disk full: the failing append is typed and cut back, nothing torn stays; appends resume when space returns; nothing acknowledged is lost', () =>
  withDir(async (dir) => {
    const fs = new FaultyFs();
    const health = new StorageHealth();
    const a = await Counters.open(dir, { fs, health });
    const acked: number[] = [];
    for (let i = 0; i < 5; i++) {
      await a.change({ op: 'set', k: `ok${i}`, v: i });
      acked.push(i);
    }
    const before = (await stat(journalOf(dir))).size;
    // Room for half a record: the write is cut short, as at a file-size limit, and the next one fails.
    fs.free = 15;
    const err = await a.change({ op: 'set', k: 'lost', v: 'x'.repeat(40) }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof StorageWriteError, String(err));
    assert.equal(err.code, 'ENOSPC');
    assert.ok(err.full && isStorageFull(err));
    assert.match(err.message, /could not write counters: ENOSPC \(no space left on device\)/);
    assert.equal((await stat(journalOf(dir))).size, before, 'the partial record was cut back');
    assert.deepEqual(health.problems().map((p) => [p.store, p.code]), [['counters', 'ENOSPC']]);
    // Still full: later appends fail the same way, and do not corrupt anything.
    await assert.rejects(a.log.append([{ op: 'inc', k: 'n' }]), /ENOSPC/);
    // An fsync that reports ENOSPC (delayed allocation) fails the batch just the same.
    fs.free = Infinity;
    const b2 = await Counters.open(join(dir, 'sync'), { fs, fsync: 'always' });
    fs.failOnce.set('datasync', () => true);
    await assert.rejects(b2.change({ op: 'inc', k: 'n' }), /ENOSPC/);
    assert.equal((await readFile(join(dir, 'sync', 'counters.journal.jsonl'), 'utf8')).trim().split('\n').length, 1);
    await b2.log.close();
    // Space is back.
    for (let i = 5; i < 8; i++) {
      await a.change({ op: 'set', k: `ok${i}`, v: i });
      acked.push(i);
    }
    assert.deepEqual(health.problems(), []);
    assert.deepEqual(health.errorCounts(), [[{ code: 'ENOSPC' }, 2]]);
    await a.log.close();
    const b = await Counters.open(dir);
    for (const i of acked) assert.equal(b.values.get(`ok${i}`), i, `acknowledged record ok${i}`);
    assert.equal(b.log.stats().loaded.skipped, 0);
    assert.equal(b.log.stats().loaded.tornBytes, 0);
    await b.log.close();
  }));

test('a compaction that does not fit falls back to appending; it is tried again later', () =>
  withDir(async (dir) => {
    const fs = new FaultyFs();
    const { log, lines } = capture();
    const a = await Counters.open(dir, { fs, log, compactAfterBytes: 500 });
    for (let i = 0; i < 10; i++) await a.change({ op: 'set', k: `k${i}`, v: 'v'.repeat(30) });
    await until('a first compaction', () => a.log.stats().generation >= 1);
    const gen = a.log.stats().generation;
    fs.failOnce.set('open', (p) => p.endsWith('.snapshot.jsonl.tmp'));
    for (let i = 0; i < 30; i++) await a.change({ op: 'set', k: `k${i % 12}`, v: 'w'.repeat(30) });
    await until('a later compaction went through', () => a.log.stats().generation > gen);
    assert.ok(lines.some((l) => /compaction failed; the journal keeps growing until the next try/.test(String(l.msg))));
    await a.log.close();
    const b = await Counters.open(dir);
    assert.equal(b.values.get('k11'), 'w'.repeat(30));
    await b.log.close();
  }));

test('fsync modes: always syncs once per group commit, interval only when asked or on its timer, none never', () =>
  withDir(async (dir) => {
    for (const [mode, expected] of [['always', 1], ['interval', 0], ['none', 0]] as const) {
      const fs = new FaultyFs();
      const a = await Counters.open(join(dir, mode), { fs, fsync: mode, fsyncIntervalMs: 3_600_000 });
      const syncsAtOpen = fs.datasyncs;
      // Ten appends in one turn: one write, one fsync.
      const writesBefore = fs.writes;
      await Promise.all(Array.from({ length: 10 }, () => a.change({ op: 'inc', k: 'n' })));
      assert.equal(fs.writes - writesBefore, 1, `${mode}: one write for the turn`);
      assert.equal(fs.datasyncs - syncsAtOpen, expected, `${mode}: fsyncs after a group commit`);
      await a.log.sync();
      assert.equal(fs.datasyncs - syncsAtOpen, mode === 'none' ? 0 : 1, `${mode}: fsyncs after sync()`);
      await a.log.close();
      const b = await Counters.open(join(dir, mode));
      assert.equal(b.values.get('n'), 10);
      await b.log.close();
    }
  }));

test('appends with sync: false under always: written at once, fsynced with the next synced append or by the interval timer', () =>
  withDir(async (dir) => {
    const fs = new FaultyFs();
    const a = await Counters.open(dir, { fs, fsync: 'always', fsyncIntervalMs: 100 });
    const syncs = () => fs.datasyncs;
    const base = syncs();
    const writes = fs.writes;
    await a.log.append([{ op: 'inc', k: 'lazy' }], { sync: false });
    assert.equal(fs.writes - writes, 1, 'written before it resolves');
    assert.equal(syncs() - base, 0, 'not fsynced on its own');
    // A synced append in the same turn as a lazy one: one write, one fsync for both.
    await Promise.all([a.log.append([{ op: 'inc', k: 'lazy' }], { sync: false }), a.log.append([{ op: 'inc', k: 'sync' }])]);
    assert.equal(syncs() - base, 1);
    await a.log.append([{ op: 'inc', k: 'lazy' }], { sync: false });
    await until('the interval timer syncs what lazy appends left', () => syncs() - base === 2, 5_000, 20);
    await sleep(300);
    assert.equal(syncs() - base, 2, 'nothing left to sync: the timer does not fsync again');
    await a.log.close();
    const b = await Counters.open(dir);
    assert.deepEqual([b.values.get('lazy'), b.values.get('sync')], [3, 1]);
    await b.log.close();
  }));

test('read-only open: loads, changes nothing on disk, refuses appends', () =>
  withDir(async (dir) => {
    const a = await Counters.open(dir);
    await a.change({ op: 'inc', k: 'n' });
    await a.log.close();
    await appendFile(journalOf(dir), '{"op":"in');
    const size = (await stat(journalOf(dir))).size;
    const r = await Counters.open(dir, { readOnly: true });
    assert.equal(r.values.get('n'), 1);
    assert.equal((await stat(journalOf(dir))).size, size, 'the torn tail is left for the writer to cut');
    await assert.rejects(r.log.append([{ op: 'inc', k: 'n' }]), /read-only/);
    await r.log.close();
  }));

test('a file that is not a log is refused with a message naming it; bad log names are refused', () =>
  withDir(async (dir) => {
    const a = await Counters.open(dir);
    await a.log.close();
    await writeFile(journalOf(dir), '{"op":"inc","k":"n"}\n');
    await assert.rejects(Counters.open(dir), /counters\.journal\.jsonl is not a log journal \(no header line\)/);
    await assert.rejects(openLog('../escape', Rec, { dir, load: () => undefined, snapshot: () => [] }), /log name "..\/escape" must be/);
  }));
