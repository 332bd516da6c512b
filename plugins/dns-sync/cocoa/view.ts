/**
 * The cluster as CocoaSyncer's surfaces show it (getClusterInfo, badge, status page, gauges): built
 * from the config and the watchdog, and holding nothing secret by construction (no secret field, no
 * provider settings), so no surface can leak one.
 */
import type { DnsSyncConfig } from '../config.ts';
import type { Isp, NetworkType } from '../lines.ts';

export interface CocoaNode {
  name: string;
  /** The address DNS points at (the declared public address; IPv4 first for Both). */
  address: string;
  ISPs: Isp[];
  networkType: NetworkType;
  up: boolean;
  /** Last heartbeat (ms since the epoch), null if never seen. */
  lastBeat: number | null;
}

export interface CocoaService {
  serviceName: string;
  domain: string;
  record: string;
  /** The provider's name in the config. */
  platformProvider: string;
}

export interface ClusterView {
  nodeName: string;
  /** The controller's port and URL (CocoaSyncer's apiPort and nodeAddress of the leader). */
  apiPort: number;
  nodeAddress: string;
  /** The watchdog's down delay in whole minutes (CocoaSyncer's `timeout` unit), at least 1. */
  timeoutMinutes: number;
  createdAt: number;
  updatedAt: number;
  nodes: CocoaNode[];
  services: CocoaService[];
  providerCount: number;
}

/** What the watchdog knows of a node, by node name. */
export interface WatchdogFact {
  up: boolean;
  lastBeat: number | null;
}

export interface ViewFacts {
  apiPort: number;
  nodeAddress: string;
  /** Heartbeat interval × missed beats before down, ms. */
  downAfterMs: number;
  createdAt: number;
  updatedAt: number;
  watchdog: Record<string, WatchdogFact>;
}

export function clusterView(config: Pick<DnsSyncConfig, 'nodeName' | 'nodes' | 'services' | 'providers'>, facts: ViewFacts): ClusterView {
  return {
    nodeName: config.nodeName,
    apiPort: facts.apiPort,
    nodeAddress: facts.nodeAddress,
    timeoutMinutes: Math.max(1, Math.ceil(facts.downAfterMs / 60_000)),
    createdAt: facts.createdAt,
    updatedAt: facts.updatedAt,
    nodes: Object.entries(config.nodes)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, n]) => ({
        name,
        address: n.address,
        ISPs: [...n.ISPs],
        networkType: n.networkType,
        up: facts.watchdog[name]?.up ?? false,
        lastBeat: facts.watchdog[name]?.lastBeat ?? null,
      })),
    services: config.services.map((s) => ({ serviceName: s.serviceName, domain: s.domain, record: s.record, platformProvider: s.platformProvider })),
    providerCount: Object.keys(config.providers).length,
  };
}

export const liveCount = (view: ClusterView) => view.nodes.filter((n) => n.up).length;
