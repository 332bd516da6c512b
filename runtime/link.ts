import { z } from 'zod';

/** Messages on the agent ⇄ controller WebSocket (DESIGN §4). JSON, one per frame, `t` = type. */

export const PluginStatus = z.object({
  name: z.string(),
  state: z.enum(['running', 'failed', 'stopped']),
  error: z.string().optional(),
});
export type PluginStatus = z.infer<typeof PluginStatus>;

export const AgentMessage = z.discriminatedUnion('t', [
  z.object({
    t: z.literal('hello'),
    nodeId: z.string(),
    version: z.string(),
    plugins: z.array(PluginStatus),
    labels: z.record(z.string(), z.string()),
    address: z.string(),
    /** Highest report seq the agent still holds; lets the controller see what a replay will cover. */
    outboxFrom: z.number().int().nonnegative().optional(),
  }),
  z.object({
    t: z.literal('hb'),
    seq: z.number().int().nonnegative(),
    ts: z.number(),
    summary: z.object({ plugins: z.array(PluginStatus), outbox: z.number().int().nonnegative() }).partial(),
  }),
  z.object({
    t: z.literal('report'),
    seq: z.number().int().positive(),
    plugin: z.string(),
    type: z.string(),
    data: z.unknown(),
    ts: z.number(),
  }),
  /** A best-effort plugin message (runtime/channels.ts). */
  z.object({
    t: z.literal('msg'),
    plugin: z.string(),
    type: z.string(),
    msg: z.unknown(),
  }),
  z.object({
    t: z.literal('reply'),
    id: z.string(),
    ok: z.boolean(),
    data: z.unknown().optional(),
    error: z.string().optional(),
  }),
]);
export type AgentMessage = z.infer<typeof AgentMessage>;

export type ControllerMessage =
  | { t: 'welcome'; nodeId: string; config: Record<string, unknown>; lastSeq: number; hbInterval: number }
  /** `error`: the report was refused at the boundary (wrong type); acknowledged anyway so it is not replayed forever. */
  | { t: 'ack'; seq: number; error?: string }
  | { t: 'msg'; plugin: string; type: string; msg: unknown }
  | { t: 'command'; id: string; plugin: string; action: string; args: unknown; deadline: number }
  | { t: 'config'; plugin: string; config: unknown };

/** Close codes the controller uses so agents can tell "retry later" from "stop trying". */
export const LinkClose = {
  unauthorized: 4401,
  revoked: 4403,
  replaced: 4409,
  protocol: 4400,
} as const;
