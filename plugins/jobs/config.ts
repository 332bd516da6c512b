import { z } from '../sdk/index.ts';
import { isTimeZone } from './runtime.ts';

const limit = (max: number) =>
  z
    .object({
      /** Failed signature checks allowed per window before further requests are refused (429). */
      max: z.number().int().min(1).max(1_000_000).default(max),
      windowSec: z.number().int().min(1).max(86_400).default(60),
    })
    .strict();

/**
 * The jobs plugin's config. There is no `open` switch: /application/create always needs the admin
 * token (the original had no auth at all on it), and task routes always need a signature.
 */
export const jobsConfig = z
  .object({
    /** Zone of `Y-m-d H:i:s` runtimes, in and out; the original ran in Asia/Shanghai. */
    timezone: z
      .string()
      .default('Asia/Shanghai')
      .refine(isTimeZone, { error: 'not a time zone this Node knows (IANA name, e.g. "Asia/Shanghai")' }),
    /** Accepted distance of a request's `timestamps` from the controller clock, both ways, seconds. */
    windowSec: z.number().int().min(1).max(3600).default(300),
    /** How long a used nonce is remembered past its timestamp, seconds; raised to windowSec if lower. */
    nonceRetentionSec: z.number().int().min(1).max(7 * 86_400).default(300),
    rateLimit: z
      .object({
        /** Failures per (app_key, caller IP): a caller that keeps failing waits; others are not locked out. */
        perAppIp: limit(10).default({ max: 10, windowSec: 60 }),
        /** Failures per caller IP across apps and unknown app_keys (several apps may share one gateway). */
        perIp: limit(50).default({ max: 50, windowSec: 60 }),
      })
      .strict()
      .default({ perAppIp: { max: 10, windowSec: 60 }, perIp: { max: 50, windowSec: 60 } }),
    /** Only nodes with all these labels run callbacks; empty: every node running jobs. */
    labels: z.record(z.string(), z.string()).default({}),
    /** Callbacks in flight per node at most; due tasks beyond it wait for a free slot. */
    concurrencyPerNode: z.number().int().min(1).max(10_000).default(64),
    /**
     * How long past an attempt's timeout the controller waits for the node's outcome before it takes
     * the attempt as lost and hands the task to another node (the node may be gone, or cut off).
     */
    leaseGraceSec: z.number().int().min(1).max(3600).default(30),
    /** Finished tasks (success, cancelled, failed) are kept this long for /task/detail and /nsq/publish. */
    keepFinishedHours: z.number().int().min(1).max(24 * 366).default(7 * 24),
    /**
     * When task and queue writes reach the disk: `interval` (default) survives a crash of the process
     * at once and bounds what a power loss can take to 200 ms (Redis' AOF everysec is the same kind);
     * `always` forces every group commit to the disk before the answer.
     */
    fsync: z.enum(['interval', 'always']).default('interval'),
    /**
     * Also serve the signed task routes on this port with node:http, for clients that send the
     * original's `app_key` header: the controller's own server drops requests with an underscore in a
     * header name (see compat-listener.ts). Off unless set; port 0 picks a free one.
     */
    listen: z
      .object({
        host: z.string().min(1).default('0.0.0.0'),
        port: z.number().int().min(0).max(65_535),
      })
      .strict()
      .optional(),
  })
  .strict();

export type JobsConfig = z.infer<typeof jobsConfig>;
