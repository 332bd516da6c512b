import { hostname } from 'node:os';
import { z } from 'zod';
import { loadJsonConfig } from '../plugins/sdk/validate.ts';
import { NodeAddress, NodeLabels } from '../runtime/link.ts';
import { ChannelLimits } from '../runtime/channels.ts';

export const AgentConfig = z
  .object({
    /** Controller base URL; also stored with the credential at join time. */
    controller: z.string().url().optional(),
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'letters, digits, ".", "_" or "-", at most 63').default(hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 63) || 'node'),
    /** Sent in every hello: bounded as the link bounds them, so a config that loads never gets its link closed. */
    labels: NodeLabels.default({}),
    /** Public address other systems reach this node at (DNS records, probes); default: the first non-internal IPv4. */
    address: NodeAddress.optional(),
    host: z.string().default('0.0.0.0'),
    port: z.number().int().min(0).max(65535).default(7071),
    dataDir: z.string().default('./data/agent'),
    plugins: z.record(z.string(), z.unknown()).default({ 'server-stats': {} }),
    /** Folders holding more plugins (`<dir>/<name>/index.ts|js`), searched after the built-in plugins/; relative to the working directory. */
    pluginDirs: z.array(z.string().min(1)).max(20).default([]),
    maxBodyBytes: z.number().int().min(1024).default(1024 * 1024),
    /** Best-effort plugin messages to the controller: high-water mark and queue bounds (docs/plugins.md). */
    channels: ChannelLimits,
    link: z
      .object({
        backoff: z
          .object({
            baseDelay: z.number().positive().default(3),
            factor: z.number().min(1).default(1.8),
            jitter: z.number().min(0).max(1).default(0.3),
            maxDelay: z.number().positive().default(300),
          })
          .strict()
          .default({ baseDelay: 3, factor: 1.8, jitter: 0.3, maxDelay: 300 }),
        /** Reports sent ahead of the last ack. */
        window: z.number().int().min(1).max(10_000).default(256),
        /** Oldest reports are dropped (and counted) past this many unacknowledged. */
        outboxMax: z.number().int().min(100).default(100_000),
      })
      .strict()
      .default({ backoff: { baseDelay: 3, factor: 1.8, jitter: 0.3, maxDelay: 300 }, window: 256, outboxMax: 100_000 }),
  })
  .strict();
export type AgentConfig = z.infer<typeof AgentConfig>;

export function loadAgentConfig(file: string | undefined, overrides: Record<string, unknown> = {}): Promise<AgentConfig> {
  return loadJsonConfig(AgentConfig, file, overrides, 'agent config');
}
