/**
 * Group commit for append-only files: items added during one event-loop turn are handed to `write`
 * as one batch, and batches are written one at a time, in order (records never interleave).
 */
export class GroupCommit<T> {
  private items: T[] = [];
  private flush: Promise<void> | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly write: (batch: T[]) => Promise<void>) {}

  /** Resolves once the batch holding these items is written; rejects with that batch's error. */
  add(items: T[]): Promise<void> {
    this.items.push(...items);
    // The next batch is cut only once the previous write is done, so every item added while a write
    // is in flight shares one write: under sustained load batches grow instead of queueing up one per
    // turn (which made the webhooks benchmark's durable enqueue lag seconds behind at 100 events/s).
    this.flush ??= this.chain
      .catch(() => undefined)
      .then(() => new Promise<void>((r) => setImmediate(r)))
      .then(() => {
        this.flush = undefined;
        const batch = this.items;
        this.items = [];
        // A failed write fails its own callers only; the next batch still goes out.
        return this.write(batch);
      });
    this.chain = this.flush;
    return this.flush;
  }

  /** Waits for everything added so far to be written (or to have failed). */
  async settled(): Promise<void> {
    await this.flush?.catch(() => undefined);
    await this.chain.catch(() => undefined);
  }
}
