import { definePlugin } from '../sdk/index.ts';
import { serverStatsConfig } from './schema.ts';
import { serverStatsAgent } from './agent.ts';
import { serverStatsController } from './controller.ts';

export default definePlugin({
  name: 'server-stats',
  config: serverStatsConfig,
  agent: serverStatsAgent,
  controller: serverStatsController,
});
