/**
 * The harness's clock. Fake by default: setTimeout, setInterval and Date are node:test's mock
 * timers, so a plugin's schedules, retries and timestamps move only when the test says so. The
 * real timer functions are kept here, taken before any mock, for the harness's own waiting.
 */
import { mock } from 'node:test';
import { runsInProgress } from '../scheduler.ts';

const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;

export interface Clock {
  readonly fake: boolean;
  now(): number;
  /**
   * Moves time on by ms (fake clock; a real one waits), in steps, letting the promises and I/O that
   * each step's timers started run before the next step: a schedule whose run is still going when
   * its next turn comes is skipped, as in production, only if it really is still going.
   */
  tick(ms: number, stepMs?: number): Promise<void>;
}

/** One turn of the event loop (I/O callbacks and promise jobs run). */
export const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A real-time sleep that the fake clock does not hold up. */
export function realSleep(ms: number): Promise<void> {
  return new Promise((resolve) => realSetTimeout(resolve, ms));
}

let fakeInUse = false;

/**
 * Lets the schedule runs in progress finish. A run still going after a second of real time waits on
 * the fake clock itself (a sleep inside it): it is left to later clock steps, and not waited for again
 * by the caller holding `waitedOut`.
 */
export async function letRunsFinish(waitedOut = new WeakSet<Promise<void>>()): Promise<void> {
  await turn();
  const pending = [...runsInProgress()].filter((p) => !waitedOut.has(p));
  if (!pending.length) return;
  let timer: NodeJS.Timeout | undefined;
  const finished = await Promise.race([Promise.all(pending).then(() => true), new Promise<false>((resolve) => (timer = realSetTimeout(() => resolve(false), 1000)))]);
  realClearTimeout(timer);
  if (!finished) for (const p of pending) waitedOut.add(p);
}

export function fakeClock(now: number, more: () => Promise<void> = async () => undefined): Clock & { release(): void } {
  if (fakeInUse) throw new Error('a fake clock is already in use in this process: close the other harness first');
  fakeInUse = true;
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now });
  return {
    fake: true,
    now: () => Date.now(),
    async tick(ms, stepMs = 100) {
      const waitedOut = new WeakSet<Promise<void>>();
      for (let left = ms; left > 0; left -= stepMs) {
        mock.timers.tick(Math.min(left, stepMs));
        await letRunsFinish(waitedOut);
        await more();
      }
    },
    release() {
      mock.timers.reset();
      fakeInUse = false;
    },
  };
}

export function realClock(): Clock & { release(): void } {
  return {
    fake: false,
    now: () => Date.now(),
    tick: (ms) => realSleep(ms),
    release: () => undefined,
  };
}

/** Polls fn until it is truthy, in real time (a deadline only ends a test that would hang). */
export async function until<T>(what: string, fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 10_000): Promise<T> {
  const end = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await realSleep(5);
  }
}
