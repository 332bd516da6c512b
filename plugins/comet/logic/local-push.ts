import type { PushMsg } from '../messages.ts';
import type { PushRequest } from '../peer-messages.ts';
import type { RoutingTable } from './routing.ts';

/** How a routed push leaves this controller: one message per node, or one for several (encoded once). */
export interface NodeSender {
  /** Comet nodes linked to this controller (push/all's targets). */
  localNodes(): string[];
  sendToNode(nodeId: string, msg: PushMsg): void;
  broadcast(nodeIds: string[], msg: PushMsg): void;
}

/**
 * A push to the targets this controller's tables hold (goim's job → comet step): keys grouped per
 * node, mids expanded to their keys, a room to the nodes with a connection in it, push/all to every
 * local comet node. Returns how many nodes it went to.
 */
export function routeLocally(p: PushRequest, routing: RoutingTable, out: NodeSender): number {
  if (p.kind === 'keys' || p.kind === 'mids') {
    const keys = p.kind === 'keys' ? p.keys : routing.keysForMids(p.mids);
    const perNode = routing.nodesForKeys(keys);
    for (const [nodeId, nodeKeys] of perNode) out.sendToNode(nodeId, { kind: 'keys', op: p.op, keys: nodeKeys, body: p.body });
    return perNode.size;
  }
  const nodes = p.kind === 'room' ? routing.nodesForRoom(p.room) : out.localNodes();
  if (nodes.length > 0) out.broadcast(nodes, p);
  return nodes.length;
}
