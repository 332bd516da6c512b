/**
 * Node declarations (ISPs, networkType, address) and liveness as the decision sees them: the
 * watchdog's state, narrowed per service by the prober's quorum when the service names a monitor.
 */
import type { NodeDeclaration } from './config.ts';
import type { RecordType } from './lines.ts';
import { canonicalAddress } from './providers/provider.ts';

/** The controller's entries win whole over what an agent declares for itself. */
export function mergeDeclarations(fromController: Record<string, NodeDeclaration>, fromAgents: Record<string, NodeDeclaration>): Record<string, NodeDeclaration> {
  return { ...fromAgents, ...fromController };
}

export function addressOf(node: NodeDeclaration, type: RecordType): string | undefined {
  if (type === 'A') return node.networkType === 'IPV6' ? undefined : node.address;
  if (node.networkType === 'IPV6') return canonicalAddress(node.address);
  return node.networkType === 'Both' && node.address6 ? canonicalAddress(node.address6) : undefined;
}

/**
 * Which node a line points at now: the node (first by name) whose address of that type is among the
 * values, or null when none is (an empty line, a hand-made value, a node no longer declared).
 */
export function holderOf(values: readonly string[], type: RecordType, nodes: Record<string, NodeDeclaration>): string | null {
  const present = new Set(values.map(canonicalAddress));
  for (const name of Object.keys(nodes).sort()) {
    const addr = addressOf(nodes[name], type);
    if (addr !== undefined && present.has(addr)) return name;
  }
  return null;
}

/** `since`: when the current state began (ms since the epoch). */
export interface Liveness {
  up: boolean;
  since: number;
  /** Linked but not counted up or down yet (a controller that just started): its verdict is minutes away at most. */
  joining?: boolean;
}

export interface LivenessInput {
  /** The watchdog's view per node name; a node it does not know is down. */
  watchdog: Record<string, Liveness>;
  /** Per service name, per node name: the prober quorum on that node's record (services with `probe`). */
  probes?: Record<string, Record<string, Liveness>>;
}

/**
 * A node is live for a service when the watchdog says up and, for a probed service, the probe does not
 * say down (no verdict yet counts as not down: a new monitor must not take every line away). Up since
 * the later of the two.
 */
export function livenessFor(input: LivenessInput, service: { serviceName: string; probe?: unknown }, node: string): Liveness {
  const w = input.watchdog[node];
  if (!w || !w.up) return w?.joining ? w : { up: false, since: w?.since ?? 0 };
  if (!service.probe) return w;
  const p = input.probes?.[service.serviceName]?.[node];
  if (!p) return w;
  if (!p.up) return p;
  return { up: true, since: Math.max(w.since, p.since) };
}
