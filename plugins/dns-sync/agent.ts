/**
 * The node's side: tells the controller what the node's own config declares (ISPs, networkType,
 * address; the controller's entry for the node wins) and serves CocoaSyncer's badge for this node, so
 * a visitor can tell which node answered. The agent's own /v1/monitor is the core's.
 */
import { defineAgent, restError } from '../sdk/index.ts';
import { badgeAnswer } from './cocoa/badge.ts';
import { spec } from './spec.ts';

export default defineAgent(spec, (ctx) => {
  /** Unknown until the controller's first cluster message: the badge says so rather than guessing. */
  let cluster: { live: number; total: number } | null = null;
  let declared = '';

  async function declare(): Promise<void> {
    const self = ctx.config.self ?? null;
    const text = JSON.stringify(self);
    if (text === declared) return;
    await ctx.report('declared', { self });
    declared = text;
  }

  return {
    async start() {
      ctx.http.mount([
        {
          method: 'GET',
          path: '/v1/badge',
          auth: 'none',
          error: restError,
          handler: () => badgeAnswer(ctx.node.name, cluster?.live ?? '?', cluster?.total ?? '?'),
        },
      ]);
      await declare();
    },
    update: () => declare(),
    onMessage: {
      cluster: (m) => void (cluster = m),
    },
  };
});
