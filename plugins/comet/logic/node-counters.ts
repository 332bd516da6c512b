import type { StatsMsg } from '../messages.ts';

/**
 * Per-node counters of the gateways (delivered, slow-consumer drops) turned into increments: each
 * agent sends its totals since its gateway started, so a restarted gateway (new epoch) counts from 0.
 */
export class NodeCounters {
  private readonly last = new Map<string, StatsMsg>();

  /** What changed since the node's previous stats; the latest stay readable for the panel. */
  apply(nodeId: string, s: StatsMsg): { delivered: number; dropped: number } {
    const prev = this.last.get(nodeId);
    this.last.set(nodeId, s);
    if (!prev || prev.epoch !== s.epoch) return { delivered: s.delivered, dropped: s.dropped };
    return { delivered: Math.max(0, s.delivered - prev.delivered), dropped: Math.max(0, s.dropped - prev.dropped) };
  }

  latest(nodeId: string): StatsMsg | undefined {
    return this.last.get(nodeId);
  }
}
