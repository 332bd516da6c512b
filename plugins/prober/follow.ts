import type { DurableLog } from '../sdk/index.ts';

/** A log that can tell of records other controllers appended (PostgreSQL); files cannot. */
type Followable<R> = DurableLog<R> & { onRemoteAppend?(fn: (records: R[], how: { reset: boolean }) => void): () => void };

/**
 * Calls fn once records other controllers appended to `log` were given to its `load`, in the log's
 * order (`reset`: the owner's state was reset and they are the whole log); returns the unsubscribe.
 * A no-op on files, where nobody else appends.
 */
export function followLog<R>(log: DurableLog<R>, fn: (records: R[], reset: boolean) => void): () => void {
  return (log as Followable<R>).onRemoteAppend?.((records, how) => fn(records, how.reset)) ?? (() => undefined);
}
