import { idProblem, secret, z } from '../sdk/index.ts';

/** Clients name apps in app_name, which takes the ids every route takes. */
const appName = z.string().superRefine((k, ctx) => {
  const problem = idProblem(k, 'app name');
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const app = z
  .object({
    /** Where each round's call_back_to_php goes; an operate_monitor `callback_url` overrides it per group. */
    callbackUrl: z.string().url().optional(),
    /** iplive posted form fields; JSON is offered for newer receivers. */
    callbackFormat: z.enum(['form', 'json']).default('form'),
    /** Signs callbacks with X-Outpost-Signature when set. */
    callbackSecret: secret(z.string().min(8)).optional(),
  })
  .strict();

export const proberConfig = z
  .object({
    /** Known applications (iplive answered 1005 for an app_name it had no handler for). */
    apps: z.record(appName, app).default({}),
    /** Per caller IP: the `token` field that caller must send (1004 otherwise). ip "*" matches any caller. */
    callers: z.array(z.object({ ip: z.string().min(1), token: secret(z.string().min(8)) }).strict()).default([]),
    /** iplive let loopback callers skip the token; false makes them send one too. */
    trustLoopback: z.boolean().default(true),
    /** Every prober-running agent is a probe node; false: only agents registered with /add_node. */
    autoEnrollAgents: z.boolean().default(true),
    /** Smallest interval operate_monitor accepts, in seconds. */
    minInterval: z.number().int().min(1).default(10),
    /** Share of the round over which check start times are spread (always leaving time for every attempt to finish). */
    spreadFraction: z.number().min(0).max(0.95).default(0.85),
    /** How long after a round ends its results may still arrive before it is decided, ms. */
    graceMs: z.number().int().min(0).max(60_000).default(2000),
    /** Minutes of decided rounds kept for /api/v1/prober/results. */
    historyMinutes: z.number().int().min(1).max(7 * 24 * 60).default(60),
    /** Results per report batch sent by an agent. */
    batchSize: z.number().int().min(1).max(20_000).default(500),
    /** Most checks running at once on one agent. */
    maxConcurrent: z.number().int().min(1).max(20_000).default(2000),
  })
  .strict();
export type ProberConfig = z.infer<typeof proberConfig>;

const protocol = z.enum(['http', 'https', 'tcp', 'icmp']);
export type Protocol = z.output<typeof protocol>;

const recordSpec = z.object({ id: z.string(), ip: z.string() });
export type RecordSpec = z.output<typeof recordSpec>;

/** What an agent needs to probe one group (cookies included: the agent sends them). */
export const checkSpecSchema = z.object({
  key: z.string(),
  protocol,
  port: z.number().int().min(0).max(65535),
  path: z.string(),
  domain: z.string(),
  cookies: z.string(),
  /** Expected HTTP code; null means any 2xx or 3xx. */
  httpCode: z.number().int().nullable(),
  interval: z.number().positive(),
  timeout: z.number().positive(),
  retryCount: z.number().int().nonnegative(),
  records: z.array(recordSpec),
});
export type CheckSpec = z.output<typeof checkSpecSchema>;

export interface Group extends CheckSpec {
  app: string;
  groupId: string;
  level: number;
  /** node_ips as given: node ids, names or addresses. */
  nodeRefs: string[];
  callbackUrl: string | null;
  createdAt: number;
  updatedAt: number;
}

/** Status codes of iplive: 1 up, 2 connection error, 3 timeout, otherwise the unexpected HTTP code. */
export const UP = 1;
export const CONN_ERROR = 2;
export const TIMEOUT = 3;
/**
 * Not an iplive code: the node could not run the check at all (icmp without ping). Its vote says
 * nothing about the target, so it counts neither as up nor as a failure and is never called back;
 * views show it as status "error" with the reason.
 */
export const NOT_PROBED = -1;

const ms = z.number().finite().nonnegative();
const timing = z.object({ dns: ms, connect: ms, tls: ms, ttfb: ms, total: ms });
export type Timing = z.output<typeof timing>;

const checkResult = z.object({
  /** group key */
  g: z.string(),
  /** record id */
  r: z.string(),
  /** iplive status (1 up, 2 connection error, 3 timeout) or the unexpected HTTP code */
  status: z.number().int(),
  /** ms of the last attempt */
  resTime: ms,
  attempts: z.number().int().nonnegative(),
  timing: timing.optional(),
  error: z.string().optional(),
  /** TLS certificate expiry (ISO) for https. */
  certExpires: z.string().optional(),
  /** Scheduled start and actual start, ms epoch (lateness is measured from them). */
  due: z.number(),
  started: z.number(),
});
export type CheckResult = z.output<typeof checkResult>;

/** One report: results of one round (several batches per round when there are many). */
export const resultBatchSchema = z.object({ round: z.number().int().nonnegative(), results: z.array(checkResult) });
export type ResultBatch = z.output<typeof resultBatchSchema>;
