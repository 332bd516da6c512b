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
    this.flush ??= new Promise<void>((r) => setImmediate(r)).then(() => {
      this.flush = undefined;
      const chunk = this.lines.join('\n') + '\n';
      this.lines = [];
      // A failed write fails its own callers only; the next chunk still goes out.
      const next = this.chain.catch(() => undefined).then(() => this.write(chunk));
      this.chain = next;
      return next;
    });
    return this.flush;
  }

  /** Waits for everything added so far to be written (or to have failed). */
  async settled(): Promise<void> {
    await this.flush?.catch(() => undefined);
    await this.chain.catch(() => undefined);
  }
}
