import { idProblem, z } from '../sdk/index.ts';

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
    callbackSecret: z.string().min(8).optional(),
  })
  .strict();

export const proberConfig = z
  .object({
    /** Known applications (iplive answered 1005 for an app_name it had no handler for). */
    apps: z.record(appName, app).default({}),
    /** Per caller IP: the `token` field that caller must send (1004 otherwise). ip "*" matches any caller. A list so each token sits under a "token" key, which config views redact. */
    callers: z.array(z.object({ ip: z.string().min(1), token: z.string().min(8) }).strict()).default([]),
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

export type Protocol = 'http' | 'https' | 'tcp' | 'icmp';

export interface RecordSpec {
  id: string;
  ip: string;
}

/** What an agent needs to probe one group. */
export interface CheckSpec {
  key: string;
  protocol: Protocol;
  port: number;
  path: string;
  domain: string;
  cookies: string;
  /** Expected HTTP code; null means any 2xx or 3xx. */
  httpCode: number | null;
  interval: number;
  timeout: number;
  retryCount: number;
  records: RecordSpec[];
}

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

export interface Timing {
  dns: number;
  connect: number;
  tls: number;
  ttfb: number;
  total: number;
}

export interface CheckResult {
  /** group key */
  g: string;
  /** record id */
  r: string;
  status: number;
  /** ms of the last attempt */
  resTime: number;
  attempts: number;
  timing?: Timing;
  error?: string;
  /** TLS certificate expiry (ISO) for https. */
  certExpires?: string;
  /** Scheduled start and actual start, ms epoch (lateness is measured from them). */
  due: number;
  started: number;
}

export interface ResultBatch {
  round: number;
  results: CheckResult[];
}
