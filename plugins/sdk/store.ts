import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Low, type Adapter } from 'lowdb';
import { appendPrivate, narrowMode, privateDir, replacePrivate } from './files.ts';
import { parseStoredJson, withoutPrototypes } from './json.ts';
import { mountedAt } from './durable/backend.ts';

/**
 * The only persistence a plugin or host sees. lowdb is the embedded default; a data dir mounted on
 * another backend (durable/backend.ts: PostgreSQL) gets that backend's stores instead, which is why
 * nobody outside this file touches lowdb.
 */
export interface Store<T extends object> {
  /** In-memory view; mutate only inside update() so every change reaches disk. */
  readonly data: T;
  /** Applies fn to the data and resolves once the result is on disk (writes share one commit). */
  update<R>(fn: (data: T) => R, opts?: UpdateOptions): Promise<R>;
  /** Appends finished records to an append-only history file next to the store. */
  archive(records: unknown[]): Promise<void>;
  /**
   * Calls fn after rows that another process (a controller sharing the database) committed were
   * taken into `data`; returns the unsubscribe. Absent where nobody else writes (files).
   */
  onRemoteChange?(fn: (changes: RemoteChange[]) => void): () => void;
  /** Resolves once `data` holds every commit other processes made before the call. Absent: nothing to wait for. */
  refresh?(): Promise<void>;
}

export interface UpdateOptions {
  /**
   * The parts of the document this update changes, when the caller knows them: `[field]` for a
   * top-level field, `[field, key]` for one entry of a field holding an object keyed by id. A store
   * in PostgreSQL then compares just those rows with what it wrote, instead of serialising the whole
   * document on every commit: for the 30,000 entries of a large fleet's node store, that is the
   * difference between a fraction of a millisecond and an event loop blocked for seconds. A change
   * outside them is not written by this update (it is by the next update that names no touches).
   * The file store ignores it: it writes its whole file anyway.
   */
  touches?: ReadonlyArray<readonly [field: string, key?: string]>;
}

/** A part of a store another process changed: a top-level field, or one entry (`key`) of an object field. */
export interface RemoteChange {
  field: string;
  key?: string;
}

/**
 * For a decision that must not miss another controller's commit made just before (a notification
 * takes milliseconds): one read of what changed.
 */
export function refreshStore(store: Store<object>): Promise<void> {
  return store.refresh?.() ?? Promise.resolve();
}

/**
 * Keeps what an owner derives from a store (an index, a cache) in step with other controllers'
 * writes; a no-op on stores only this process writes.
 */
export function onRemoteChange(store: Store<object>, fn: (changes: RemoteChange[]) => void): () => void {
  return store.onRemoteChange?.(fn) ?? (() => undefined);
}

/**
 * The file behind a store. Read back, its objects have no prototype, so maps keyed by ids that
 * came from clients (`__proto__`, `constructor`) hold them as ordinary entries. Written through a
 * temp file that is owner-only from its creation (files.ts); lowdb's own file adapter creates it with
 * the process umask and would leave every store world-readable.
 */
class PrivateJsonFile<T> implements Adapter<T> {
  constructor(private readonly file: string) {}

  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    return parseStoredJson(text) as T;
  }

  write(data: T): Promise<void> {
    // Compact JSON: stores are rewritten whole on each commit, so size is write cost.
    return replacePrivate(this.file, JSON.stringify(data));
  }
}

class LowStore<T extends object> implements Store<T> {
  private writing: Promise<void> = Promise.resolve();
  constructor(
    private readonly db: Low<T>,
    private readonly file: string,
  ) {}

  get data(): T {
    return this.db.data;
  }

  async update<R>(fn: (data: T) => R, _opts?: UpdateOptions): Promise<R> {
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

  private flush(): Promise<void> {
    return this.db.write();
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
    this.writing = this.writing.then(() => appendPrivate(this.file.replace(/\.json$/, '') + '.history.jsonl', lines));
    return this.writing;
  }
}

/** What the host holds of a store it opened for a plugin: the store, and closing it when the plugin stops. */
export type ClosableStore<T extends object> = Store<T> & { close(): Promise<void> };

export async function openStore<T extends object>(dir: string, name: string, defaults: T): Promise<ClosableStore<T>> {
  const mounted = mountedAt(dir);
  if (mounted) return mounted.backend.openStore(mounted.name(name), defaults);
  const file = join(dir, `${name}.json`);
  await privateDir(dirname(file));
  await narrowMode(file);
  const db = new Low<T>(new PrivateJsonFile<T>(file), withoutPrototypes(defaults));
  try {
    await db.read();
  } catch (err) {
    throw new Error(`store ${file} is not valid JSON: ${(err as Error).message}`);
  }
  // Fill fields added since the file was written, so old data dirs keep working after upgrades.
  // Defaults without prototypes too: their empty maps are where ids go.
  db.data = Object.assign(Object.create(null) as T, withoutPrototypes(defaults), db.data);
  return new LowStore(db, file);
}
