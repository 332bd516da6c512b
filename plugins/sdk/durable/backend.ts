/**
 * Where a data dir's stores, logs and queues live: the one seam between everything that persists and
 * the storage behind it. By default that is files under the dir. A host can mount its data dir on
 * another backend (the controller mounts it on PostgreSQL when configured so); from then on every
 * openStore/openLog/openQueue for that dir or a folder under it goes there. Callers, plugins included,
 * keep passing directories and never learn which backend holds their data, so moving a controller to
 * PostgreSQL changes no owner's code.
 *
 * Names under a mount are the path from the mounted dir: `nodes` for `<data>/nodes.json`,
 * `plugins/prober.monitors` for `<data>/plugins/prober.monitors.json`; export and import map them back
 * to the same files.
 */
import { relative, resolve, sep } from 'node:path';
import type { ZodType } from 'zod';
import type { ClosableStore } from '../store.ts';
import type { DurableLog, LogOptions } from './log.ts';
import type { DueQueue, QueueOptions } from './queue.ts';
import type { History } from './history.ts';

export interface StorageBackend {
  /** `file` or `postgres`: shown in status answers. */
  readonly kind: string;
  openStore<T extends object>(name: string, defaults: T): Promise<ClosableStore<T>>;
  /** `opts.dir` is the caller's directory; a backend that is not files ignores it. */
  openLog<R>(name: string, schema: ZodType<R>, opts: LogOptions<R>): Promise<DurableLog<R>>;
  openQueue<T>(name: string, schema: ZodType<T>, opts: QueueOptions): Promise<DueQueue<T>>;
  openHistory<T>(name: string, opts: { maxBytes: number }): Promise<History<T>>;
  /**
   * Runs fn while no other process sharing this storage runs an exclusive section of the same name
   * (e.g. two controllers initialising one database at the same moment).
   */
  exclusive<R>(name: string, fn: () => Promise<R>): Promise<R>;
}

export interface Mounted {
  backend: StorageBackend;
  /** The name under the mount of `name` in the directory that was looked up. */
  name(name: string): string;
}

const mounts = new Map<string, StorageBackend>();

/** Puts every store, log and queue under root on backend; returns the unmount. */
export function mountStorage(root: string, backend: StorageBackend): () => void {
  const key = resolve(root);
  if (mounts.has(key)) throw new Error(`${root} is already mounted on a ${mounts.get(key)!.kind} store`);
  mounts.set(key, backend);
  return () => {
    if (mounts.get(key) === backend) mounts.delete(key);
  };
}

/** The backend holding dir, when dir is a mounted data dir or a folder under one. */
export function mountedAt(dir: string): Mounted | undefined {
  const abs = resolve(dir);
  for (const [root, backend] of mounts) {
    const rel = relative(root, abs);
    if (rel !== '..' && !rel.startsWith(`..${sep}`)) {
      const prefix = rel === '' ? '' : `${rel.split(sep).join('/')}/`;
      return { backend, name: (name) => prefix + name };
    }
  }
  return undefined;
}

const local = new Map<string, Promise<unknown>>();

/**
 * Runs fn exclusively per (dir, name): across processes on a mounted backend that supports it, within
 * this process for files (a file data dir belongs to one process).
 */
export function exclusive<R>(dir: string, name: string, fn: () => Promise<R>): Promise<R> {
  const m = mountedAt(dir);
  if (m) return m.backend.exclusive(m.name(name), fn);
  const key = `${resolve(dir)}\0${name}`;
  const run = (local.get(key) ?? Promise.resolve()).catch(() => undefined).then(fn);
  const tail = run.catch(() => undefined);
  local.set(key, tail);
  void tail.then(() => {
    if (local.get(key) === tail) local.delete(key);
  });
  return run;
}
