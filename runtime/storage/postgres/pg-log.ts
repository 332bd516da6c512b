/**
 * DurableLog on PostgreSQL: records in `outpost_log_records` (one row each, numbered by an identity
 * column), the last snapshot in `outpost_log_snapshots`, and in `outpost_logs` the snapshot's
 * generation and the record number it covers up to (`cut`). Open replays the snapshot, then the
 * records after the cut, in order.
 *
 * As in the file log, the snapshot is taken synchronously at the start of a batch's write (so it
 * covers exactly the records written so far and this batch), then stored in the background while
 * appends go on; one transaction puts it in place, moves the cut and deletes what it replaces, so a
 * crash at any point counts every record once. A batch is one INSERT: all of it or none.
 *
 * Several controllers append to one log. Each append first bumps the log's `version` (the row lock
 * it takes orders the log's appends across controllers until commit, so record numbers grow in
 * commit order: a reader that has seen record n has seen every record before n) and NOTIFYs
 * `log:<name> <version>` on the stores' channel (store-listener.ts). A version one past the one this
 * process knew means nobody else appended in between; otherwise, or when notified, the log reads the
 * records after the last number it has taken in, skips its own, gives the others to `load` and then
 * to onRemoteAppend's listeners. Those reads go through the group commit, so they never overlap an
 * append of this process (whose own records could otherwise be read before it learns their numbers).
 *
 * Compaction by one controller must not take records from another that has not read them yet: a
 * compaction deletes only what the previous one replaced (`dropped`), so a follower has a whole
 * compaction period to read; one further behind (its connection away that long) reloads the snapshot
 * through opts.reset. A snapshot is stored only when this process's memory holds exactly the records
 * up to its cut: a batch that found another controller's appends before it does not compact.
 */
import type { ZodType } from 'zod';
import type { AppendOptions, DurableLog, LogOptions, LogStats, RemoteAppend } from '../../../plugins/sdk/durable/log.ts';
import { GroupCommit } from '../../../plugins/sdk/durable/group-commit.ts';
import { appendLines, CompactionTrigger, decodeRecord, snapshotLines } from '../../../plugins/sdk/durable/log-policy.ts';
import type { Log } from '../../../plugins/sdk/log.ts';
import { fenceKey, fenceOrThrow, StaleLeaseError, type Fence } from '../../../plugins/sdk/durable/fence.ts';
import { StorageConflictError } from '../../../plugins/sdk/durable/storage-error.ts';
import type { PgContext } from './context.ts';
import { validFences } from './fence-check.ts';
import { LOG_PREFIX, STORE_CHANNEL } from './store-listener.ts';

/** A record's line, with the fence of the singleton work appending it (checked at the batch's commit). */
interface Line {
  text: string;
  /** Written only if the log is still at the version this process holds (AppendOptions.exclusive). */
  exclusive?: boolean;
  /** An exclusive line refused: another process appended first. */
  conflict?: boolean;
  fence?: Fence;
  stale?: boolean;
}

const DEFAULT_COMPACT_AFTER = 4 * 1024 * 1024;
/** Snapshot rows go in with statements of about this many bytes. */
const INSERT_PIECE = 1024 * 1024;

/** Lock and bump the log's version first: the INSERT reads from `v`, so its record numbers are drawn under the lock. */
const APPEND = `
WITH v AS (
  UPDATE outpost_logs SET version = version + 1 WHERE name = $1 AND ($3::bigint IS NULL OR version = $3) RETURNING version
), ins AS (
  INSERT INTO outpost_log_records (log, data)
  SELECT $1, d FROM v, unnest($2::text[]) WITH ORDINALITY AS t(d, i) ORDER BY i
  RETURNING seq
), n AS (
  SELECT pg_notify('${STORE_CHANNEL}', '${LOG_PREFIX}' || $1 || ' ' || v.version) FROM v
)
SELECT v.version, (SELECT min(seq) FROM ins) AS first, (SELECT max(seq) FROM ins) AS last FROM v, n`;

