import type { NodeInfo } from '../plugins/sdk/contract.ts';
import { NodeUnavailable, nodeDownMessage } from '../plugins/sdk/nodes.ts';

export interface NodeLookup<N extends NodeInfo> {
  resolve(ref: string): N | undefined;
  defaultNode(): N | undefined;
  /** How many nodes are enrolled (to say why no default node exists). */
  count(): number;
}

/**
 * A node that can take `plugin`'s commands now, or a NodeUnavailable saying why not. Its link is what
 * counts, not its watchdog state: a node connected but not yet "up" (first heartbeats not counted)
 * answers commands. The registry and the SDK's test harness both answer with this.
 */
export function requireNode<N extends NodeInfo>(nodes: NodeLookup<N>, ref: string | undefined, plugin: string): N {
  const node = ref ? nodes.resolve(ref) : nodes.defaultNode();
  if (!node) {
    if (ref) throw new NodeUnavailable('unknown', 404, `unknown node "${ref.slice(0, 80)}"`);
    throw new NodeUnavailable('unnamed', 400, nodes.count() ? 'several nodes are enrolled: name one with the "node" parameter' : 'no node is enrolled yet');
  }
  if (!node.connected) throw new NodeUnavailable('down', 503, nodeDownMessage(node.name), node);
  const p = node.plugins.find((x) => x.name === plugin);
  if (!p) throw new NodeUnavailable('plugin', 503, `${plugin} is not enabled on node ${node.name}`, node);
  if (p.state !== 'running') throw new NodeUnavailable('plugin', 503, `${plugin} on node ${node.name} is ${p.state}${p.error ? `: ${p.error}` : ''}`, node);
  return node;
}
