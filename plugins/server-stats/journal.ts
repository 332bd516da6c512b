import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { appendPrivate, replacePrivate } from '../sdk/index.ts';
import type { Sample } from './schema.ts';

export interface JournalEntry {
  node: string;
  sample: Sample;
}

/**
 * Append-only log of applied samples, written before a report is acknowledged so a controller crash
 * loses none of them; compact() snapshots the whole history elsewhere and empties it. Appends and
 * compactions run on one chain, so no line can fall between a snapshot and the truncation after it.
 * Appending one line per report keeps the per-report cost independent of how much history is kept.
 */
export class SampleJournal {
  private chain: Promise<void> = Promise.resolve();
  private readonly file: string;

  constructor(dir: string, name: string) {
    this.file = join(dir, `${name}.journal.jsonl`);
  }

  /** Entries written since the last compaction; a line torn by a crash mid-write is skipped. */
  async load(): Promise<JournalEntry[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: JournalEntry[] = [];
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        out.push(JSON.parse(line) as JournalEntry);
      } catch {
        // only the last line can be torn; it was never acknowledged, so the agent still holds it
      }
    }
    return out;
  }

  append(entry: JournalEntry): Promise<void> {
    return this.enqueue(() => appendPrivate(this.file, JSON.stringify(entry) + '\n'));
  }

  /** Runs snapshot (which must persist everything applied so far), then empties the journal. */
  compact(snapshot: () => Promise<void>): Promise<void> {
    return this.enqueue(async () => {
      await snapshot();
      await replacePrivate(this.file, '');
    });
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    const next = this.chain.catch(() => undefined).then(step);
    this.chain = next;
    return next;
  }
}
