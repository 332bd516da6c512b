import { mkdir, open, readFile, rename, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { TurnBatch } from './turn-batch.ts';
import { idMap } from '../../plugins/sdk/ids.ts';

/**
 * The outbox's persistence: a JSON snapshot (`outbox.json`, same shape as before) plus an
 * append-only journal of changes (`outbox.journal.jsonl`). Why not a whole-file store: with
 * thousands of deliveries pending, rewriting every record on each state change made each
 * delivery cost a multi-megabyte JSON.stringify; a journal line costs a few hundred bytes.
 * The journal is folded into a new snapshot when it grows past `compactAt` bytes.
 *
 * Replay is idempotent (put = set whole record, set = set fields, del = delete), so a crash
 * between writing a snapshot and truncating the journal replays harmlessly.
 */
export type JournalOp<R> = { op: 'put'; d: R } | { op: 'set'; id: string; f: Record<string, unknown> } | { op: 'del'; id: string };

export interface Snapshot<R> {
  n: number;
  deliveries: Record<string, R>;
}

export class Journal<R extends { id: string; n: number }> {
  private readonly batch = new TurnBatch((chunk) => this.append(chunk));
  private size = 0;
  private closed = false;

  private constructor(
    private readonly snapshotFile: string,
    private fh: FileHandle,
    private readonly data: Snapshot<R>,
    private readonly compactAt: number,
  ) {}

  static async open<R extends { id: string; n: number }>(dataDir: string, compactAt = 8 * 1024 * 1024): Promise<{ journal: Journal<R>; data: Snapshot<R> }> {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const snapshotFile = join(dataDir, 'outbox.json');
    const journalFile = join(dataDir, 'outbox.journal.jsonl');
    const data: Snapshot<R> = { n: 0, deliveries: idMap() };
    const snap = await readFile(snapshotFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    if (snap.trim()) {
      try {
        const parsed = JSON.parse(snap) as Snapshot<R>;
        Object.assign(data, parsed, { deliveries: idMap(parsed.deliveries) });
      } catch (err) {
        throw new Error(`store ${snapshotFile} is not valid JSON: ${(err as Error).message}`);
      }
    }
    const text = await readFile(journalFile, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      let op: JournalOp<R>;
      try {
        op = JSON.parse(line);
      } catch {
        continue; // a torn last line from a crash mid-append: that change never completed
      }
      apply(data, op);
    }
    const fh = await open(journalFile, 'a', 0o600);
    const j = new Journal<R>(snapshotFile, fh, data, compactAt);
    j.size = Buffer.byteLength(text);
    return { journal: j, data };
  }

  /** Records changes already made to the in-memory data; resolves once they are on disk. Writes in the same turn share one append. */
  write(ops: JournalOp<R>[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('outbox journal is closed'));
    return this.batch.add(ops.map((op) => JSON.stringify(op)));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.batch.settled();
    await this.fh.close();
  }

  private async append(lines: string): Promise<void> {
    await this.fh.write(lines);
    this.size += Buffer.byteLength(lines);
    if (this.size > this.compactAt) await this.compact();
  }

  /** Folds the journal into a fresh snapshot (written aside, then renamed into place) and empties it. */
  private async compact(): Promise<void> {
    const tmp = `${this.snapshotFile}.tmp`;
    await writeFile(tmp, JSON.stringify(this.data), { mode: 0o600 });
    await rename(tmp, this.snapshotFile);
    await this.fh.truncate(0);
    this.size = 0;
  }
}

function apply<R extends { id: string; n: number }>(data: Snapshot<R>, op: JournalOp<R>): void {
  if (op.op === 'put') {
    data.deliveries[op.d.id] = op.d;
    data.n = Math.max(data.n, op.d.n);
  } else if (op.op === 'set') {
    const rec = data.deliveries[op.id] as Record<string, unknown> | undefined;
    if (!rec) return;
    for (const [k, v] of Object.entries(op.f)) {
      if (v === null) delete rec[k];
      else rec[k] = v;
    }
  } else if (op.op === 'del') {
    delete data.deliveries[op.id];
  }
}
