import { z } from '../sdk/index.ts';
import type { Gateway } from './gateway/gateway.ts';

/**
 * What travels between the halves over the SDK's best-effort channels. Pushes carry the body as a
 * Buffer (binary frames on the link, no base64); the controller groups keys per node as goim's job does.
 */
const op = z.number().int().min(-(2 ** 31)).max(2 ** 31 - 1);
const body = z.instanceof(Buffer);
const count = z.number().int().min(0);

export const pushMsg = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('keys'), op, keys: z.array(z.string()), body }),
  z.object({ kind: z.literal('room'), op, room: z.string().min(1), body }),
  z.object({ kind: z.literal('all'), op, speed: z.number().int(), body }),
]);
export type PushMsg = z.infer<typeof pushMsg>;

const connTuple = z.tuple([z.string(), z.string(), z.string()]);

export const changeBatch = z.object({
  epoch: z.string(),
  seq: z.number().int().min(1),
  upserts: z.array(connTuple),
  removes: z.array(z.string()),
  conns: count,
  ips: count,
});

export const nodeMeta = z.object({
  addrs: z.array(z.string()),
  tcpPort: z.number().int().optional(),
  wsPort: z.number().int().optional(),
  wssPort: z.number().int().optional(),
  weight: z.number().int().min(1),
  /** The agent's version, for nodes/instances. */
  version: z.string().optional(),
});

export const snapshot = z.object({ epoch: z.string(), seq: z.number().int().min(0), conns: z.array(connTuple), ips: count });

/** Agent → controller: deltas as they happen, a snapshot on request and periodically. */
export const presenceMsg = z.discriminatedUnion('t', [
  z.object({ t: z.literal('changes'), batch: changeBatch, meta: nodeMeta.optional() }),
  z.object({
    t: z.literal('snapshot'),
    snapshot,
    meta: nodeMeta,
    /** [index, count]: a snapshot too large for one message comes in parts, applied once all have arrived. */
    part: z.tuple([count, z.number().int().min(1)]).optional(),
  }),
]);
export type PresenceMsg = z.infer<typeof presenceMsg>;

/** Agent → controller, about once a second when something changed: the gateway's counters since it started. */
export const statsMsg = z.object({
  epoch: z.string(),
  /** Messages (inner frames) written to connections. */
  delivered: count,
  /** Messages and replies dropped because a connection was over its send-buffer limit. */
  dropped: count,
  handshaking: count,
  rooms: count,
});
export type StatsMsg = z.infer<typeof statsMsg>;

/**
 * Controller → agent: the cluster-wide counts of the agent's rooms (op 3 replies; only those that
 * changed), a resync request, the acknowledgement of a change batch (op 8 waits for the one carrying
 * its connection), and keys whose newer connection is on another node (goim's same-key kick).
 */
export const controlMsg = z.discriminatedUnion('t', [
  // Pairs, not an object: a room id is any client string, `__proto__` included.
  z.object({ t: z.literal('rooms'), counts: z.array(z.tuple([z.string(), count])) }),
  z.object({ t: z.literal('resync') }),
  z.object({ t: z.literal('ack'), epoch: z.string(), seq: z.number().int().min(1) }),
  z.object({ t: z.literal('kick'), keys: z.array(z.string()) }),
]);
export type ControlMsg = z.infer<typeof controlMsg>;

/** Applies a push from the controller to the local gateway. */
export function applyPush(g: Gateway, m: PushMsg): void {
  if (m.kind === 'keys') g.pushKeys(m.keys, m.op, m.body);
  else if (m.kind === 'room') g.pushRoom(m.room, m.op, m.body);
  else g.pushAll(m.op, m.body, m.speed);
}