/** The log's version and what a compaction dropped, with the records after a number: one snapshot. */
const AFTER = `
SELECT l.version, l.dropped, r.seq, r.data
FROM outpost_logs l LEFT JOIN outpost_log_records r ON r.log = l.name AND r.seq > $2
WHERE l.name = $1 ORDER BY r.seq`;

export class PgLog<R> implements DurableLog<R> {
  private generation = 0;
  /** Records up to this number are in the snapshot. */
  private cut = 0;
  /** Number of the last record written or taken in. */
  private last = 0;
  /** Memory holds every record of the log up to this number (and `own` beyond it)... */
  private applied = 0;
  /** ...as of this version of the log. */
  private version = 0;
  /** Number ranges of this process's records beyond `applied`: skipped when other records are read. */
  private own: Array<[number, number]> = [];
  /** A version of the log the database holds (a notification, the periodic check): read when past `version`. */
  private wanted = 0;
  /** An append found another process's records before its own: read them. */
  private behind = false;
  /** A follower fell behind a compaction and had no reset: its memory lacks records, so it must not snapshot. */
  private diverged = false;
  private journalBytes = 0;
  private snapshotBytes = 0;
  private compacting: Promise<void> | undefined;
  private closed = false;
  private readonly loaded = { records: 0, skipped: 0, tornBytes: 0 };
  private readonly commit = new GroupCommit<Line>((lines) => this.write(lines));
  private readonly compaction: CompactionTrigger;
  private readonly log: Log;
  private readonly listeners = new Set<(records: R[], how: RemoteAppend) => void>();
  private unfollow: () => void = () => undefined;
  /** Reads of other processes' records so far: one during a batch's write keeps it from compacting. */
  private follows = 0;

  private constructor(
    private readonly ctx: PgContext,
    readonly name: string,
    private readonly schema: ZodType<R>,
    private readonly opts: LogOptions<R>,
  ) {
    this.compaction = new CompactionTrigger(opts.compactAfterBytes ?? DEFAULT_COMPACT_AFTER);
    this.log = opts.log ?? ctx.log;
  }

  static async open<R>(ctx: PgContext, name: string, schema: ZodType<R>, opts: LogOptions<R>): Promise<PgLog<R>> {
    const l = new PgLog(ctx, name, schema, opts);
    try {
      await l.load();
    } catch (err) {
      throw ctx.failed(`log ${name}`, err);
    }
    // A read-only log (export) is a picture of one moment.
    if (!opts.readOnly) l.unfollow = ctx.follow(LOG_PREFIX + name, l);
    return l;
  }

  private async load(): Promise<R[]> {
    const { db } = this.ctx;
    if (!this.opts.readOnly) await db.query('INSERT INTO outpost_logs (name) VALUES ($1) ON CONFLICT DO NOTHING', [this.name]);
    // One snapshot of the three tables: a compaction committing meanwhile is seen entirely or not at all.
    const replayed = await db.tx(async (c) => {
      const meta = await c.query<{ generation: number; cut: number; version: number }>('SELECT generation, cut, version FROM outpost_logs WHERE name = $1', [this.name]);
      this.generation = meta.rows[0]?.generation ?? 0;
      this.version = meta.rows[0]?.version ?? 0;
      this.cut = this.last = meta.rows[0]?.cut ?? 0;
      this.journalBytes = this.snapshotBytes = 0;
      const out: R[] = [];
      const snap = await c.query<{ data: string }>('SELECT data FROM outpost_log_snapshots WHERE log = $1 AND generation = $2 ORDER BY n', [this.name, this.generation]);
      for (const row of snap.rows) {
        this.snapshotBytes += row.data.length + 1;
        this.replay(row.data, 'snapshot', out);
      }
      const recs = await c.query<{ seq: number; data: string }>('SELECT seq, data FROM outpost_log_records WHERE log = $1 AND seq > $2 ORDER BY seq', [this.name, this.cut]);
      for (const row of recs.rows) {
        this.journalBytes += row.data.length + 1;
        this.last = row.seq;
        this.replay(row.data, `record ${row.seq}`, out);
      }
      return out;
    }, 'REPEATABLE READ');
    this.applied = this.last;
    this.own = [];
    return replayed;
  }

