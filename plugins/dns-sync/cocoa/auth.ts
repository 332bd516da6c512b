/**
 * The cocoaSecret check of getClusterInfo is rate-limited per caller address. The comparison itself is
 * Secret.matches: constant-time (the original compared with `==`), and never true for an unset secret
 * (the original let an empty secret match an empty one).
 */

export interface FailureLimit {
  /** Failures allowed per caller within the window. */
  max: number;
  windowMs: number;
}

export const DEFAULT_FAILURE_LIMIT: FailureLimit = { max: 10, windowMs: 60_000 };
/** Callers remembered at most; the oldest is forgotten first (a flood of addresses cannot grow memory). */
const MAX_CALLERS = 10_000;

/** Counts failed secret checks per caller in a fixed window; a caller over the limit is not checked at all. */
export class FailureLimiter {
  private readonly callers = new Map<string, { start: number; failures: number }>();

  constructor(private readonly limit: FailureLimit = DEFAULT_FAILURE_LIMIT) {}

  blocked(caller: string, now: number): boolean {
    const c = this.callers.get(caller);
    if (!c) return false;
    if (now - c.start >= this.limit.windowMs) {
      this.callers.delete(caller);
      return false;
    }
    return c.failures >= this.limit.max;
  }

  fail(caller: string, now: number): void {
    const c = this.callers.get(caller);
    if (c && now - c.start < this.limit.windowMs) {
      c.failures++;
      return;
    }
    this.callers.delete(caller);
    if (this.callers.size >= MAX_CALLERS) this.callers.delete(this.callers.keys().next().value!);
    this.callers.set(caller, { start: now, failures: 1 });
  }
}
