/**
 * The file implementation of DurableLog. Two files per log, both JSON lines after a header line:
 *
 *   <name>.journal.jsonl    {"$outpostLog":1,"gen":G}, then the records appended in generation G
 *   <name>.snapshot.jsonl   {"$outpostLog":1,"gen":G+1,"base":G,"cut":X}, then records that rebuild
 *                           the state as of byte X of journal G (written aside, renamed into place)
 *
 * Compaction takes the owner's snapshot at one instant (synchronously, right after a batch), writes
 * it in the background while appends go on into the journal, renames it into place, then replaces the
 * journal with one of generation G+1 holding only what was appended after byte X (written aside,
 * renamed). Open replays the snapshot, then the journal of its generation whole, or journal G from
 * byte X on: a crash at any point of a compaction counts every record once. A crash mid-append leaves
 * a torn last line: open cuts it off with a warning and keeps every complete line before it. A failed
 * append (disk full) is cut back at once, so no torn line is left for the records appended after space
 * returns.
 */
import { join } from 'node:path';
import type { ZodType } from 'zod';
import { createLog, type Log } from '../log.ts';
import type { StorageHealth } from './health.ts';
import type { AppendOptions, DurableLog, FsyncPolicy, LogOptions, LogStats } from './log.ts';
import { nodeLogFs, splitLines, writeAll, type LogFile, type LogFs } from './files.ts';
import { GroupCommit } from './group-commit.ts';
import { parseRecordJson } from './record-json.ts';
import { StorageWriteError } from './storage-error.ts';
import { appendLines, CompactionTrigger, decodeRecord, snapshotLines } from './log-policy.ts';

const HEADER = '$outpostLog';
const DEFAULT_COMPACT_AFTER = 4 * 1024 * 1024;
/** Snapshot lines are written in pieces of about this size, not as one string. */
const WRITE_PIECE = 1024 * 1024;

interface Header {
  gen: number;
  /** Set for a due-time queue's log (LogOptions.kind); absent for plain logs. */
  kind?: 'queue';
  /** Snapshots: the journal generation they were cut from, and the byte of it they cover up to. */
  base?: number;
  cut?: number;
}

const headerLine = (h: Header) => JSON.stringify({ [HEADER]: 1, ...h });

function parseHeader(line: string | undefined): Header | null {
  if (line === undefined) return null;
  try {
    const h = parseRecordJson(line) as Record<string, unknown> | null;
    if (!h || h[HEADER] !== 1 || !Number.isInteger(h.gen)) return null;
    const kind = h.kind === 'queue' ? { kind: 'queue' as const } : {};
    return Number.isInteger(h.base) && Number.isInteger(h.cut) ? { gen: h.gen as number, base: h.base as number, cut: h.cut as number, ...kind } : { gen: h.gen as number, ...kind };
  } catch {
    return null;
  }
}

interface Files {
  dir: string;
  snapshot: string;
  journal: string;
}

export class FileLog<R> implements DurableLog<R> {
  private journal: LogFile | null = null;
  /** Bytes of the journal known to hold complete records; a failed append is cut back to this. */
  private journalBytes = 0;
  private snapshotBytes = 0;
  /** Generation of the journal appended to. */
  private gen = 0;
  /** The journal file is missing or unusable: an empty one of `gen` goes in before the next append. */
  private needReset = false;
  /** A snapshot of generation `gen + 1` covering the journal up to byte `cut` is in place: the journal is to be cut there. */
  private swap: { gen: number; cut: number } | undefined;
  /** A snapshot being written in the background. */
  private compacting: Promise<void> | undefined;
  /** A failed append could not be cut back yet. */
  private dirty = false;
  private unsynced = false;
  private syncRequested = false;
  /** An append of the batch being gathered wants its fsync before it resolves (`always`). */
  private batchWantsSync = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly loaded = { records: 0, skipped: 0, tornBytes: 0 };
  /** Given at open, else as the files' headers say. */
  private kind: 'log' | 'queue';
  private readonly commit = new GroupCommit<string>((lines) => this.write(lines));
  private readonly fs: LogFs;
  private readonly log: Log;
  private readonly policy: FsyncPolicy;
  private readonly compaction: CompactionTrigger;
  private readonly health: StorageHealth | undefined;

