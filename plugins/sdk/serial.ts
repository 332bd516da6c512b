/** Runs tasks one after another in call order; a failed task does not stop the ones queued after it. */
export interface Serial {
  run<T>(task: () => Promise<T>): Promise<T>;
  /** Resolves once nothing is queued, including tasks queued while waiting. */
  idle(): Promise<void>;
}

export function createSerial(): Serial {
  let tail: Promise<unknown> = Promise.resolve();
  return {
    run<T>(task: () => Promise<T>): Promise<T> {
      const next = tail.catch(() => undefined).then(task);
      tail = next;
      return next;
    },
    async idle() {
      for (let settled: Promise<unknown> | undefined; settled !== tail; ) {
        settled = tail;
        await settled.catch(() => undefined);
      }
    },
  };
}
