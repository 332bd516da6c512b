/**
 * Liveness as the decision takes it (nodes.ts LivenessInput), built from what the controller sees: the
 * watchdog's node states with since-times, and the prober's verdicts on each node's record for the
 * services that name a monitor. Also when the next node becomes settled (up for upAfter), so a line
 * returns to its owner then and not at the next reconcile.
 */
import type { NodeInfo } from '../sdk/index.ts';
import type { NodeDeclaration, ServiceConfig } from './config.ts';
import type { Liveness, LivenessInput } from './nodes.ts';
import { probeKey, type Persisted } from './state.ts';

/**
 * Per node name. `since` is the registry's; after a controller restart the registry has none, so the
 * last transition dns-sync saw stands in, and a node up since before both counts as up long ago.
 * A node not counted yet is joining while it is linked, or until `joinUntil` (its agent may not have
 * linked yet after a controller start); after that one never heard from counts as down.
 */
export function watchdogLiveness(nodes: readonly NodeInfo[], seen: Persisted['since'], joinUntil = 0, now = Date.now()): Record<string, Liveness> {
  const out: Record<string, Liveness> = Object.create(null);
  for (const n of nodes) {
    const up = n.state === 'up';
    const last = seen[n.name];
    const since = n.since ?? (last && last.state === n.state ? last.at : 0);
    out[n.name] = n.state === 'unknown' && (n.connected || now < joinUntil) ? { up, since, joining: true } : { up, since };
  }
  return out;
}

/** Per probed service, per node name: the verdict on the node's address (IPv4 first, then IPv6) in the service's monitor group. */
export function probeLiveness(services: readonly ServiceConfig[], nodes: Record<string, NodeDeclaration>, verdicts: Persisted['probes']): Record<string, Record<string, Liveness>> {
  const out: Record<string, Record<string, Liveness>> = Object.create(null);
  for (const s of services) {
    const probe = s.probe;
    if (!probe) continue;
    const perNode: Record<string, Liveness> = Object.create(null);
    for (const [name, decl] of Object.entries(nodes)) {
      const v = [decl.address, decl.address6].map((ip) => (ip ? verdicts[probeKey(probe.app_name, probe.group_id, ip)] : undefined)).find((x) => x !== undefined);
      if (v) perNode[name] = v;
    }
    out[s.serviceName] = perNode;
  }
  return out;
}

/** The earliest time after `now` at which a live node (watchdog or probe) will have been up for upAfter. */
export function nextSettleAt(input: LivenessInput, upAfterMs: number, now: number): number | undefined {
  let next: number | undefined;
  const consider = (l: Liveness) => {
    const at = l.since + upAfterMs;
    if (l.up && at > now && (next === undefined || at < next)) next = at;
  };
  for (const l of Object.values(input.watchdog)) consider(l);
  for (const perNode of Object.values(input.probes ?? {})) for (const l of Object.values(perNode)) consider(l);
  return next;
}
