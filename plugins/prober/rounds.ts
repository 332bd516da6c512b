import { hash32 } from './quorum.ts';

/**
 * Rounds start on interval boundaries of the epoch (60 s rounds start on the minute, as iplive's
 * did), so every node probes the same round and the controller can line their results up.
 */
export function roundStart(nowMs: number, intervalSec: number): number {
  const ms = intervalSec * 1000;
  return Math.floor(nowMs / ms) * ms;
}

/**
 * The part of a round over which check starts are spread: a share of the interval, but always
 * leaving room for every attempt (timeout × (retries + 1)) to finish before the round ends.
 */
export function spreadWindowMs(intervalSec: number, timeoutSec: number, retryCount: number, fraction: number): number {
  const interval = intervalSec * 1000;
  const budget = timeoutSec * 1000 * (retryCount + 1) + 500;
  return Math.max(0, Math.min(interval * fraction, interval - budget));
}

/** A stable offset inside the window for one check, so starts do not bunch up at the boundary. */
export function offsetMs(checkKey: string, windowMs: number): number {
  if (windowMs <= 0) return 0;
  return hash32(checkKey) % Math.floor(windowMs);
}
