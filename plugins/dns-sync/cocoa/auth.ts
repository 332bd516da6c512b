/**
 * The cocoaSecret check of getClusterInfo: constant-time (the original compared with `==`), never
 * true for an unset secret (the original let an empty secret match an empty one), and failures
 * rate-limited per caller address.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** Compares digests so neither the length nor the first differing byte shows in the timing. */
export function secretMatches(presented: unknown, secret: string | undefined): boolean {
  if (!secret || typeof presented !== 'string') return false;
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(secret, 'utf8').digest();
  return timingSafeEqual(a, b);
}

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
