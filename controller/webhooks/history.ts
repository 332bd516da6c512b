import { appendFile, open, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { GroupCommit } from '../../plugins/sdk/durable/group-commit.ts';

/**
 * Append-only log of finished deliveries (delivered, or dead past retention), kept out of the
 * outbox file so that file stays small. Rotated by size with one old generation kept, so a
 * long-running controller never fills its disk with webhook history.
 */
export class DeliveryHistory {
  private size = 0;

  private constructor(
    private readonly file: string,
    private readonly maxBytes: number,
  ) {}

  static async open(dataDir: string, maxBytes = 16 * 1024 * 1024): Promise<DeliveryHistory> {
    const h = new DeliveryHistory(join(dataDir, 'outbox.history.jsonl'), maxBytes);
    h.size = await stat(h.file).then((s) => s.size, () => 0);
    return h;
  }

  private readonly batch = new GroupCommit<string>((lines) => this.write(lines.join('\n') + '\n'));

  /** Appends records; calls in the same event-loop turn share one write. */
  append(records: unknown[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    return this.batch.add(records.map((r) => JSON.stringify(r)));
  }

  private async write(lines: string): Promise<void> {
    const bytes = Buffer.byteLength(lines);
    if (this.size > 0 && this.size + bytes > this.maxBytes) {
      await rename(this.file, this.file.replace(/\.jsonl$/, '.1.jsonl'));
      this.size = 0;
    }
    await appendFile(this.file, lines, { mode: 0o600 });
    this.size += bytes;
  }

  /** The last records of the current file (at most `maxBytes` read from its end), oldest first. */
  async tail<T>(maxBytes = 1024 * 1024): Promise<T[]> {
    let fh;
    try {
      fh = await open(this.file, 'r');
    } catch {
      return [];
    }
    try {
      const { size } = await fh.stat();
      const start = Math.max(0, size - maxBytes);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      const lines = buf.toString('utf8').split('\n');
      // A read starting mid-file begins inside a line: drop that partial first line.
      if (start > 0) lines.shift();
      const out: T[] = [];
      for (const line of lines) {
        if (!line.trim()) continue;
        try {
          out.push(JSON.parse(line) as T);
        } catch {
          // A torn last line after a crash is skipped; the rest of the history stays usable.
        }
      }
      return out;
    } finally {
      await fh.close();
    }
  }
}
