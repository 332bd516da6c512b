import type { Session } from './session.ts';

/** Paced broadcasts running at once; past it a push/all goes out unpaced (memory stays bounded). */
const MAX_PACED = 16;
const TICK_MS = 100;

/**
 * push/all with `speed`: goim's comet sleeps `bucketCount / speed` whole seconds after each of its 32
 * buckets. Here the node's connections (as they were when the push came) get the message at `speed`
 * connections per second, in 100 ms steps; connections closed meanwhile are skipped.
 */
export class PacedBroadcasts {
  private readonly timers = new Set<NodeJS.Timeout>();

  /** False when too many are running: the caller delivers at once. */
  start(targets: Session[], perSecond: number, deliver: (s: Session) => void): boolean {
    if (this.timers.size >= MAX_PACED) return false;
    const step = Math.max(1, Math.ceil((perSecond * TICK_MS) / 1000));
    let next = 0;
    const tick = () => {
      const end = Math.min(targets.length, next + step);
      for (; next < end; next++) deliver(targets[next]);
      if (next >= targets.length) {
        clearInterval(timer);
        this.timers.delete(timer);
      }
    };
    const timer = setInterval(tick, TICK_MS);
    this.timers.add(timer);
    tick();
    return true;
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
  }
}
