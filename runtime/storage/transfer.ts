/**
 * Moving a controller's state between a data dir of files and a PostgreSQL database, both ways,
 * losslessly: `outpost store export` (database → a data dir a single lowdb controller can run on)
 * and `outpost store import` (data dir → a fresh database). Nothing here knows what the stores mean:
 * every store, its archived history, every log and every queue is carried by name, so whatever a
 * controller or plugin persists through the SDK moves, plugins added later included.
 *
 * Run with the controllers stopped: both sides are read as they are at that moment. Files a plugin
 * writes by itself rather than through the SDK (e.g. server-stats' sample journal) are left where
 * they are and listed.
 *
 *   <name>.json                                 store `<name>` (a path under the dir: plugins/prober.monitors)
 *   <name>.history.jsonl                        its archived records
 *   <name>.journal.jsonl, <name>.snapshot.jsonl a log, or a queue when its header says so
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { z } from 'zod';
import { openLog } from '../../plugins/sdk/durable/log.ts';
import { readQueueFiles, writeQueueFiles } from '../../plugins/sdk/durable/queue.ts';
import { appendPrivate, privateDir, replacePrivate } from '../../plugins/sdk/files.ts';
import { parseStoredJson } from '../../plugins/sdk/json.ts';
import type { Log } from '../../plugins/sdk/log.ts';
import type { Database } from './postgres/database.ts';
import { PgContext } from './postgres/context.ts';
import { PgLog } from './postgres/pg-log.ts';
import { PgQueue } from './postgres/pg-queue.ts';
import { PgStore } from './postgres/pg-store.ts';

export interface TransferReport {
  stores: number;
  histories: number;
  logs: number;
  queues: number;
  /** Log records and queue items carried. */
  records: number;
  /** Files of the data dir that are none of the above (import only): left where they are. */
  skipped: string[];
}

const LOG_FILE = /\.(journal|snapshot)\.jsonl$/;
const HISTORY_FILE = /\.history\.jsonl$/;
/** Records per append when writing a log. */
const CHUNK = 5000;
/**
 * Logs are written in chunks with compaction off: a snapshot taken between two chunks would hold
 * the records of the later ones too, and they would then count twice.
 */
const NEVER = Number.MAX_SAFE_INTEGER;

function context(db: Database, log: Log): PgContext {
  // Transfers hold no leases; the owner only tags the ones a queue would hand out (none here).
  return new PgContext(db, 'outpost store transfer', log, undefined);
}

function nothing(): void {}

/** Database → files under dir (which must be empty or not exist yet). */
export async function exportStore(db: Database, dir: string, log: Log): Promise<TransferReport> {
  const existing = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  if (existing.length > 0) throw new Error(`${dir} is not empty: export writes a fresh data dir (move the old one away first)`);
  const ctx = context(db, log);
  const names = async (sql: string) => (await db.query<{ name: string }>(sql)).rows.map((r) => r.name);
  const report: TransferReport = { stores: 0, histories: 0, logs: 0, queues: 0, records: 0, skipped: [] };
  await privateDir(dir);

  for (const name of await names('SELECT name FROM outpost_stores ORDER BY name')) {
    const s = await PgStore.open(ctx, name, {});
    const file = join(dir, `${name}.json`);
    await privateDir(dirname(file));
    // As the lowdb store writes it.
    await replacePrivate(file, JSON.stringify(s.data));
    await s.close();
    report.stores += 1;
  }
  for (const name of await names('SELECT DISTINCT store AS name FROM outpost_store_history ORDER BY 1')) {
    const rows = (await db.query<{ data: string }>('SELECT data FROM outpost_store_history WHERE store = $1 ORDER BY seq', [name])).rows;
    const file = join(dir, `${name}.history.jsonl`);
    await privateDir(dirname(file));
    await appendPrivate(file, rows.map((r) => r.data).join('\n') + '\n');
    report.histories += 1;
  }
  for (const name of await names('SELECT name FROM outpost_logs ORDER BY name')) {
    const records: unknown[] = [];
    const l = await PgLog.open(ctx, name, z.unknown(), { dir, readOnly: true, load: (r) => void records.push(r), snapshot: () => [] });
    await l.close();
    const out = await openLog(baseName(name), z.unknown(), { dir: join(dir, dirName(name)), load: nothing, snapshot: () => records, compactAfterBytes: NEVER });
    for (let i = 0; i < records.length; i += CHUNK) await out.append(records.slice(i, i + CHUNK));
    await out.close();
    report.logs += 1;
    report.records += records.length;
  }
  for (const name of await names('SELECT name FROM outpost_queues ORDER BY name')) {
    const q = await PgQueue.open(ctx, name, z.unknown(), { dir });
    const contents = await q.contents();
    await q.close();
    await writeQueueFiles(baseName(name), join(dir, dirName(name)), contents);
    report.queues += 1;
    report.records += contents.items.length;
  }
  return report;
}