  private constructor(
    readonly name: string,
    private readonly schema: ZodType<R>,
    private readonly files: Files,
    private readonly opts: LogOptions<R>,
  ) {
    this.fs = opts.fs ?? nodeLogFs;
    this.log = opts.log ?? createLog('durable-log');
    this.policy = opts.fsync ?? 'always';
    this.compaction = new CompactionTrigger(opts.compactAfterBytes ?? DEFAULT_COMPACT_AFTER);
    this.health = opts.health;
    this.kind = opts.kind ?? 'log';
  }

  static async open<R>(name: string, schema: ZodType<R>, opts: LogOptions<R>): Promise<FileLog<R>> {
    const files = { dir: opts.dir, snapshot: join(opts.dir, `${name}.snapshot.jsonl`), journal: join(opts.dir, `${name}.journal.jsonl`) };
    const l = new FileLog(name, schema, files, opts);
    await l.load();
    if (!opts.readOnly && l.policy !== 'none') {
      l.timer = setInterval(() => l.unsynced && void l.sync().catch(() => undefined), opts.fsyncIntervalMs ?? 200);
      l.timer.unref();
    }
    return l;
  }

  async append(records: R[], opts: AppendOptions = {}): Promise<void> {
    // The lines go to the group commit before anything awaits: appends of one turn share a write.
    const lines = appendLines(this.name, this.schema, records, { readOnly: this.opts.readOnly, closed: this.closed });
    if (opts.sync !== false) this.batchWantsSync = true;
    return this.commit.add(lines);
  }

  async compact(): Promise<void> {
    if (this.opts.readOnly) throw new Error(`log ${this.name} was opened read-only`);
    // One at a time: let one under way finish and its journal be cut first.
    while (this.compacting) await this.compacting;
    await this.commit.add([]);
    this.compaction.ask();
    await this.commit.add([]);
    await this.compacting;
    this.compaction.settle();
    await this.commit.add([]);
  }

  async sync(): Promise<void> {
    if (this.opts.readOnly || this.closed) return;
    this.syncRequested = true;
    await this.commit.add([]);
  }

  stats(): LogStats {
    return { journalBytes: this.journalBytes, snapshotBytes: this.snapshotBytes, generation: this.swap?.gen ?? this.gen, loaded: { ...this.loaded }, kind: this.kind };
  }

