/**
 * Counts failed signature checks per key in fixed windows and refuses a key that passed its limit
 * until its window ends. Bounded: the oldest keys are dropped past maxKeys, so a flood of addresses
 * cannot grow it without limit.
 */
export interface Limit {
  max: number;
  windowSec: number;
}

type Window = { start: number; count: number };

export class FailureLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(private readonly maxKeys = 100_000) {}

  /** Seconds until every given key may try again; 0 when none is over its limit. */
  retryAfter(keys: Array<[string, Limit]>, now: number): number {
    let wait = 0;
    for (const [key, limit] of keys) {
      const w = this.windows.get(key);
      if (!w) continue;
      const end = w.start + limit.windowSec * 1000;
      if (now >= end) this.windows.delete(key);
      else if (w.count >= limit.max) wait = Math.max(wait, Math.ceil((end - now) / 1000));
    }
    return wait;
  }

  fail(keys: Array<[string, Limit]>, now: number): void {
    for (const [key, limit] of keys) {
      const w = this.windows.get(key);
      if (w && now < w.start + limit.windowSec * 1000) {
        w.count++;
        continue;
      }
      this.windows.delete(key);
      this.windows.set(key, { start: now, count: 1 });
      if (this.windows.size > this.maxKeys) this.windows.delete(this.windows.keys().next().value!);
    }
  }
}
