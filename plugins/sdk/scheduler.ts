import cron from 'node-cron';

export interface Scheduler {
  /** Runs fn every ms; a run that is still going when the next is due is skipped, never overlapped. */
  every(ms: number, fn: () => unknown, opts?: { immediate?: boolean }): () => void;
  /** Runs fn on a cron expression (node-cron syntax, seconds optional), without overlap. */
  cron(expression: string, fn: () => unknown): () => void;
  /** Runs fn once after ms. */
  after(ms: number, fn: () => unknown): () => void;
  /** Stops everything this scheduler started. */
  stopAll(): void;
}

/** Runs in progress in this process: the test harness lets them finish between steps of its fake clock. */
const inProgress = new Set<Promise<void>>();
export function runsInProgress(): ReadonlySet<Promise<void>> {
  return inProgress;
}

export function createScheduler(onError: (err: unknown) => void): Scheduler {
  const stops = new Set<() => void>();

  function guarded(fn: () => unknown): () => void {
    let running = false;
    return () => {
      if (running) return;
      running = true;
      const run: Promise<void> = Promise.resolve()
        .then(async () => void (await fn()))
        .catch(onError)
        .finally(() => {
          running = false;
          inProgress.delete(run);
        });
      inProgress.add(run);
    };
  }

  function track(stop: () => void): () => void {
    const once = () => {
      if (stops.delete(once)) stop();
    };
    stops.add(once);
    return once;
  }

  return {
    every(ms, fn, opts) {
      const run = guarded(fn);
      const timer = setInterval(run, ms);
      timer.unref();
      if (opts?.immediate) run();
      return track(() => clearInterval(timer));
    },
    cron(expression, fn) {
      if (!cron.validate(expression)) throw new Error(`invalid cron expression "${expression}"`);
      const task = cron.schedule(expression, guarded(fn));
      return track(() => void task.stop());
    },
    after(ms, fn) {
      const timer = setTimeout(() => {
        stops.delete(stop);
        guarded(fn)();
      }, ms);
      timer.unref();
      const stop = track(() => clearTimeout(timer));
      return stop;
    },
    stopAll() {
      for (const stop of [...stops]) stop();
    },
  };
}
