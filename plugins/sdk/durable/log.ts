/**
 * The durable log: the one way state that must survive a crash is kept (event log, outboxes,
 * queues). An owner keeps its state in memory, applies each change there and appends a record
 * describing it; on open it gets every record back, in order, to rebuild that state; now and then
 * the log asks it for a snapshot (records that rebuild the current state from nothing) and drops
 * what came before.
 *
 * This file is the seam: owners see only DurableLog and openLog. The file implementation
 * (file-log.ts) is the embedded default; a dir mounted on PostgreSQL (backend.ts) gets a table of
 * records per log, the snapshot swapped in within one transaction, without any owner changing.
 */
import type { ZodType } from 'zod';
import type { Log } from '../log.ts';
import type { StorageHealth } from './health.ts';
import type { LogFs } from './files.ts';
import { FileLog } from './file-log.ts';
import { mountedAt } from './backend.ts';

/**
 * When appended records are forced to stable storage:
 * - `always`: before append() resolves (one fsync per group commit: appends of one turn share it);
 * - `interval`: append() resolves once the OS has the bytes (a process crash loses nothing), an fsync
 *   every `fsyncIntervalMs` bounds what a power loss can take;
 * - `none`: left to the OS (tests, benchmarks, data that can be rebuilt).
 */
export type FsyncPolicy = 'always' | 'interval' | 'none';

export interface LogOptions<R> {
  /** Directory of the log's files (created 0700). */
  dir: string;
  /**
   * Receives every stored record at open, oldest first: the snapshot's, then those appended since.
   * Where other processes append to the same log (controllers sharing PostgreSQL), their records
   * reach load too as they are appended (after this process's own records of the same moment, so
   * load must not depend on the order of records from different processes); onRemoteAppend tells
   * the owner afterwards.
   */
  load(record: R): void;
  /**
   * Forgets everything load was given. Called before a follower that fell behind another process's
   * compaction replays the snapshot (a controller cut off from the database for longer than two
   * compactions take). Without it such a follower keeps the state it has, goes on with the records
   * that are left, and never compacts the log itself.
   */
  reset?(): void;
  /**
   * Records that rebuild the owner's current state from nothing. Called at compaction; it must
   * reflect every record already passed to append() (apply changes to memory before appending them).
   */
  snapshot(): Iterable<R>;
  fsync?: FsyncPolicy;
  /** For `interval` (and appends with `sync: false` under `always`); default 200 ms. */
  fsyncIntervalMs?: number;
  /** Appended bytes after which the log compacts (and at least as many as the last snapshot holds); default 4 MiB. */
  compactAfterBytes?: number;
  /** Where torn tails, skipped records and failed compactions are reported. */
  log?: Log;
  /** Shared tracker of failing stores, for /readyz, health answers and metrics. */
  health?: StorageHealth;
  /** Loads without changing anything on disk (no truncation, no header repair); append() refuses. */
  readOnly?: boolean;
  /** File operations; tests inject failures here. */
  fs?: LogFs;
  /**
   * What the log holds, written into its files' headers so tools (store export/import) can tell the
   * due-time queue's logs (`queue`) from others (default `log`).
   */
  kind?: 'log' | 'queue';
}

export interface LogStats {
  journalBytes: number;
  snapshotBytes: number;
  /** Incremented by every compaction. */
  generation: number;
  /** What open found: records loaded, lines skipped as unreadable, bytes of torn tail dropped. */
  loaded: { records: number; skipped: number; tornBytes: number };
  /** As found in the files (or given at open for a new log). */
  kind: 'log' | 'queue';
}

export interface AppendOptions {
  /**
   * false: under `always`, resolve once the OS has the records (a process crash loses nothing) and
   * leave their fsync to the next append that wants one, or to `fsyncIntervalMs` at the latest. For
   * records whose loss on a power cut only repeats work (a queue's acks), so they share fsyncs.
   */
  sync?: boolean;
  /**
   * Appends only if no other process appended to the log since this one last took in its records
   * (compare and append); otherwise rejects with a StorageConflictError, nothing of the batch kept:
   * refreshLog(), decide again, retry. For numbering records one sequence across controllers (the
   * event log). Appends of one turn share a batch, so use it on a log whose appends all use it.
   * Files (one process) never conflict.
   */
  exclusive?: boolean;
}

export interface DurableLog<R> {
  readonly name: string;
  /**
   * Stores records (validated against the log's schema first); resolves once they are written per
   * the fsync policy. Rejects with a StorageWriteError when the disk refuses (nothing of the batch
   * is kept then: a partial append is cut back); later appends work again once space returns.
   */
  append(records: R[], opts?: AppendOptions): Promise<void>;
  /** Compacts now (the snapshot replaces everything appended so far). */
  compact(): Promise<void>;
  /** Forces appended records to stable storage now. */
  sync(): Promise<void>;
  stats(): LogStats;
  /**
   * Calls fn after records that another process (a controller sharing the database) appended were
   * given to `load`, in record order; `reset` when they are the whole log again (after opts.reset).
   * Returns the unsubscribe. Absent where nobody else appends (files).
   */
  onRemoteAppend?(fn: (records: R[], how: RemoteAppend) => void): () => void;
  /** Resolves once `load` has had every record other processes appended before the call. Absent: nothing to wait for. */
  refresh?(): Promise<void>;
  /** Waits for pending appends, syncs, closes the files. */
  close(): Promise<void>;
}

export interface RemoteAppend {
  /** The records are the whole log (its snapshot and what followed): the owner's state was reset first. */
  reset: boolean;
}

/**
 * Keeps what an owner does with its records (timers, indexes, fan-out) in step with records other
 * controllers append; a no-op on logs only this process appends to (files).
 */
export function onRemoteAppend<R>(log: DurableLog<R>, fn: (records: R[], how: RemoteAppend) => void): () => void {
  return log.onRemoteAppend?.(fn) ?? (() => undefined);
}

/** For a decision that must not miss a record another controller appended just before: one read of what is new. */
export function refreshLog(log: DurableLog<unknown>): Promise<void> {
  return log.refresh?.() ?? Promise.resolve();
}

const LOG_NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/i;

export async function openLog<R>(name: string, schema: ZodType<R>, opts: LogOptions<R>): Promise<DurableLog<R>> {
  if (!LOG_NAME.test(name)) throw new Error(`log name "${name.slice(0, 100)}" must be 1-100 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  const mounted = mountedAt(opts.dir);
  if (mounted) return mounted.backend.openLog(mounted.name(name), schema, opts);
  return FileLog.open(name, schema, opts);
}
