import { defineSpec, z } from '../sdk/index.ts';
import { checkSpecSchema, proberConfig, resultBatchSchema } from './schema.ts';

const none = z.object({});
const count = z.number().int().nonnegative();
const msOrNull = z.number().nullable();

/** What one agent's prober is doing (GET /api/v1/prober/nodes/:id). */
const agentStatus = z.object({
  hash: z.string(),
  groups: count,
  records: count,
  queued: count,
  running: count,
  completed: count,
  lateness: z.object({ samples: count, p50: msOrNull, p99: msOrNull, max: msOrNull }),
  eventLoopDelay: z.object({ p99: z.number(), max: z.number() }),
});

/** A record changed state (decided by the level's quorum); `nodes` is what each probe node saw. */
export const probeChanged = z.object({
  app_name: z.string(),
  group_id: z.string(),
  record_id: z.string(),
  ip: z.string(),
  from: z.enum(['up', 'down', 'unknown']),
  to: z.enum(['up', 'down']),
  status: z.number(),
  res_time: z.number(),
  /** Round start, ISO. */
  round: z.string(),
  degraded: z.boolean(),
  failures: count,
  received: count,
  nodes: z.record(z.string(), z.number()),
});

export const spec = defineSpec({
  name: 'prober',
  config: proberConfig,
  reports: { results: resultBatchSchema },
  commands: {
    /** The groups this node probes now; `hash` lets the controller skip unchanged pushes. */
    assign: { args: z.object({ hash: z.string(), groups: z.array(checkSpecSchema) }), result: z.object({ hash: z.string(), groups: count }) },
    status: { args: none, result: agentStatus },
    'reset-stats': { args: none, result: z.object({ ok: z.literal(true) }) },
  },
  events: { 'probe.changed': probeChanged },
  claims: {
    // iplive's event name predates namespacing by plugin; existing webhook subscriptions name it.
    events: ['probe'],
    routes: ['/operate_monitor', '/update_monitor', '/stop_monitor', '/add_node', '/deal', '/node_tasks', '/api/v1/prober/*'],
  },
});
export type Spec = typeof spec;
