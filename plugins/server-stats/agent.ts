import type { AgentContext, AgentPlugin } from '../sdk/index.ts';
import type { ServerStatsConfig } from './schema.ts';
import { Sampler } from './sampler.ts';

export function serverStatsAgent(ctx: AgentContext<ServerStatsConfig>): AgentPlugin {
  const sampler = new Sampler();
  return {
    async start() {
      // Fail start (and so mark the plugin failed) if this host cannot be sampled at all.
      await sampler.sampleDisk();
      await sampler.sample();
      ctx.schedule.every(ctx.config.diskInterval * 1000, () => sampler.sampleDisk());
      ctx.schedule.every(ctx.config.interval * 1000, async () => ctx.report('sample', await sampler.sample()), { immediate: true });
    },
    stop() {},
    async onCommand(action) {
      if (action === 'sample') return sampler.sample();
      throw new Error(`unknown action "${action}"`);
    },
  };
}
