import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/**
 * Event-loop delay of this process, in ms. monitorEventLoopDelay records the time between two ticks of
 * its timer, so an idle loop reads its resolution (20 ms at 20), not 0: every figure here has the
 * resolution taken off. A metric or a benchmark reading the raw histogram overstates the delay by it.
 */
export class LoopDelay {
  private readonly h: IntervalHistogram;

  constructor(private readonly resolutionMs = 10) {
    this.h = monitorEventLoopDelay({ resolution: resolutionMs });
  }

  enable(): this {
    this.h.enable();
    return this;
  }

  disable(): void {
    this.h.disable();
  }

  /** The p-th percentile since the last reset (0 before any sample). */
  percentileMs(p: number): number {
    return this.delay(this.h.percentile(p));
  }

  maxMs(): number {
    return this.delay(this.h.max);
  }

  reset(): void {
    this.h.reset();
  }

  private delay(ns: number): number {
    return Number.isFinite(ns) ? Math.max(0, ns / 1e6 - this.resolutionMs) : 0;
  }
}
