import { definePlugin } from '../sdk/index.ts';
import { proberConfig } from './schema.ts';
import { proberAgent } from './agent.ts';
import { proberController } from './controller.ts';

export default definePlugin({
  name: 'prober',
  config: proberConfig,
  agent: proberAgent,
  controller: proberController,
  events: ['probe.changed'],
});
