import type { Counter, Gauge, Histogram, Labels, Metrics, MetricsRegistry } from '../plugins/sdk/metrics.ts';
import { metricClaimed, type Claims } from './claims.ts';
import type { Scope } from './scope.ts';

/**
 * A plugin's view of the host's metrics: only names inside its claims, never a family another part
 * of the process registered, and every family it created removed when it stops.
 */
export function scopedMetrics(registry: MetricsRegistry, claims: Claims, scope: Scope): Metrics {
  const mine = new Set<string>();
  scope.add('metrics', () => {
    for (const name of mine) registry.remove(name);
    mine.clear();
  });

  function claim(name: string): void {
    scope.assertOpen(`register metric ${name}`);
    if (!metricClaimed(claims, name)) throw new Error(`plugin ${scope.plugin} cannot register metric "${name}": outside its metric claims (${claims.metrics.join(', ')})`);
    if (registry.has(name) && !mine.has(name)) throw new Error(`plugin ${scope.plugin} cannot register metric "${name}": already registered by another part of this process`);
    mine.add(name);
  }
  const total = (name: string) => (name.endsWith('_total') ? name : `${name}_total`);

  return {
    counter(name: string, help: string): Counter {
      claim(total(name));
      return registry.counter(name, help);
    },
    gauge(name: string, help: string): Gauge {
      claim(name);
      return registry.gauge(name, help);
    },
    gaugeFn(name: string, help: string, read: () => Array<[Labels, number]> | number): void {
      claim(name);
      registry.gaugeFn(name, help, read);
    },
    perScrape: (compute) => registry.perScrape(compute),
    histogram(name: string, help: string, buckets?: number[]): Histogram {
      claim(name);
      return registry.histogram(name, help, buckets);
    },
  };
}
