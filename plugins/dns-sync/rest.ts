/**
 * dns-sync's native REST API (admin): every line with its node, address, last switch and pending
 * write; the nodes as the decision sees them; what dry-run providers would write; and "re-sync now".
 */
import { restError, type Route } from '../sdk/index.ts';
import type { Leader } from './leader.ts';

/** The nodes the decision knows: declaration (from the controller's config or the node's agent) and watchdog state. */
export function nodeRows(leader: Leader) {
  const view = new Map(leader.view().nodes.map((n) => [n.name, n]));
  return Object.entries(leader.nodes())
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, d]) => ({ name, source: leader.sourceOf(name), ISPs: d.ISPs, networkType: d.networkType, address: d.address, ...(d.address6 ? { address6: d.address6 } : {}), up: view.get(name)?.up ?? false, lastHeartbeat: view.get(name)?.lastBeat ?? null }));
}

export function status(leader: Leader) {
  return { lastPass: leader.lastPass(), pendingWrites: leader.retries.count(), nodes: nodeRows(leader), lines: leader.lines(), dryRun: leader.dryRunRecords() };
}

export function restRoutes(leader: Leader): Route[] {
  return [
    { method: 'GET', path: '/api/v1/dns-sync/status', auth: 'admin', error: restError, handler: () => ({ json: status(leader) }) },
    {
      method: 'POST',
      path: '/api/v1/dns-sync/resync',
      auth: 'admin',
      error: restError,
      // A full evaluation now (failed lines included), answered once it is done.
      handler: async () => {
        await leader.request(Date.now());
        const lines = leader.lines();
        return { json: { lastPass: leader.lastPass(), pendingWrites: leader.retries.count(), failing: lines.filter((l) => l.pending).map((l) => ({ service: l.service, name: l.name, line: l.line, recordType: l.recordType, error: l.pending!.error })) } };
      },
    },
  ];
}