/** Files under dir → a database that holds no Outpost data yet. */
export async function importStore(db: Database, dir: string, log: Log): Promise<TransferReport> {
  const held = (await db.query<{ n: number }>('SELECT (SELECT count(*) FROM outpost_stores) + (SELECT count(*) FROM outpost_logs) + (SELECT count(*) FROM outpost_queues) AS n')).rows[0].n;
  if (held > 0) throw new Error(`the database at ${db.where} already holds Outpost data (${held} stores, logs and queues): import needs a fresh one (create an empty database and point OUTPOST_STORE_URL at it)`);
  const files = await walk(dir);
  if (!files.some((f) => f === 'controller.json')) throw new Error(`${dir} is not a controller data directory (no controller.json there)`);
  const ctx = context(db, log);
  const report: TransferReport = { stores: 0, histories: 0, logs: 0, queues: 0, records: 0, skipped: [] };
  const logs = new Set<string>();

  for (const f of files) {
    if (LOG_FILE.test(f)) logs.add(f.replace(LOG_FILE, ''));
    else if (HISTORY_FILE.test(f)) {
      const name = f.replace(HISTORY_FILE, '');
      // A line cut short by a crash is not a record.
      const lines = (await readFile(join(dir, f), 'utf8')).split('\n').filter((l) => l.trim() !== '' && parses(l));
      if (lines.length > 0) await db.query('INSERT INTO outpost_store_history (store, data) SELECT $1, d FROM unnest($2::text[]) WITH ORDINALITY AS t(d, i) ORDER BY i', [name, lines]);
      report.histories += 1;
    } else if (f.endsWith('.json') && !baseName(f).startsWith('.')) {
      const name = f.slice(0, -'.json'.length);
      let data: unknown;
      try {
        data = parseStoredJson(await readFile(join(dir, f), 'utf8'));
      } catch (err) {
        throw new Error(`${join(dir, f)} is not valid JSON: ${(err as Error).message}`);
      }
      if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new Error(`${join(dir, f)} does not hold a store (an object)`);
      const s = await PgStore.open(ctx, name, {});
      await s.update((d) => Object.assign(d, data));
      await s.close();
      report.stores += 1;
    } else report.skipped.push(f);
  }
  for (const name of [...logs].sort()) {
    const where = join(dir, dirName(name));
    const records: unknown[] = [];
    let kind: 'log' | 'queue';
    try {
      const file = await openLog(baseName(name), z.unknown(), { dir: where, readOnly: true, load: (r) => void records.push(r), snapshot: () => [] });
      kind = file.stats().kind;
      await file.close();
    } catch (err) {
      // A plugin's own journal file (not one of the SDK's logs) stays where it is.
      if (!/is not a log (journal|snapshot)/.test((err as Error).message)) throw err;
      report.skipped.push(...files.filter((f) => f.replace(LOG_FILE, '') === name));
      continue;
    }
    if (kind === 'queue') {
      const contents = await readQueueFiles(baseName(name), where);
      const q = await PgQueue.open(ctx, name, z.unknown(), { dir });
      await q.restore(contents);
      await q.close();
      report.queues += 1;
      report.records += contents.items.length;
    } else {
      const l = await PgLog.open(ctx, name, z.unknown(), { dir, load: nothing, snapshot: () => records, compactAfterBytes: NEVER });
      for (let i = 0; i < records.length; i += CHUNK) await l.append(records.slice(i, i + CHUNK));
      await l.close();
      report.logs += 1;
      report.records += records.length;
    }
  }
  return report;
}

function parses(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}

/** Every file under dir, as paths relative to it with `/` separators. */
async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await visit(p);
      else if (e.isFile() || (await stat(p)).isFile()) out.push(relative(dir, p).split(sep).join('/'));
    }
  };
  await visit(dir);
  return out.sort();
}

const baseName = (name: string) => name.slice(name.lastIndexOf('/') + 1);
const dirName = (name: string) => (name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : '');