  private kindField(): Pick<Header, 'kind'> {
    return this.kind === 'queue' ? { kind: 'queue' } : {};
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.unsynced && this.policy !== 'none') await this.sync().catch(() => undefined);
    this.closed = true;
    clearInterval(this.timer);
    while (this.compacting) await this.compacting;
    await this.commit.settled();
    await this.journal?.close().catch(() => undefined);
    this.journal = null;
  }

  // ---- load ----

  private async load(): Promise<void> {
    const { fs, files } = this;
    const ro = this.opts.readOnly === true;
    if (!ro) {
      await fs.mkdirs(files.dir);
      // Leftovers of a compaction cut short; the files they were to replace are intact.
      await fs.remove(`${files.snapshot}.tmp`);
      await fs.remove(`${files.journal}.tmp`);
    }
    let snapHeader: Header = { gen: 0 };
    const snap = await fs.read(files.snapshot);
    if (snap) {
      const { lines, tornBytes } = splitLines(snap);
      const h = parseHeader(lines[0]);
      if (h === null) throw new Error(`${files.snapshot} is not a log snapshot (no header line); move it away to start this log empty`);
      // Snapshots are renamed into place only once complete, so a torn one means the disk lost data.
      if (tornBytes) this.log.warn({ log: this.name, file: files.snapshot, bytes: tornBytes }, 'snapshot ends in an incomplete line; ignoring it');
      snapHeader = h;
      if (h.kind && !this.opts.kind) this.kind = h.kind;
      this.snapshotBytes = snap.length;
      this.replay(lines, 1, files.snapshot);
    }
    this.gen = snapHeader.gen;
    const jr = await fs.read(files.journal);
    const { lines, completeBytes, tornBytes } = splitLines(jr ?? Buffer.alloc(0));
    const h = parseHeader(lines[0]);
    if (h === null && lines.length > 0) throw new Error(`${files.journal} is not a log journal (no header line); move it away to start this log empty`);
    if (h?.kind && !this.opts.kind) this.kind = h.kind;
    if (h === null) {
      // Missing, empty, or cut while being created: nothing was appended to it.
      this.needReset = true;
    } else if (h.gen === snapHeader.gen || h.gen > snapHeader.gen) {
      if (h.gen > snapHeader.gen) this.log.warn({ log: this.name, journal: h.gen, snapshot: snapHeader.gen }, 'journal is newer than the snapshot (snapshot file missing or replaced?); loading what there is');
      this.gen = h.gen;
      this.replay(lines, 1, files.journal);
    } else if (h.gen === snapHeader.base && snapHeader.cut !== undefined && snapHeader.cut <= completeBytes) {
      // A compaction stopped before its journal was cut: the snapshot holds the records up to the cut.
      this.gen = h.gen;
      this.replay(splitLines(jr!.subarray(snapHeader.cut, completeBytes)).lines, 0, files.journal);
      this.swap = { gen: snapHeader.gen, cut: snapHeader.cut };
    } else {
      this.log.warn({ log: this.name, journal: h.gen, snapshot: snapHeader.gen }, 'journal older than the snapshot; its records are in the snapshot');
      this.needReset = true;
    }
    if (!this.needReset) this.journalBytes = completeBytes;
    if (tornBytes && !this.needReset) {
      this.loaded.tornBytes = tornBytes;
      this.log.warn({ log: this.name, file: files.journal, bytes: tornBytes, kept: this.loaded.records }, 'journal ends in a torn record (a write cut short); cutting it off, every complete record before it is kept');
    }
    if (ro) return;
    if (this.needReset) {
      await this.resetJournal();
      return;
    }
    this.journal = await fs.open(files.journal, 'a');
    if (this.loaded.tornBytes) await this.journal.truncate(this.journalBytes);
    if (this.swap) await this.swapJournal();
  }

  private replay(lines: string[], from: number, file: string): void {
    for (let i = from; i < lines.length; i++) {
      const line = lines[i];
      if (line.trim() === '') continue;
      const rec = decodeRecord(this.schema, line);
      if (!rec.ok) {
        this.skip(file, i, rec.why);
        continue;
      }
      this.loaded.records += 1;
      this.opts.load(rec.record);
    }
  }

  private skip(file: string, line: number, why: string): void {
    this.loaded.skipped += 1;
    this.log.warn({ log: this.name, file, line: line + 1, why }, 'skipping an unreadable record');
  }

  // ---- writes (one batch at a time, through the group commit) ----

  private async write(lines: string[]): Promise<void> {
    // Taken before the first await: records appended meanwhile go to the next batch, so they must not
    // be in this snapshot (they would count twice on replay). Likewise whether this batch wants an fsync.
    const due = this.compacting || this.swap || this.closed ? undefined : this.compaction.take(this.journalBytes, this.snapshotBytes, lines);
    const snapshot = due && { lines: snapshotLines(this.opts.snapshot), requested: due.requested };
    const fsync = this.policy === 'always' && this.batchWantsSync;
    this.batchWantsSync = false;
    try {
      if (!this.journal && !this.needReset) throw new Error(`log ${this.name} is closed`);
      if (this.dirty) {
        await this.journal!.truncate(this.journalBytes);
        this.dirty = false;
      }
      if (this.needReset) await this.resetJournal();
      if (this.swap) {
        // Until it succeeds, appends go on into the current journal: the snapshot names the byte it covers up to.
        await this.swapJournal().catch((err) => this.log.warn({ log: this.name, err: (err as Error).message }, 'could not cut the journal after compaction; will retry'));
      }
      if (lines.length) await this.appendLines(lines, fsync);
      if (snapshot) this.compacting = this.writeSnapshot(snapshot);
      if (this.syncRequested) await this.syncNow();
      this.health?.ok(this.name);
    } catch (err) {
      const e = err instanceof StorageWriteError ? err : new StorageWriteError(this.name, err);
      this.health?.failed(e);
      throw e;
    }
  }

  private async appendLines(lines: string[], fsync: boolean): Promise<void> {
    const buf = Buffer.from(lines.join('\n') + '\n');
    try {
      await writeAll(this.journal!, buf);
      // Also what lazy appends left unsynced before: the file is synced as a whole.
      if (fsync) await this.journal!.datasync();
    } catch (err) {
      // Nothing of a failed batch may stay: a torn line would sit before whatever is appended next.
      await this.journal!.truncate(this.journalBytes).catch(() => {
        this.dirty = true;
      });
      throw err;
    }
    this.journalBytes += buf.length;
    if (fsync) this.unsynced = false;
    else if (this.policy !== 'none') this.unsynced = true;
  }

  private async syncNow(): Promise<void> {
    this.syncRequested = false;
    if (!this.unsynced || this.policy === 'none' || !this.journal) return;
    await this.journal.datasync();
    this.unsynced = false;
  }

  /**
   * Writes the snapshot while appends go on (it covers the journal up to its current end), renames it
   * into place, then has the next write cut the journal. A failure leaves everything as it was.
   */
  private async writeSnapshot({ lines, requested }: { lines: string[]; requested: boolean }): Promise<void> {
    const base = this.gen;
    const cut = this.journalBytes;
    let size = 0;
    try {
      await this.replaceFile(this.files.snapshot, async (f) => {
        let piece = headerLine({ gen: base + 1, base, cut, ...this.kindField() }) + '\n';
        let i = 0;
        for (;;) {
          while (i < lines.length && piece.length < WRITE_PIECE) piece += lines[i++] + '\n';
          const buf = Buffer.from(piece);
          await writeAll(f, buf);
          size += buf.length;
          if (i === lines.length) break;
          piece = '';
        }
      });
      this.snapshotBytes = size;
      this.compaction.succeeded();
      this.swap = { gen: base + 1, cut };
      this.commit.add([]).catch(() => undefined);
    } catch (err) {
      const e = new StorageWriteError(`${this.name} snapshot`, err);
      this.compaction.failed(this.journalBytes, e, requested);
      this.log.warn({ log: this.name, err: e.message }, 'compaction failed; the journal keeps growing until the next try');
    } finally {
      this.compacting = undefined;
    }
  }

  /** Replaces the journal with one of the snapshot's generation holding what was appended after the cut. */
  private async swapJournal(): Promise<void> {
    const { gen, cut } = this.swap!;
    const old = (await this.fs.read(this.files.journal)) ?? Buffer.alloc(0);
    const tail = old.subarray(cut, this.journalBytes);
    const header = Buffer.from(headerLine({ gen, ...this.kindField() }) + '\n');
    await this.replaceFile(this.files.journal, async (f) => {
      await writeAll(f, header);
      if (tail.length) await writeAll(f, tail);
    });
    await this.journal?.close().catch(() => undefined);
    this.journal = await this.fs.open(this.files.journal, 'a');
    this.journalBytes = header.length + tail.length;
    this.gen = gen;
    this.swap = undefined;
    this.dirty = false;
    // The tail was synced with the new file.
    if (this.policy !== 'none') this.unsynced = false;
  }

  /** Puts an empty journal of the current generation in place (written aside, renamed). */
  private async resetJournal(): Promise<void> {
    const header = Buffer.from(headerLine({ gen: this.gen, ...this.kindField() }) + '\n');
    await this.replaceFile(this.files.journal, (f) => writeAll(f, header));
    await this.journal?.close().catch(() => undefined);
    this.journal = await this.fs.open(this.files.journal, 'a');
    this.journalBytes = header.length;
    this.needReset = false;
    this.dirty = false;
  }

  /** Writes a file aside and renames it over target, so target is always either old or new, whole. */
  private async replaceFile(target: string, fill: (f: LogFile) => Promise<void>): Promise<void> {
    const { fs } = this;
    const tmp = `${target}.tmp`;
    try {
      const f = await fs.open(tmp, 'w');
      try {
        await fill(f);
        if (this.policy !== 'none') await f.datasync();
      } finally {
        await f.close();
      }
      await fs.rename(tmp, target);
      if (this.policy !== 'none') await fs.syncDir(this.files.dir);
    } catch (err) {
      await fs.remove(tmp).catch(() => undefined);
      throw err;
    }
  }
}
