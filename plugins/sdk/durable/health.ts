import type { StorageWriteError } from './storage-error.ts';

export interface StorageProblem {
  store: string;
  code: string;
  message: string;
  /** ISO time of the first failure since the last good write. */
  since: string;
}

/**
 * Which durable stores currently fail to write, and how many writes failed by errno code: what a
 * host shows in its readiness/health answers and metrics. A store is healthy again after its next
 * good write.
 */
export class StorageHealth {
  private readonly failing = new Map<string, StorageProblem>();
  private readonly counts = new Map<string, number>();

  failed(err: StorageWriteError): void {
    this.counts.set(err.code, (this.counts.get(err.code) ?? 0) + 1);
    const was = this.failing.get(err.store);
    this.failing.set(err.store, { store: err.store, code: err.code, message: err.message, since: was?.since ?? new Date().toISOString() });
  }

  ok(store: string): void {
    this.failing.delete(store);
  }

  problems(): StorageProblem[] {
    return [...this.failing.values()];
  }

  /** Failed writes since start by errno code, as metric samples. */
  errorCounts(): Array<[Record<string, string>, number]> {
    return [...this.counts].map(([code, n]) => [{ code }, n]);
  }
}
