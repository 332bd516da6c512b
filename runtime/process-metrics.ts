import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { LoopDelay } from '../plugins/sdk/loop-delay.ts';
import { MetricsRegistry } from '../plugins/sdk/metrics.ts';
import { VERSION } from '../plugins/sdk/version.ts';

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/** Process-level gauges every Outpost process exports (controller and agent alike). */
export function processMetrics(metrics: MetricsRegistry, prefix: string): () => void {
  const lag = new LoopDelay(20).enable();
  metrics.gaugeFn(`${prefix}_event_loop_lag_seconds`, 'Event loop delay, p99 since the last scrape, in seconds.', () => {
    const v = lag.percentileMs(99) / 1000;
    lag.reset();
    return v;
  });
  // Garbage collection stops the event loop: its pauses tell a heap problem from a slow handler, and
  // the kind tells which: minor (young objects: the allocation rate) or major (a large live heap).
  const gcSeconds: Record<string, number> = Object.fromEntries(Object.values(GC_KINDS).map((k) => [k, 0]));
  let gcMax = 0;
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = GC_KINDS[(e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? 0] ?? 'other';
      gcSeconds[kind] = (gcSeconds[kind] ?? 0) + e.duration / 1000;
      gcMax = Math.max(gcMax, e.duration / 1000);
    }
  });
  gc.observe({ entryTypes: ['gc'] });
  metrics.counterFn(`${prefix}_gc_pause_seconds_total`, 'Time spent in garbage collection pauses since the process started, by kind (minor, major, incremental, weakcb), in seconds.', () => Object.entries(gcSeconds).map(([kind, v]) => [{ kind }, v]));
  metrics.gaugeFn(`${prefix}_gc_pause_max_seconds`, 'Longest garbage collection pause since the last scrape, in seconds.', () => {
    const v = gcMax;
    gcMax = 0;
    return v;
  });
  metrics.gaugeFn(`${prefix}_resident_memory_bytes`, 'Resident set size of the process in bytes.', () => process.memoryUsage.rss());
  metrics.counterFn(`${prefix}_cpu_seconds_total`, 'CPU time used by the process since it started, in seconds.', () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
  metrics.gaugeFn(`${prefix}_heap_used_bytes`, 'V8 heap in use by the process in bytes.', () => process.memoryUsage().heapUsed);
  metrics.gaugeFn(`${prefix}_build_info`, 'Outpost version this process runs (always 1).', () => [[{ version: VERSION }, 1]]);
  const started = Date.now() / 1000;
  metrics.gaugeFn(`${prefix}_start_time_seconds`, 'Start time of the process since the Unix epoch in seconds.', () => started);
  return () => {
    lag.disable();
    gc.disconnect();
  };
}
