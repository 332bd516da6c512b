/**
 * Prometheus: CocoaSyncer's `cocoaSyncerStatus{cocoaSyncerStatus=…}` gauge (read at every scrape, where
 * the original froze it at start), a per-node watchdog gauge, and dns-sync's own counters.
 */
import type { Labels, Metrics } from '../../sdk/metrics.ts';
import type { PassResult } from '../reconcile.ts';
import { liveCount, type ClusterView } from './view.ts';

export const COCOA_STATUS_GAUGE = 'cocoaSyncerStatus';

/** The five series of the original, same label values and meaning. */
export function cocoaStatusSeries(view: ClusterView): Array<[Labels, number]> {
  const live = liveCount(view);
  return [
    [{ cocoaSyncerStatus: 'NodeNumber' }, view.nodes.length],
    [{ cocoaSyncerStatus: 'CocoaSyncerManagedService' }, view.services.length],
    [{ cocoaSyncerStatus: 'CocoaSyncerCloudPlatformInfo' }, view.providerCount],
    [{ cocoaSyncerStatus: 'CocoaSyncerNodeOnlineCount' }, live],
    [{ cocoaSyncerStatus: 'CocoaSyncerNodeOfflineCount' }, view.nodes.length - live],
  ];
}

/** Seconds since each node's last heartbeat (nodes never seen have no series). */
export function watchdogSeries(view: ClusterView, now: number): Array<[Labels, number]> {
  return view.nodes.filter((n) => n.lastBeat !== null).map((n) => [{ node: n.name }, Math.max(0, (now - n.lastBeat!) / 1000)]);
}

export interface DnsSyncMetrics {
  /** Counts a pass; `triggeredAt`: when the change that caused it happened (node down, probe change), for the lag gauge. */
  recordPass(result: PassResult, triggeredAt: number | null, now: number): void;
}

export function registerDnsSyncMetrics(metrics: Metrics, read: () => { view: ClusterView; now: number; pendingWrites: number }): DnsSyncMetrics {
  metrics.gaugeFn(COCOA_STATUS_GAUGE, 'CocoaSyncer status: node, service and provider counts, nodes online and offline', () => cocoaStatusSeries(read().view));
  metrics.gaugeFn('outpost_dns_sync_node_watchdog_seconds', 'Seconds since the node\'s last heartbeat', () => {
    const { view, now } = read();
    return watchdogSeries(view, now);
  });
  metrics.gaugeFn('outpost_dns_sync_pending_writes', 'Line writes waiting in the retry queue (failed, retried with backoff until they succeed)', () => read().pendingWrites);
  const writes = metrics.counter('outpost_dns_sync_writes_total', 'DNS lines handed to a provider to write, by provider');
  const failures = metrics.counter('outpost_dns_sync_write_failures_total', 'DNS lines whose read, write or read-back failed (retried), by provider');
  const switches = metrics.counter('outpost_dns_sync_switches_total', 'DNS lines moved to another node, by service and line');
  const dark = metrics.gauge('outpost_dns_sync_lines_without_live_node', 'Lines no live node can serve (kept as they are) after the last pass');
  const lag = metrics.gauge('outpost_dns_sync_decision_lag_seconds', 'From the change that triggered the last pass to the end of its writes');
  const decideTime = metrics.gauge('outpost_dns_sync_decision_seconds', 'Time the last pass took to decide every line');
  return {
    recordPass(result, triggeredAt, now) {
      for (const [provider, n] of result.byProvider) {
        if (n.written) writes.inc({ provider }, n.written);
        if (n.failed) failures.inc({ provider }, n.failed);
      }
      for (const s of result.switched) switches.inc({ service: s.service, line: s.line });
      dark.set({}, result.alerts.length);
      decideTime.set({}, result.timing.decideMs / 1000);
      if (triggeredAt !== null) lag.set({}, Math.max(0, (now - triggeredAt) / 1000));
    },
  };
}
