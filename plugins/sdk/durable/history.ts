/**
 * Histories: append-only records of finished things (delivered webhooks, dead ones past retention),
 * kept out of the live state so it stays small, and read back only as their latest part at start.
 * Files: `<name>.history.jsonl`, rotated by size with one old generation kept (`<name>.history.1.jsonl`),
 * so a long-running controller never fills its disk with them. A dir mounted on another backend
 * (backend.ts) keeps them there, bounded the same way.
 */
import { open, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { GroupCommit } from './group-commit.ts';
import { appendPrivate, privateDir } from '../files.ts';
import { mountedAt } from './backend.ts';

export interface History<T> {
  /** Appends records; calls in the same event-loop turn share one write. */
  append(records: T[]): Promise<void>;
  /** The latest records (about `maxBytes` of them, default 1 MiB), oldest first. */
  tail(maxBytes?: number): Promise<T[]>;
}

export interface HistoryOptions {
  /** Size past which the history rotates (files) or is trimmed (databases); default 16 MiB. */
  maxBytes?: number;
}

const DEFAULT_MAX = 16 * 1024 * 1024;
const DEFAULT_TAIL = 1024 * 1024;
const NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/i;

export function openHistory<T>(dir: string, name: string, opts: HistoryOptions = {}): Promise<History<T>> {
  if (!NAME.test(name)) return Promise.reject(new Error(`history name "${name.slice(0, 100)}" must be 1-100 letters, digits, ".", "_" or "-", starting with a letter or digit`));
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX;
  const mounted = mountedAt(dir);
  if (mounted) return mounted.backend.openHistory<T>(mounted.name(name), { maxBytes });
  return FileHistory.open<T>(dir, name, maxBytes);
}

class FileHistory<T> implements History<T> {
  private size = 0;

  private constructor(
    private readonly file: string,
    private readonly maxBytes: number,
  ) {}

  static async open<T>(dir: string, name: string, maxBytes: number): Promise<FileHistory<T>> {
    await privateDir(dir);
    const h = new FileHistory<T>(join(dir, `${name}.history.jsonl`), maxBytes);
    h.size = await stat(h.file).then((s) => s.size, () => 0);
    return h;
  }

  private readonly batch = new GroupCommit<string>((lines) => this.write(lines.join('\n') + '\n'));

  append(records: T[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    return this.batch.add(records.map((r) => JSON.stringify(r)));
  }

  private async write(lines: string): Promise<void> {
    const bytes = Buffer.byteLength(lines);
    if (this.size > 0 && this.size + bytes > this.maxBytes) {
      await rename(this.file, this.file.replace(/\.jsonl$/, '.1.jsonl'));
      this.size = 0;
    }
    await appendPrivate(this.file, lines);
    this.size += bytes;
  }

  async tail(maxBytes = DEFAULT_TAIL): Promise<T[]> {
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
