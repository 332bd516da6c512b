/**
 * Singleton work: started for every term of the lease this controller holds, inside the term's fence
 * (so its writes are checked against the lease), and disposed of when the term ends. The controller's
 * own (watchdog decisions, webhook deliveries) and the plugins' (`ctx.singleton`) run through here.
 */
import { runFenced } from '../../plugins/sdk/durable/fence.ts';
import type { Log } from '../../plugins/sdk/log.ts';
import type { Lease } from './lease.ts';

export interface SingletonTerm {
  epoch: number;
  /** Aborted when the term ends. */
  signal: AbortSignal;
}

/** What start returns: how to stop what it started (awaited before the next term's start). */
export type Dispose = void | (() => unknown);
export type SingletonStart = (term: SingletonTerm) => Dispose | Promise<Dispose>;

/** Runs start for each term of lease; returns the stop, which disposes of the running term's work. */
export function runSingleton(lease: Lease, what: string, log: Log, start: SingletonStart): () => Promise<void> {
  let chain: Promise<void> = Promise.resolve();
  let endCurrent: (() => Promise<void>) | undefined;
  let stopped = false;

  const off = lease.onTerm((term) => {
    // A term's work starts once the previous term's is disposed of: two terms' work never overlaps.
    const started: Promise<Dispose> = chain.then(() => (term.signal.aborted || stopped ? undefined : runFenced(term.fence, () => start({ epoch: term.epoch, signal: term.signal }))));
    started.catch((err) => log.error({ work: what, epoch: term.epoch, err: (err as Error).message }, 'singleton work failed to start; it starts again with the next term'));
    let ended: Promise<void> | undefined;
    const end = () =>
      (ended ??= started.then(
        async (d) => {
          try {
            await d?.();
          } catch (err) {
            log.error({ work: what, epoch: term.epoch, err: (err as Error)?.message }, 'singleton work failed to stop');
          }
        },
        () => undefined,
      ));
    endCurrent = end;
    chain = new Promise<void>((resolve) => {
      const fire = () => void end().then(resolve);
      if (term.signal.aborted) fire();
      else term.signal.addEventListener('abort', fire, { once: true });
    });
  });

  return async () => {
    stopped = true;
    off();
    await endCurrent?.();
  };
}
