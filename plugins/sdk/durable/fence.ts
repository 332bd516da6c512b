/**
 * Fencing of singleton work. Work that must run on one controller at a time (decisions, callbacks,
 * deliveries, dispatch) runs inside `runFenced(fence, ...)`: every store, log and queue write made
 * from there (the context follows the async chain, timers and callbacks created inside included)
 * carries the fence, and a backend that several processes share (PostgreSQL) checks it in the write's
 * own transaction. A controller paused past its lease's expiry (GC, SIGSTOP, a VM migration) wakes up
 * believing it still holds the lease; its writes are then refused with a StaleLeaseError instead of
 * overwriting what the new holder decided. On files (one process per data dir) the check is local.
 */
import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';

export interface Fence {
  /** The lease's name, e.g. `singleton`. */
  readonly lease: string;
  /** Incremented on every takeover: a write carrying an older epoch is stale. */
  readonly epoch: number;
  /** The controller id holding the lease for this epoch. */
  readonly holder: string;
  /** Whether this process still believes it holds the lease at this epoch (local, monotonic clock). */
  valid(): boolean;
}

export class StaleLeaseError extends Error {
  constructor(
    readonly fence: Pick<Fence, 'lease' | 'epoch' | 'holder'>,
    what: string,
  ) {
    super(`lease ${fence.lease} moved past epoch ${fence.epoch} (held by ${fence.holder} no more): ${what} refused, nothing was written`);
    this.name = 'StaleLeaseError';
  }
}

const current = new AsyncLocalStorage<Fence>();

/** Runs fn (and everything it starts) as singleton work under fence. */
export function runFenced<R>(fence: Fence, fn: () => R): R {
  return current.run(fence, fn);
}

/** The fence of the singleton work calling, if any. */
export function currentFence(): Fence | undefined {
  return current.getStore();
}

/**
 * fn bound to the caller's context: a callback registered by fenced work (a queue's onReady) stays
 * fenced, whoever fires it later; one registered outside stays unfenced.
 */
export function keepFence<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  return AsyncResource.bind(fn);
}

/** The caller's fence, refused at once when this process knows it is no longer valid. */
export function fenceOrThrow(what: string): Fence | undefined {
  const f = current.getStore();
  if (f && !f.valid()) throw new StaleLeaseError(f, what);
  return f;
}

/** Key of a fence for grouping the writes of one batch. */
export function fenceKey(f: Pick<Fence, 'lease' | 'epoch' | 'holder'>): string {
  return `${f.lease}\0${f.epoch}\0${f.holder}`;
}
