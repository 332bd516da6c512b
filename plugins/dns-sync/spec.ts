import { defineSpec, z } from '../sdk/index.ts';
import { dnsSyncConfig, reportedDeclaration } from './config.ts';
import { LINES } from './lines.ts';

const line = z.enum(LINES);
const recordType = z.enum(['A', 'AAAA']);
const count = z.number().int().nonnegative();

/** A line now answers another node (written and read back). */
export const switchedEvent = z.object({
  service: z.string(),
  line,
  recordType,
  /** The record's full name as the provider publishes the line, e.g. telecom.www.example.test. */
  name: z.string(),
  /** The node it pointed at, the raw value(s) when no known node held it, or null when it was empty. */
  from: z.string().nullable(),
  to: z.string(),
  address: z.string(),
  reason: z.string(),
});

/** No live node can serve a line: it keeps its value (never a dead node's, never deleted) until one can. */
export const alertEvent = z.object({
  service: z.string(),
  line,
  recordType,
  name: z.string(),
  holder: z.string().nullable(),
  message: z.string(),
});

/** A line's write (or its read, or read-back) failed: it is in the retry queue until it succeeds. */
export const failedEvent = z.object({
  service: z.string(),
  line,
  recordType,
  name: z.string(),
  provider: z.string(),
  attempt: count,
  error: z.string(),
  /** ISO time of the next attempt. */
  retryAt: z.string(),
});

export const spec = defineSpec({
  name: 'dns-sync',
  config: dnsSyncConfig,
  reports: {
    /** What the agent's own config declares about its node (null: nothing), sent at every start and change. */
    declared: z.object({ self: reportedDeclaration.nullable() }),
  },
  messages: {
    /** Live and enrolled node counts for the agent's badge; sent on every change and with each reconcile. */
    toAgent: { cluster: z.object({ live: count, total: count }) },
  },
  events: { 'dns.switched': switchedEvent, 'dns.alert': alertEvent, 'dns.failed': failedEvent },
  claims: {
    // DESIGN.md names the event dns.switched; cocoaSyncerStatus is CocoaSyncer's own gauge, kept for its Grafana board.
    events: ['dns'],
    metrics: ['outpost_dns_sync_', 'cocoaSyncerStatus'],
    routes: ['/v1', '/v1/', '/v1/monitor', '/v1/getClusterInfo', '/v1/updateClusterInfo', '/v1/badge', '/v1/status', '/api/v1/dns-sync/*'],
  },
  dependencies: ['prober'],
  // Provider keys and the cocoaSecret are the controller's alone; each agent declares itself in its own config.
  pushConfig: false,
});
export type Spec = typeof spec;
