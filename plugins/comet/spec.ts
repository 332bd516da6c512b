import { defineSpec } from '../sdk/index.ts';
import { cometConfig } from './config.ts';
import { controlMsg, presenceMsg, pushMsg, statsMsg } from './messages.ts';

/**
 * comet (goim): the agent half is goim's comet (the connection gateway), the controller half goim's
 * logic and job (the HTTP push API, routing tables, online counts). Everything between them is a
 * best-effort message: pushes are worth delivering now or not at all (as goim's Kafka-less path),
 * and presence heals itself with periodic snapshots.
 */
export const spec = defineSpec({
  name: 'comet',
  config: cometConfig,
  messages: {
    toAgent: { push: pushMsg, control: controlMsg },
    toController: { presence: presenceMsg, stats: statsMsg },
  },
  claims: {
    // goim's API keeps its paths; `/nodes/instances` is where the seed document puts instances.
    routes: ['/goim/*', '/nodes/instances', '/api/v1/comet/*'],
  },
});
export type Spec = typeof spec;
