import { z } from 'zod';

/**
 * What a node's host can do that plugins rely on, detected by the agent at start and sent in its
 * hello: `icmp` (a system `ping` to run), `docker` (a Docker Engine socket). A missing one says why,
 * so the controller, the dashboard and the plugin's own answers can name the cause.
 */
export const Capability = z.object({
  available: z.boolean(),
  reason: z.string().max(300).optional(),
});
export type Capability = z.infer<typeof Capability>;

/** Fixed keys, unknown ones dropped: a hello cannot grow the record. */
export const Capabilities = z.object({ icmp: Capability, docker: Capability }).partial();
export type Capabilities = z.infer<typeof Capabilities>;
