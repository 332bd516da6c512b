import { appendFile, mkdir, chmod } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Low } from 'lowdb';
import { DataFile } from 'lowdb/node';

/**
 * The only persistence a plugin or host sees. lowdb is the embedded default; a networked store can
 * implement the same interface later, which is why nobody outside this file touches lowdb.
 */
export interface Store<T extends object> {
  /** In-memory view; mutate only inside update() so every change reaches disk. */
  readonly data: T;
  /** Applies fn to the data and resolves once the result is on disk (writes share one commit). */
  update<R>(fn: (data: T) => R): Promise<R>;
  /** Appends finished records to an append-only history file next to the store. */
  archive(records: unknown[]): Promise<void>;
}

export interface StoreOptions {
  /** File mode for stores that hold secrets (keys, credentials). */
  mode?: number;
}

class LowStore<T extends object> implements Store<T> {
  private writing: Promise<void> = Promise.resolve();
  constructor(
    private readonly db: Low<T>,
    private readonly file: string,
    private readonly mode: number | undefined,
  ) {}

  get data(): T {
    return this.db.data;
  }

  async update<R>(fn: (data: T) => R): Promise<R> {
    if (this.closed) throw new Error(`store ${this.file} is closed (its plugin stopped)`);
    const result = fn(this.db.data);
    await this.commit();
    return result;
  }

  private inflight: Promise<void> | null = null;
  private queued: Promise<void> | null = null;

  /**
   * Group commit: every update made while a write is in flight shares the one write that follows it.
   * lowdb serialises the whole file on each db.write() call before steno collapses the writes, so
   * calling it per update cost one full JSON.stringify per update: the link benchmark's hot spot
   * (thousands of nodes enrolling or coming up at once, each rewriting a large nodes.json).
   */
  private commit(): Promise<void> {
    if (this.queued) return this.queued;
    if (!this.inflight) {
      this.inflight = this.flush().finally(() => {
        this.inflight = null;
      });
      return this.inflight;
    }
    this.queued = this.inflight
      .catch(() => undefined)
      .then(() => {
        this.queued = null;
        return this.commit();
      });
    return this.queued;
  }

  private async flush(): Promise<void> {
    await this.db.write();
    if (this.mode !== undefined) await chmod(this.file, this.mode);
  }

  private closed = false;

  /** Waits for pending writes, then refuses more: a stopped plugin's stray update must not overwrite its successor's file. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([this.queued ?? this.inflight, this.writing]);
  }

  archive(records: unknown[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`store ${this.file} is closed (its plugin stopped)`));
    if (records.length === 0) return Promise.resolve();
    const lines = records.map((r) => JSON.stringify(r)).join('\n') + '\n';
    // Serialise appends so lines from concurrent callers never interleave.
    this.writing = this.writing.then(() => appendFile(this.file.replace(/\.json$/, '') + '.history.jsonl', lines));
    return this.writing;
  }
}

/** What the host holds of a store it opened for a plugin: the store, and closing it when the plugin stops. */
export type ClosableStore<T extends object> = Store<T> & { close(): Promise<void> };

export async function openStore<T extends object>(dir: string, name: string, defaults: T, opts: StoreOptions = {}): Promise<ClosableStore<T>> {
  const file = join(dir, `${name}.json`);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  // Compact JSON: stores are rewritten whole on each commit, so size is write cost.
  const db = new Low<T>(new DataFile<T>(file, { parse: JSON.parse, stringify: (d) => JSON.stringify(d) }), structuredClone(defaults));
  try {
    await db.read();
  } catch (err) {
    throw new Error(`store ${file} is not valid JSON: ${(err as Error).message}`);
  }
  // Fill fields added since the file was written, so old data dirs keep working after upgrades.
  db.data = { ...structuredClone(defaults), ...(db.data ?? {}) };
  return new LowStore(db, file, opts.mode);
}
