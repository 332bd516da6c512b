import type { DueQueue, Leased } from './queue.ts';
import { keepFence } from './fence.ts';

export interface WorkOptions {
  /** Items handled at once. */
  concurrency: number;
  /** Lease per item: an item whose handler runs longer becomes available to others again. */
  leaseMs: number;
  /** Delay before an item is due again after its handler failed for the nth time (n = attempts so far + 1). */
  backoff(attempts: number, error: unknown): number;
  /** Told about bookkeeping failures (an ack or fail that could not be written); the item may then run again. */
  onError?(err: unknown, item: Leased<unknown>): void;
  /** Told when leasing failed (the storage is unreachable); the worker tries again at the queue's next onReady. */
  onLeaseError?(err: unknown): void;
}

/**
 * Runs handler for each item as it becomes due: acked when it resolves, failed with the backoff when it
 * throws. Returns stop(), which waits for the handlers running.
 */
export function work<T>(queue: DueQueue<T>, handler: (item: Leased<T>) => Promise<void>, opts: WorkOptions): { stop(): Promise<void> } {
  let active = 0;
  let stopped = false;
  const running = new Set<Promise<void>>();
  const report = (err: unknown, it: Leased<T>) => opts.onError?.(err, it as Leased<unknown>);

  const run = async (it: Leased<T>) => {
    try {
      await handler(it);
      await queue.ack(it.id, it.token).catch((err) => report(err, it));
    } catch (err) {
      await queue.fail(it.id, opts.backoff(it.attempts + 1, err), { token: it.token, error: (err as Error)?.message ?? String(err) }).catch((e) => report(e, it));
    }
  };

  // One lease request at a time (it is async): a pull asked for meanwhile runs once this one is done,
  // so two overlapping pulls never both fill the same free slots.
  let pulling: Promise<void> | undefined;
  let again = false;
  const pull = (): void => {
    if (stopped) return;
    if (pulling) {
      again = true;
      return;
    }
    const room = opts.concurrency - active;
    if (room <= 0) return;
    pulling = queue
      .lease(room, opts.leaseMs)
      .then(
        (items) => {
          for (const it of items) {
            active += 1;
            const p = run(it).finally(() => {
              active -= 1;
              running.delete(p);
              pull();
            });
            running.add(p);
          }
        },
        (err) => opts.onLeaseError?.(err),
      )
      .finally(() => {
        pulling = undefined;
        if (again) {
          again = false;
          pull();
        }
      });
  };

  // Fired later by the queue's timer: bound here, so a worker that is singleton work leases under its fence.
  const off = queue.onReady(keepFence(pull));
  pull();
  return {
    async stop() {
      stopped = true;
      off();
      // Items a lease in flight hands out still run (they are leased to us): wait for it first.
      await pulling;
      await Promise.all([...running]);
    },
  };
}
