import type { NodeReport } from '../peer-messages.ts';
import type { PeerCounts } from './peer-counts.ts';
import type { RoutingTable } from './routing.ts';

/** A node's figures: from the table when linked here (its gateway counters are the controller's), from a peer's report otherwise. */
export type NodeFigures = Omit<NodeReport, 'delivered' | 'dropped'> & Partial<Pick<NodeReport, 'delivered' | 'dropped'>>;

/**
 * Cluster-wide online counts (goim's logic counts over every comet): this controller's routing table
 * for its own nodes plus what the other controllers shared. Alone (one controller, or on files) the
 * peers hold nothing and every answer is the table's own, computed as before.
 */
export class ClusterCounts {
  constructor(
    private readonly routing: RoutingTable,
    private readonly peers: PeerCounts,
  ) {}

  roomCount(room: string): number {
    return this.routing.roomCount(room) + this.peers.roomCount(room);
  }

  /** Every room with at least one connection anywhere, with its count. */
  allRoomCounts(): ReadonlyMap<string, number> {
    if (this.peers.size === 0) return this.routing.allRoomCounts();
    const out = new Map(this.routing.allRoomCounts());
    for (const [room, n] of this.peers.rooms()) out.set(room, (out.get(room) ?? 0) + n);
    return out;
  }

  /** The cluster-wide counts of the rooms one of this controller's nodes holds (its op-3 replies). */
  roomCountsFor(nodeId: string): Map<string, number> {
    const out = this.routing.roomCountsFor(nodeId);
    if (this.peers.size > 0) for (const [room, n] of out) out.set(room, n + this.peers.roomCount(room));
    return out;
  }

  totals(): { conns: number; ips: number } {
    const local = this.routing.totals();
    if (this.peers.size === 0) return local;
    const p = this.peers.totals();
    return { conns: local.conns + p.conns, ips: local.ips + p.ips };
  }

  /** A node's figures: from this controller's table when linked here, else from the peer holding it. */
  nodeStats(nodeId: string): NodeFigures | undefined {
    return this.routing.nodeStats(nodeId) ?? this.peers.node(nodeId);
  }

  /** Whether this controller's table holds the node (it is linked here and sent its snapshot). */
  isLocal(nodeId: string): boolean {
    return this.routing.hasNode(nodeId);
  }
}