  private replay(text: string, where: string, out: R[]): void {
    const rec = decodeRecord(this.schema, text);
    if (!rec.ok) return this.skip(where, rec.why);
    this.loaded.records += 1;
    this.opts.load(rec.record);
    out.push(rec.record);
  }

  private skip(where: string, why: string): void {
    this.loaded.skipped += 1;
    this.log.warn({ log: this.name, where, why }, 'skipping an unreadable record');
  }

  async append(records: R[], opts: AppendOptions = {}): Promise<void> {
    const fence = fenceOrThrow(`append to log ${this.name}`);
    const lines: Line[] = appendLines(this.name, this.schema, records, { readOnly: this.opts.readOnly, closed: this.closed }).map((text) => ({ text, ...(fence ? { fence } : {}), ...(opts.exclusive ? { exclusive: true } : {}) }));
    // The lines go to the group commit before anything awaits: appends of one turn share a write.
    await this.commit.add(lines);
    if (fence && lines.some((l) => l.stale)) throw new StaleLeaseError(fence, `append to log ${this.name}`);
    if (lines.some((l) => l.conflict)) throw new StorageConflictError(`log ${this.name}`, ['appended by another controller']);
  }

  async compact(): Promise<void> {
    if (this.opts.readOnly) throw new Error(`log ${this.name} was opened read-only`);
    while (this.compacting) await this.compacting;
    this.compaction.ask();
    await this.commit.add([]);
    await this.compacting;
    this.compaction.settle();
  }

  /** Committed rows are durable as the server's own settings make them (synchronous_commit). */
  async sync(): Promise<void> {
    if (this.opts.readOnly || this.closed) return;
    await this.commit.add([]);
  }

  stats(): LogStats {
    return { journalBytes: this.journalBytes, snapshotBytes: this.snapshotBytes, generation: this.generation, loaded: { ...this.loaded }, kind: this.opts.kind ?? 'log' };
  }

