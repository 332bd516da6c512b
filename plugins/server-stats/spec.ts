import { defineSpec, z } from '../sdk/index.ts';
import { sampleSchema, serverStatsConfig } from './schema.ts';

export const spec = defineSpec({
  name: 'server-stats',
  config: serverStatsConfig,
  reports: { sample: sampleSchema },
  commands: { sample: { args: z.object({}), result: sampleSchema } },
  claims: {
    // The per-node gauges keep the names dashboards already use; outpost_node_up and friends stay the controller's.
    metrics: ['outpost_node_cpu_', 'outpost_node_memory_', 'outpost_node_disk_', 'outpost_node_load', 'outpost_node_network_', 'outpost_node_uptime_', 'outpost_node_stats_'],
    routes: ['/searchServer', '/api/v1/nodes/:id/stats'],
  },
});
export type Spec = typeof spec;
