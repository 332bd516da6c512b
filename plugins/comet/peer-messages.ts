import { z } from '../sdk/index.ts';
import { nodeMeta, pushMsg } from './messages.ts';

/**
 * What travels between controllers (ctx.peers, onPeer): a push accepted on one controller for the
 * agents linked to the others, and each controller's share of the online counts. Bodies stay Buffers
 * (the peer channel is binary-safe).
 */
const op = z.number().int().min(-(2 ** 31)).max(2 ** 31 - 1);
const count = z.number().int().min(0);

/**
 * A push as goim's API accepted it, before routing: every controller looks its targets up in its own
 * tables. mids travel as mids (each controller expands them to the keys it holds); push/all carries
 * the speed already divided by the number of comet nodes in the whole cluster.
 */
export const pushRequest = z.union([pushMsg, z.object({ kind: z.literal('mids'), op, mids: z.array(z.string()), body: z.instanceof(Buffer) })]);
export type PushRequest = z.infer<typeof pushRequest>;

/** What a controller reports of one of its nodes, for nodes/weighted, nodes/instances and the panel. */
export const nodeReport = z.object({
  conns: count,
  ips: count,
  rooms: count,
  version: z.number().int(),
  updatedAt: z.number(),
  meta: nodeMeta.optional(),
  /** The node's gateway counters (messages delivered, slow-consumer drops) for the panel. */
  delivered: count,
  dropped: count,
});
export type NodeReport = z.infer<typeof nodeReport>;

/**
 * One controller's counts as they changed since it last told this peer (or all of them when `full`):
 * the totals of its rooms over its own nodes (0 = the room left) and its nodes' reports (null = the
 * node left). `seq` counts the messages to this peer, so a lost one is noticed and answered `resync`.
 */
export const countShare = z.object({
  epoch: z.string().min(1),
  seq: z.number().int().min(1),
  full: z.boolean(),
  rooms: z.array(z.tuple([z.string(), count])),
  nodes: z.array(z.tuple([z.string(), nodeReport.nullable()])),
});
export type CountShare = z.infer<typeof countShare>;

/** Keys that newly connected on the sender's nodes, with when (its clock, ms) and where: an older connection of the same key elsewhere is kicked. */
export const keyClaims = z.object({ keys: z.array(z.tuple([z.string(), z.number(), z.string()])) });