  onRemoteAppend(fn: (records: R[], how: RemoteAppend) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Told that the database holds `version` of this log (none: it may have moved, e.g. after lost
   * notifications); resolves once `load` has had its records. Bursts share one read.
   */
  refresh(version?: number): Promise<void> {
    if (this.closed || (version !== undefined && version <= this.version)) return Promise.resolve();
    // This process's own notification can arrive before its append returns: the write then finds the version is known.
    if (version === undefined) this.behind = true;
    else this.wanted = Math.max(this.wanted, version);
    return this.commit.add([]).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unfollow();
    await this.commit.settled();
    while (this.compacting) await this.compacting;
  }

  // ---- writes ----

  private async write(all: Line[]): Promise<void> {
    // Before the first await: records appended from here on go to the next batch, not into this snapshot.
    const due = this.compacting || this.closed || this.opts.readOnly || this.diverged ? undefined : this.compaction.take(this.journalBytes, this.snapshotBytes, all.map((l) => l.text));
    const snapshot = due && { lines: snapshotLines(this.opts.snapshot), requested: due.requested };
    const follows = this.follows;
    try {
      try {
        await this.put(all, all.some((l) => l.exclusive));
      } catch (err) {
        if (!(err instanceof StorageConflictError)) throw err;
        // Not a failing database: the exclusive appends are refused (their callers take in the other
        // records and decide again), the others are written all the same.
        await this.follow();
        for (const l of all) if (l.exclusive) l.conflict = true;
        await this.put(all.filter((l) => !l.exclusive), false);
      }
      this.ctx.ok();
    } catch (err) {
      if (snapshot?.requested) this.compaction.requested = true;
      throw this.ctx.failed(`log ${this.name}`, err);
    }
    if (snapshot) {
      // Memory is exactly the log up to its last record, or another controller's records are missing from the snapshot.
      if (this.own.length === 0 && this.applied === this.last && this.follows === follows) this.compacting = this.storeSnapshot(snapshot.lines, snapshot.requested);
      else this.compaction.requested ||= snapshot.requested;
    }
    if (this.behind || this.wanted > this.version) await this.follow();
  }

  /** One INSERT of the lines (fenced ones checked against their leases in its transaction). */
  private async put(lines: Line[], exclusive: boolean): Promise<void> {
    const insert = async (run: Runs, texts: string[]) => {
      if (texts.length === 0) return;
      // Memory that lacks records of its own beyond `applied` cannot vouch for the version: that conflicts.
      const expected = exclusive ? (this.own.length === 0 ? this.version : -1) : null;
      const r = await run.query<{ version: number; first: number; last: number }>(APPEND, [this.name, texts, expected]);
      if (r.rows.length === 0 && exclusive) throw new StorageConflictError(`log ${this.name}`, ['appended by another controller']);
      if (r.rows.length === 0) throw new Error(`log ${this.name} has no row in outpost_logs (was the database cleared under a running controller?)`);
      this.wrote(r.rows[0]);
      for (const t of texts) this.journalBytes += t.length + 1;
    };
    const fenced = lines.filter((l) => l.fence);
    // A fenced line refused leaves the batch; the others (fenced or not) are written all the same.
    if (fenced.length === 0) return insert(this.ctx.db, lines.map((l) => l.text));
    await this.ctx.db.tx(async (c) => {
      const valid = await validFences(c, fenced.map((l) => l.fence!));
      for (const l of fenced) if (!valid.has(fenceKey(l.fence!))) l.stale = true;
      await insert(c, lines.filter((l) => !l.stale).map((l) => l.text));
    });
  }

  /** A batch is in: memory still holds the log exactly up to it only if nobody else appended since `version`. */
  private wrote(row: { version: number; first: number; last: number }): void {
    this.last = Math.max(this.last, row.last);
    if (row.version === this.version + 1 && this.own.length === 0) {
      this.version = row.version;
      this.applied = row.last;
      return;
    }
    this.own.push([row.first, row.last]);
    this.behind = true;
  }

  // ---- other controllers' records ----

  /** Reads what other processes appended after `applied`; runs inside the group commit, never beside an append. */
  private async follow(): Promise<void> {
    this.behind = false;
    this.follows += 1;
    let rows: Array<{ version: number; dropped: number; seq: number | null; data: string | null }>;
    try {
      rows = (await this.ctx.db.query<{ version: number; dropped: number; seq: number | null; data: string | null }>(AFTER, [this.name, this.applied])).rows;
    } catch (err) {
      // Nothing was taken in: the next write, check or notification tries again.
      this.behind = true;
      this.log.warn({ log: this.name, err: this.ctx.db.storageError(this.name, err).message }, 'could not read other controllers\' records; retrying with the next check');
      return;
    }
    if (rows.length === 0) return;
    if (rows[0].dropped > this.applied) return this.reload(rows[0].dropped);
    const records: R[] = [];
    for (const row of rows) {
      if (row.seq === null || row.data === null) continue;
      const seq = row.seq;
      this.last = Math.max(this.last, seq);
      this.applied = seq;
      if (this.own.some(([a, b]) => seq >= a && seq <= b)) continue;
      this.journalBytes += row.data.length + 1;
      const rec = decodeRecord(this.schema, row.data);
      if (!rec.ok) {
        this.skip(`record ${seq}`, rec.why);
        continue;
      }
      records.push(rec.record);
    }
    this.version = Math.max(this.version, rows[0].version);
    this.own = this.own.filter(([, b]) => b > this.applied);
    this.take(records, false);
  }

  /** Behind a compaction: the records it needs are gone, so it starts again from the snapshot. */
  private async reload(dropped: number): Promise<void> {
    if (!this.opts.reset) {
      if (!this.diverged) this.log.error({ log: this.name }, 'another controller compacted this log past records not yet read here, and its owner cannot reset: going on without them until a restart (this controller no longer compacts the log)');
      this.diverged = true;
      this.applied = dropped;
      return this.follow();
    }
    this.log.warn({ log: this.name }, 'another controller compacted this log past records not yet read here; reloading it from the snapshot');
    this.opts.reset();
    const records = await this.load().catch((err: unknown) => {
      // Half a state is worse than an old one; a restart reads the log whole.
      this.diverged = true;
      this.log.error({ log: this.name, err: this.ctx.db.storageError(this.name, err).message }, 'could not reload the log after resetting its owner\'s state');
      return undefined;
    });
    if (records) this.take(records, true);
  }

  private take(records: R[], reset: boolean): void {
    // An owner's failure is its own: it must not fail the append this read shares a write with.
    const guarded = (what: string, fn: () => void) => {
      try {
        fn();
      } catch (err) {
        this.log.error({ log: this.name, err: (err as Error).message }, what);
      }
    };
    if (!reset) for (const r of records) guarded('loading another controller\'s record failed', () => this.opts.load(r));
    if (records.length === 0 && !reset) return;
    for (const fn of this.listeners) guarded('a listener of remote appends failed', () => fn(records, { reset }));
  }

  private async storeSnapshot(lines: string[], requested: boolean): Promise<void> {
    const cut = this.last;
    const covered = this.journalBytes;
    let bytes = 0;
    let gen = this.generation + 1;
    try {
      const stored = await this.ctx.db.tx(async (c) => {
        // Locks out appends and other compactions until this one commits.
        const meta = (await c.query<{ generation: number; cut: number }>('SELECT generation, cut FROM outpost_logs WHERE name = $1 FOR UPDATE', [this.name])).rows[0];
        // Another controller compacted as far already.
        if (!meta || meta.cut >= cut) return false;
        gen = meta.generation + 1;
        for (let i = 0; i < lines.length; ) {
          const piece: string[] = [];
          let size = 0;
          while (i < lines.length && (piece.length === 0 || size < INSERT_PIECE)) {
            size += lines[i].length;
            piece.push(lines[i++]);
          }
          bytes += size + piece.length;
          await c.query('INSERT INTO outpost_log_snapshots (log, generation, n, data) SELECT $1, $2, $3 + i, d FROM unnest($4::text[]) WITH ORDINALITY AS t(d, i)', [this.name, gen, i - piece.length, piece]);
        }
        // Records up to the previous cut go now; those up to this cut stay for followers until the next compaction.
        await c.query('UPDATE outpost_logs SET generation = $2, cut = $3, dropped = greatest(dropped, $4) WHERE name = $1', [this.name, gen, cut, meta.cut]);
        await c.query('DELETE FROM outpost_log_snapshots WHERE log = $1 AND generation < $2', [this.name, gen]);
        await c.query('DELETE FROM outpost_log_records WHERE log = $1 AND seq <= $2', [this.name, meta.cut]);
        return true;
      });
      if (stored) {
        // Records appended meanwhile stay; what the snapshot replaced is gone.
        this.journalBytes -= covered;
        this.generation = gen;
        this.cut = cut;
        this.snapshotBytes = bytes;
      }
      this.compaction.succeeded();
    } catch (err) {
      const e = this.ctx.failed(`log ${this.name} snapshot`, err);
      this.compaction.failed(this.journalBytes, e, requested);
      this.log.warn({ log: this.name, err: e.message }, 'compaction failed; the log keeps growing until the next try');
    } finally {
      this.compacting = undefined;
    }
  }
}

type Runs = { query<X extends import('pg').QueryResultRow>(t: string, v: unknown[]): Promise<{ rows: X[] }> };
