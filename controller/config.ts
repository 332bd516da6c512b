import { z } from 'zod';
import { loadJsonConfig } from '../plugins/sdk/validate.ts';
import { proxyEntryProblem } from '../plugins/sdk/client-ip.ts';
import { StoreConfig } from '../runtime/storage/store-config.ts';
import { ChannelLimits } from '../runtime/channels.ts';

export const ControllerConfig = z
  .object({
    host: z.string().default('0.0.0.0'),
    port: z.number().int().min(0).max(65535).default(7070),
    /** Where clients and agents reach this controller; printed and handed to joining agents. */
    publicUrl: z.string().url().optional(),
    dataDir: z.string().default('./data/controller'),
    /** Where state is kept: lowdb files in dataDir (default) or PostgreSQL (env OUTPOST_STORE_URL wins). */
    store: StoreConfig,
    heartbeat: z
      .object({
        intervalMs: z.number().int().min(100).default(2000),
        downAfter: z.number().int().min(1).default(3),
        upAfter: z.number().int().min(1).default(2),
        /** Time nodes get to reconnect after a controller start before they can be declared down. */
        restartGraceMs: z.number().int().min(0).default(30_000),
      })
      .strict()
      .default({ intervalMs: 2000, downAfter: 3, upAfter: 2, restartGraceMs: 30_000 }),
    /** Several controllers on one PostgreSQL (docs/operations.md §3b). */
    cluster: z
      .object({
        /** How long the singleton lease holds without renewal (renewed every third of it): a dead holder is replaced within about 4/3 of it. */
        leaseTtlMs: z.number().int().min(300).max(600_000).default(6000),
        /**
         * Where the other controllers reach this one (its own port: commands, messages and peer calls are
         * forwarded there). Default: http://<host>:<port>, with a wildcard host (0.0.0.0, ::) as 127.0.0.1,
         * which only serves controllers on the same machine.
         */
        advertiseUrl: z.string().url().optional(),
      })
      .strict()
      .default({ leaseTtlMs: 6000 }),
    commandTimeoutMs: z.number().int().min(100).default(10_000),
    /** Best-effort plugin messages to each node: high-water mark and queue bounds (docs/plugins.md). */
    channels: ChannelLimits,
    maxBodyBytes: z.number().int().min(1024).default(1024 * 1024),
    /**
     * Reverse proxies (addresses or CIDR blocks) allowed to name the client in X-Forwarded-For. Empty: the
     * socket peer is the client, and the header is ignored (anyone could send it).
     */
    trustProxy: z
      .array(z.string().superRefine((v, ctx) => {
        const problem = proxyEntryProblem(v);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }))
      .max(256)
      .default([]),
    /** Node that seed APIs use when a request names none; default: the embedded local node, or the only node. */
    defaultNode: z.string().optional(),
    /** Plugins this controller runs, with their config (also pushed to agents). */
    plugins: z.record(z.string(), z.unknown()).default({ 'server-stats': {} }),
    /** Folders holding more plugins (`<dir>/<name>/index.ts|js`), searched after the built-in plugins/; relative to the working directory. */
    pluginDirs: z.array(z.string().min(1)).max(20).default([]),
    webhooks: z
      .object({
        maxAgeMs: z.number().int().min(1000).default(24 * 3600 * 1000),
        timeoutMs: z.number().int().min(100).default(10_000),
        baseDelayMs: z.number().int().min(10).default(1000),
        maxDelayMs: z.number().int().min(10).default(5 * 60_000),
        concurrencyPerTarget: z.number().int().min(1).max(64).default(4),
      })
      .strict()
      .default({ maxAgeMs: 86_400_000, timeoutMs: 10_000, baseDelayMs: 1000, maxDelayMs: 300_000, concurrencyPerTarget: 4 }),
  })
  .strict();
export type ControllerConfig = z.infer<typeof ControllerConfig>;

export function loadControllerConfig(file: string | undefined, overrides: Record<string, unknown> = {}): Promise<ControllerConfig> {
  return loadJsonConfig(ControllerConfig, file, overrides, 'controller config');
}
