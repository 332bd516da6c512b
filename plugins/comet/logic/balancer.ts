/**
 * goim's logic LoadBalancer (internal/logic/balancer.go): each comet node has a fixed weight and a
 * connection count; a node's current weight grows with its share of the weights and shrinks with
 * its share of the connections, nodes are offered by current weight, and every answer counts as a
 * connection for the node offered first until that node reports new numbers. Regions are not used
 * (goim's region lookup is a stub that returns none), so every node's gain is 1.
 */
export interface BalancedNode {
  id: string;
  hostname: string;
  addrs: string[];
  weight: number;
  conns: number;
  /** Changes whenever the node reports new numbers (goim: the discovery instance's LastTs). */
  version: number;
}

const MIN_WEIGHT = 1;
const MAX_WEIGHT = 1 << 20;
/** goim offers at most five nodes. */
const MAX_NODES = 5;

interface Weighted {
  node: BalancedNode;
  currentConns: number;
  currentWeight: number;
}

export class Balancer {
  private nodes = new Map<string, Weighted>();
  private totalConns = 0;
  private totalWeight = 0;

  /** goim's Update: a node whose version did not change keeps the choices counted against it. */
  update(nodes: readonly BalancedNode[]): void {
    const next = new Map<string, Weighted>();
    this.totalConns = 0;
    this.totalWeight = 0;
    for (const node of nodes) {
      const old = this.nodes.get(node.id);
      const w = old && old.node.version === node.version ? { ...old, node } : { node, currentConns: node.conns, currentWeight: 0 };
      next.set(node.id, w);
      this.totalConns += w.currentConns;
      this.totalWeight += node.weight;
    }
    this.nodes = next;
  }

  /** goim's NodeAddrs: up to five nodes by current weight, as host names (with `domain`) and addresses. */
  pick(domain: string): { domains: string[]; addrs: string[] } {
    const list = [...this.nodes.values()];
    for (const w of list) this.calculate(w);
    // goim's sort is not stable; ties go by id here so answers are reproducible.
    list.sort((a, b) => b.currentWeight - a.currentWeight || (a.node.id < b.node.id ? -1 : 1));
    if (list.length > 0) {
      list[0].currentConns++;
      this.totalConns++;
    }
    const chosen = list.slice(0, MAX_NODES);
    return { domains: chosen.map((w) => w.node.hostname + domain), addrs: chosen.flatMap((w) => w.node.addrs) };
  }

  private calculate(w: Weighted): void {
    const fixed = w.node.weight;
    if (this.totalConns <= 0) {
      w.currentWeight = 0;
      return;
    }
    const diff = fixed / this.totalWeight - (w.currentConns / this.totalConns) * 0.5;
    const multiple = diff * this.totalConns;
    const floor = Math.floor(multiple);
    w.currentWeight = Math.trunc(fixed + (floor - multiple >= -0.5 ? floor : Math.ceil(multiple)));
    if (diff < 0) w.currentWeight = Math.max(MIN_WEIGHT, w.currentWeight);
    else w.currentWeight = Math.min(MAX_WEIGHT, w.currentWeight);
  }
}
