import { z } from '../sdk/index.ts';

export const serverStatsConfig = z
  .object({
    /** Seconds between samples of the cheap values (cpu, memory, load, network). */
    interval: z.number().min(1).max(3600).default(10),
    /** Seconds between disk usage samples (fsSize walks every mount, so less often). */
    diskInterval: z.number().min(1).max(86_400).default(60),
    /** Minutes of history the controller keeps per node. */
    historyMinutes: z.number().int().min(1).max(24 * 60).default(60),
    /** Serve /searchServer without the admin token (Websoft9 had no auth); only on a trusted network. */
    open: z.boolean().default(false),
  })
  .strict();
export type ServerStatsConfig = z.infer<typeof serverStatsConfig>;

export interface Sample {
  ts: number;
  cpu: { percent: number; cores: number };
  memory: { total: number; used: number; available: number; percent: number; swapTotal: number; swapUsed: number };
  disk: { total: number; used: number; percent: number; mounts: Array<{ mount: string; fs: string; size: number; used: number; percent: number }> } | null;
  load: [number, number, number];
  network: { rxBytes: number; txBytes: number; rxPerSec: number; txPerSec: number };
  uptime: number;
  /** Filled by plugins that know containers (app-store) via the agent's Docker socket; null when unknown. */
  containers?: { total: number; running: number } | null;
}
