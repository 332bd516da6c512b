import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { appendPrivate, privateDir, replacePrivate } from '../sdk/index.ts';
import type { HistoryEntry } from './state.ts';

/**
 * Decided rounds for /api/v1/prober/results: an append-only JSON-lines file (cheap for thousands
 * of records a minute, unlike rewriting a store) and the retention window kept in memory.
 * The file is compacted to the window at each start.
 */
export class History {
  private entries: HistoryEntry[] = [];
  private readonly last = new Map<string, HistoryEntry>();
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string,
    private readonly keepMs: number,
  ) {}

  static async open(file: string, keepMs: number): Promise<History> {
    const h = new History(file, keepMs);
    await privateDir(dirname(file));
    let text = '';
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const cutoff = Date.now() - keepMs;
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const e = JSON.parse(line) as HistoryEntry;
        if (e.decidedAt >= cutoff) {
          h.entries.push(e);
          h.last.set(e.g, e);
        }
      } catch {
        // A line cut short by a crash: the rest of the file is still good.
      }
    }
    await replacePrivate(file, h.entries.map((e) => JSON.stringify(e) + '\n').join(''));
    return h;
  }

  add(entries: HistoryEntry[], now = Date.now()): Promise<void> {
    if (entries.length) {
      this.entries.push(...entries);
      for (const e of entries) this.last.set(e.g, e);
      const lines = entries.map((e) => JSON.stringify(e) + '\n').join('');
      this.writing = this.writing.then(() => appendPrivate(this.file, lines));
    }
    const cutoff = now - this.keepMs;
    let i = 0;
    while (i < this.entries.length && this.entries[i].decidedAt < cutoff) i++;
    if (i) this.entries.splice(0, i);
    return this.writing;
  }

  query(filter: (e: HistoryEntry) => boolean, limit: number): HistoryEntry[] {
    const out: HistoryEntry[] = [];
    for (let i = this.entries.length - 1; i >= 0 && out.length < limit; i--) if (filter(this.entries[i])) out.push(this.entries[i]);
    return out.reverse();
  }

  latest(g: string): HistoryEntry | undefined {
    return this.last.get(g);
  }
}
