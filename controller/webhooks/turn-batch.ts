/**
 * Group commit for append-only files: lines added during one event-loop turn are handed to `write`
 * as one chunk, and chunks are written one at a time, in order (lines never interleave).
 */
export class TurnBatch {
  private lines: string[] = [];
  private flush: Promise<void> | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly write: (chunk: string) => Promise<void>) {}

  /** Resolves once the chunk holding these lines is written. */
  add(lines: string[]): Promise<void> {
    this.lines.push(...lines);
    // The next chunk is cut only once the previous write is done, so every line added while a write
    // is in flight shares one write: under sustained load chunks grow instead of queueing up one per
    // turn (which made the webhooks benchmark's durable enqueue lag seconds behind at 100 events/s).
    this.flush ??= this.chain
      .catch(() => undefined)
      .then(() => new Promise<void>((r) => setImmediate(r)))
      .then(() => {
        this.flush = undefined;
        const chunk = this.lines.join('\n') + '\n';
        this.lines = [];
        // A failed write fails its own callers only; the next chunk still goes out.
        return this.write(chunk);
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
