/**
 * dns-sync on the controller (the leader, alone deciding and writing): the watchdog's node changes,
 * the prober's verdicts and the agents' declarations feed the leader's evaluations; CocoaSyncer's
 * routes, the REST API, the metrics and the dashboard panel read its state.
 */
import { defineController, z } from '../sdk/index.ts';
import { cocoaRoutes } from './cocoa/routes.ts';
import { Leader } from './leader.ts';
import { dnsPanel } from './panel.ts';
import { restRoutes } from './rest.ts';
import { spec } from './spec.ts';
import { probeKey } from './state.ts';

/** What dns-sync reads of the prober's probe.changed (plugins/prober/spec.ts); the rest of it is kept and ignored. */
const probeChanged = z.object({ app_name: z.string(), group_id: z.string(), ip: z.string(), to: z.enum(['up', 'down']) });

export default defineController(spec, (ctx) => {
  const leader = new Leader(ctx);

  function nodeChanged(node: { name: string; since: number | null }, state: 'up' | 'down'): void {
    const at = node.since ?? Date.now();
    // Kept for a controller restart (the registry forgets since-times); the evaluation does not wait for it.
    leader.store.update((d) => void (d.since[node.name] = { state, at })).catch((err) => ctx.log.error({ err: (err as Error).message }, 'could not record a node transition'));
    leader.shareCounts();
    void leader.request(at);
  }

  return {
    async start() {
      await leader.start();
      ctx.nodes.on('down', (n) => nodeChanged(n, 'down'));
      ctx.nodes.on('up', (n) => nodeChanged(n, 'up'));
      ctx.events.on('probe.changed', probeChanged, async (p) => {
        if (!ctx.config.services.some((s) => s.probe?.app_name === p.app_name && s.probe.group_id === p.group_id)) return;
        const now = Date.now();
        await leader.store.update((d) => void (d.probes[probeKey(p.app_name, p.group_id, p.ip)] = { up: p.to === 'up', since: now }));
        void leader.request(now);
      });
      ctx.routes.mount([...cocoaRoutes(leader), ...restRoutes(leader)]);
      // Decisions and provider writes: on the lease holder only. Routes, reports and listeners stay on every controller.
      ctx.singleton((term) => leader.lead(term));
    },
    stop: () => leader.stop(),
    update: () => leader.update(),
    onReport: {
      async declared(meta, { self }) {
        const before = JSON.stringify(leader.store.data.declared[meta.nodeId] ?? null);
        // Written before the report is acknowledged: a declaration is never lost to a crash.
        await leader.store.update((d) => {
          if (self) d.declared[meta.nodeId] = self;
          else delete d.declared[meta.nodeId];
        });
        leader.shareCounts({ nodeId: meta.nodeId });
        if (JSON.stringify(self) !== before) void leader.request(Date.now());
      },
    },
    panel: dnsPanel(leader),
  };
});
