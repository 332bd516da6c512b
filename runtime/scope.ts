/**
 * The lifetime of one plugin instance: everything the plugin registers through its context adds a
 * disposer here, and stopping the plugin (or a failed start) runs them all, newest first, after
 * aborting `signal`. A registration made after the scope closed (a stray timer of a stopped
 * instance) is disposed of at once and refused, so nothing outlives its instance.
 */
export class Scope {
  private readonly ac = new AbortController();
  private readonly disposers = new Set<{ what: string; fn: () => unknown }>();

  constructor(readonly plugin: string) {}

  get signal(): AbortSignal {
    return this.ac.signal;
  }

  get closed(): boolean {
    return this.ac.signal.aborted;
  }

  /** Throws when the scope is closed: the instance asking was stopped. */
  assertOpen(what: string): void {
    if (this.closed) throw new Error(`plugin ${this.plugin} is stopped: cannot ${what}`);
  }

  /**
   * Registers fn to run on dispose. The returned function runs it early (e.g. a listener the plugin
   * closes itself) and forgets it. On a closed scope fn runs now and add() throws.
   */
  add(what: string, fn: () => unknown): () => Promise<void> {
    if (this.closed) {
      void Promise.resolve().then(fn).catch(() => undefined);
      this.assertOpen(what);
    }
    const entry = { what, fn };
    this.disposers.add(entry);
    return async () => {
      if (this.disposers.delete(entry)) await entry.fn();
    };
  }

  /** Aborts the signal, then runs every disposer newest first; a failing one is reported and the rest still run. */
  async dispose(onError: (what: string, err: unknown) => void): Promise<void> {
    if (!this.closed) this.ac.abort(new Error(`plugin ${this.plugin} stopped`));
    for (const entry of [...this.disposers].reverse()) {
      this.disposers.delete(entry);
      try {
        await entry.fn();
      } catch (err) {
        onError(entry.what, err);
      }
    }
  }

  /** What is still registered, by kind (tests check that a stop leaves nothing behind). */
  registered(): string[] {
    return [...this.disposers].map((d) => d.what);
  }
}
