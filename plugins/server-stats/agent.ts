import { defineAgent } from '../sdk/index.ts';
import { spec } from './spec.ts';
import { Sampler } from './sampler.ts';
import { ContainerCounter } from './containers.ts';

export default defineAgent(spec, (ctx) => {
  const sampler = new Sampler();
  const containers = new ContainerCounter();
  const sample = async () => ({ ...(await sampler.sample()), containers: containers.latest() });
  return {
    async start() {
      // Fail start (and so mark the plugin failed) if this host cannot be sampled at all.
      await sampler.sampleDisk();
      await sampler.sample();
      await containers.refresh();
      ctx.schedule.every(ctx.config.diskInterval * 1000, () => sampler.sampleDisk());
      ctx.schedule.every(ctx.config.diskInterval * 1000, () => containers.refresh());
      ctx.schedule.every(ctx.config.interval * 1000, async () => ctx.report('sample', await sample()), { immediate: true });
    },
    commands: { sample: () => sample() },
  };
});
