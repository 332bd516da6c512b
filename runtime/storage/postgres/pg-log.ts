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
 */
import type { ZodType } from 'zod';
import type { DurableLog, LogOptions, LogStats } from '../../../plugins/sdk/durable/log.ts';
import { GroupCommit } from '../../../plugins/sdk/durable/group-commit.ts';
import { appendLines, CompactionTrigger, decodeRecord, snapshotLines } from '../../../plugins/sdk/durable/log-policy.ts';
import type { Log } from '../../../plugins/sdk/log.ts';
import { fenceKey, fenceOrThrow, StaleLeaseError, type Fence } from '../../../plugins/sdk/durable/fence.ts';
import type { PgContext } from './context.ts';
import { validFences } from './fence-check.ts';

/** A record's line, with the fence of the singleton work appending it (checked at the batch's commit). */
interface Line {
  text: string;
  fence?: Fence;
  stale?: boolean;
}

const DEFAULT_COMPACT_AFTER = 4 * 1024 * 1024;
/** Snapshot rows go in with statements of about this many bytes. */
const INSERT_PIECE = 1024 * 1024;

const APPEND = `
WITH ins AS (
  INSERT INTO outpost_log_records (log, data)
  SELECT $1, d FROM unnest($2::text[]) WITH ORDINALITY AS t(d, i) ORDER BY i
  RETURNING seq
)
SELECT max(seq) AS last FROM ins`;

export class PgLog<R> implements DurableLog<R> {
  private generation = 0;
  /** Records up to this number are in the snapshot. */
  private cut = 0;
  /** Number of the last record written. */
  private last = 0;
  private journalBytes = 0;
  private snapshotBytes = 0;
  private compacting: Promise<void> | undefined;
  private closed = false;
  private readonly loaded = { records: 0, skipped: 0, tornBytes: 0 };
  private readonly commit = new GroupCommit<Line>((lines) => this.write(lines));
  private readonly compaction: CompactionTrigger;
  private readonly log: Log;

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
    return l;
  }

  private async load(): Promise<void> {
    const { db } = this.ctx;
    if (!this.opts.readOnly) await db.query('INSERT INTO outpost_logs (name) VALUES ($1) ON CONFLICT DO NOTHING', [this.name]);
    // One snapshot of the three tables: a compaction committing meanwhile is seen entirely or not at all.
    await db.tx(async (c) => {
      const meta = await c.query<{ generation: number; cut: number }>('SELECT generation, cut FROM outpost_logs WHERE name = $1', [this.name]);
      this.generation = meta.rows[0]?.generation ?? 0;
      this.cut = this.last = meta.rows[0]?.cut ?? 0;
      const snap = await c.query<{ data: string }>('SELECT data FROM outpost_log_snapshots WHERE log = $1 AND generation = $2 ORDER BY n', [this.name, this.generation]);
      for (const row of snap.rows) {
        this.snapshotBytes += row.data.length + 1;
        this.replay(row.data, 'snapshot');
      }
      const recs = await c.query<{ seq: number; data: string }>('SELECT seq, data FROM outpost_log_records WHERE log = $1 AND seq > $2 ORDER BY seq', [this.name, this.cut]);
      for (const row of recs.rows) {
        this.journalBytes += row.data.length + 1;
        this.last = row.seq;
        this.replay(row.data, `record ${row.seq}`);
      }
    }, 'REPEATABLE READ');
  }

  private replay(text: string, where: string): void {
    const rec = decodeRecord(this.schema, text);
    if (!rec.ok) return this.skip(where, rec.why);
    this.loaded.records += 1;
    this.opts.load(rec.record);
  }

  private skip(where: string, why: string): void {
    this.loaded.skipped += 1;
    this.log.warn({ log: this.name, where, why }, 'skipping an unreadable record');
  }

  async append(records: R[]): Promise<void> {
    const fence = fenceOrThrow(`append to log ${this.name}`);
    const lines: Line[] = appendLines(this.name, this.schema, records, { readOnly: this.opts.readOnly, closed: this.closed }).map((text) => (fence ? { text, fence } : { text }));
    // The lines go to the group commit before anything awaits: appends of one turn share a write.
    await this.commit.add(lines);
    if (fence && lines.some((l) => l.stale)) throw new StaleLeaseError(fence, `append to log ${this.name}`);
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

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.commit.settled();
    while (this.compacting) await this.compacting;
  }

  // ---- writes ----

  private async write(all: Line[]): Promise<void> {
    // Before the first await: records appended from here on go to the next batch, not into this snapshot.
    const due = this.compacting || this.closed || this.opts.readOnly ? undefined : this.compaction.take(this.journalBytes, this.snapshotBytes, all.map((l) => l.text));
    const snapshot = due && { lines: snapshotLines(this.opts.snapshot), requested: due.requested };
    try {
      const fenced = all.filter((l) => l.fence);
      // A fenced line refused leaves the batch; the others (fenced or not) are written all the same.
      const insert = async (run: { query<X extends { last: number }>(t: string, v: unknown[]): Promise<{ rows: X[] }> }, lines: string[]) => {
        if (lines.length === 0) return;
        const r = await run.query<{ last: number }>(APPEND, [this.name, lines]);
        this.last = r.rows[0].last;
        for (const l of lines) this.journalBytes += l.length + 1;
      };
      if (fenced.length === 0) await insert(this.ctx.db, all.map((l) => l.text));
      else {
        await this.ctx.db.tx(async (c) => {
          const valid = await validFences(c, fenced.map((l) => l.fence!));
          for (const l of fenced) if (!valid.has(fenceKey(l.fence!))) l.stale = true;
          await insert(c, all.filter((l) => !l.stale).map((l) => l.text));
        });
      }
      this.ctx.ok();
    } catch (err) {
      if (snapshot?.requested) this.compaction.requested = true;
      throw this.ctx.failed(`log ${this.name}`, err);
    }
    if (snapshot) this.compacting = this.storeSnapshot(snapshot.lines, snapshot.requested);
  }

  private async storeSnapshot(lines: string[], requested: boolean): Promise<void> {
    const cut = this.last;
    const covered = this.journalBytes;
    const gen = this.generation + 1;
    let bytes = 0;
    try {
      await this.ctx.db.tx(async (c) => {
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
        await c.query('UPDATE outpost_logs SET generation = $2, cut = $3 WHERE name = $1', [this.name, gen, cut]);
        await c.query('DELETE FROM outpost_log_snapshots WHERE log = $1 AND generation < $2', [this.name, gen]);
        await c.query('DELETE FROM outpost_log_records WHERE log = $1 AND seq <= $2', [this.name, cut]);
      });
      // Records appended meanwhile stay; what the snapshot replaced is gone.
      this.journalBytes -= covered;
      this.generation = gen;
      this.cut = cut;
      this.snapshotBytes = bytes;
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
