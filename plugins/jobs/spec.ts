import { defineSpec, secret, z } from '../sdk/index.ts';
import { jobsConfig } from './config.ts';

const id = z.number().int().positive();
const count = z.number().int().nonnegative();

/** One callback attempt handed to a node: everything it needs to sign and send, nothing it must look up. */
export const runJob = z.object({
  taskId: id,
  n: id,
  linkUrl: z.string(),
  /** The task content as the client wrote it (JSON text). */
  content: z.string(),
  timeoutMs: id,
  appKey: z.string(),
  appName: z.string(),
  /** The node signs with it; parsed into a Secret on the node, so its logs show `***`. */
  secretKey: secret(),
});
export type RunJob = z.output<typeof runJob>;
/** As the controller sends it: the secret revealed into the command, which only the link carries. */
export type RunJobArgs = z.input<typeof runJob> & { taskId: number; content: string };

/** How one attempt went, as the node saw it. */
export const outcome = z.object({
  taskId: id,
  n: id,
  ok: z.boolean(),
  statusCode: z.number().int().nullable(),
  error: z.string().nullable(),
  elapsedMs: z.number().nonnegative(),
  startedAt: z.number(),
});
export type OutcomeReport = z.output<typeof outcome>;

/**
 * jobs.task.finished: a task reached success (2), cancelled (3) or failed (4). Attempts of the run
 * that finished (earlier runs before a /nsq/publish are in the task's detail), node by name.
 */
export const taskFinished = z.object({
  id,
  taskNo: z.string(),
  name: z.string(),
  appKey: z.string(),
  appName: z.string(),
  status: z.union([z.literal(2), z.literal(3), z.literal(4)]),
  state: z.enum(['success', 'cancelled', 'failed']),
  runtime: z.string(),
  attempts: z.array(z.object({ n: id, node: z.string(), startedAt: z.string(), elapsedMs: z.number().nullable(), statusCode: z.number().nullable(), error: z.string().nullable() })),
  error: z.string().nullable(),
  finishedAt: z.string(),
});

export const SEED_ROUTES = ['/application/create', '/task/create', '/task/detail', '/task/cancel', '/nsq/publish'];

export const spec = defineSpec({
  name: 'jobs',
  config: jobsConfig,
  reports: {
    /** Attempts that ended, batched; `boot` names the agent half's incarnation that ran them. */
    outcomes: z.object({ boot: z.string(), outcomes: z.array(outcome) }),
    /** The agent half started (again): attempts it was given before this boot will never report. */
    started: z.object({ boot: z.string() }),
  },
  messages: {
    toController: {
      /**
       * Attempts whose callback just ended, ahead of their durable outcome: the node's slots are free
       * for the next due tasks at once. Best effort: a lost one only frees the slots with the report.
       */
      ended: z.object({ attempts: z.array(z.object({ taskId: id, n: id })) }),
    },
  },
  commands: {
    /** Starts these attempts now; answers at once (the outcomes come as reports). */
    run: { args: z.object({ jobs: z.array(runJob).min(1) }), result: z.object({ accepted: count, boot: z.string() }) },
    /** Aborts an attempt in flight (a cancel): its request is cut and its outcome reported as cancelled. */
    abort: { args: z.object({ taskId: id, n: id }), result: z.object({ aborted: z.boolean() }) },
  },
  events: { 'jobs.task.finished': taskFinished },
  claims: { routes: [...SEED_ROUTES, '/api/v1/jobs/*'] },
});
export type Spec = typeof spec;
