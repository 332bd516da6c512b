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

const amount = z.number().finite().nonnegative();
const percent = z.number().min(0).max(100);

/** What the controller accepts as a sample: a report is input from the network, and one bad value must not break /metrics or the dashboard. */
export const sampleSchema = z
  .object({
    ts: z.number().int().positive(),
    cpu: z.object({ percent, cores: z.number().int().positive() }).loose(),
    memory: z.object({ total: amount, used: amount, available: amount, percent, swapTotal: amount, swapUsed: amount }).loose(),
    disk: z
      .object({ total: amount, used: amount, percent, mounts: z.array(z.object({ mount: z.string(), fs: z.string(), size: amount, used: amount, percent }).loose()) })
      .loose()
      .nullable(),
    load: z.tuple([amount, amount, amount]),
    network: z.object({ rxBytes: amount, txBytes: amount, rxPerSec: amount, txPerSec: amount }).loose(),
    uptime: amount,
    containers: z.object({ total: amount, running: amount }).loose().nullable().optional(),
  })
  .loose();

/** A sample as the agent takes it and the controller keeps it (fields added by newer agents ride along). */
export type Sample = z.output<typeof sampleSchema>;
