import type { NodeInfo } from '../sdk/index.ts';
import type { ClusterCounts } from './logic/cluster-counts.ts';
import type { NodeCounters } from './logic/node-counters.ts';

export interface NodeStatus {
  id: string;
  name: string;
  state: NodeInfo['state'];
  /** The comet plugin's state on the node as its agent reports it. */
  plugin: string;
  conns: number;
  ips: number;
  rooms: number;
  delivered: number;
  dropped: number;
}

export interface CometStatus {
  conns: number;
  ips: number;
  rooms: number;
  nodes: NodeStatus[];
  top: Array<{ room: string; count: number }>;
}

/**
 * What the panel and GET /api/v1/comet/status show: cluster-wide totals, per-node figures (nodes
 * linked to other controllers as those last shared them), the largest rooms.
 */
export function cometStatus(nodes: NodeInfo[], counts: ClusterCounts, counters: NodeCounters, top = 10): CometStatus {
  const { conns, ips } = counts.totals();
  const rooms = counts.allRoomCounts();
  const withComet = nodes.filter((n) => n.plugins.some((p) => p.name === 'comet') || counts.nodeStats(n.id));
  return {
    conns,
    ips,
    rooms: rooms.size,
    nodes: withComet.map((n) => {
      const s = counts.nodeStats(n.id);
      const c = counters.latest(n.id) ?? s;
      return {
        id: n.id,
        name: n.name,
        state: n.state,
        plugin: n.plugins.find((p) => p.name === 'comet')?.state ?? 'not reported',
        conns: s?.conns ?? 0,
        ips: s?.ips ?? 0,
        rooms: s?.rooms ?? 0,
        delivered: c?.delivered ?? 0,
        dropped: c?.dropped ?? 0,
      };
    }),
    top: [...rooms]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, top)
      .map(([room, count]) => ({ room, count })),
  };
}
