import { z } from 'zod';
import { Capabilities } from '../plugins/sdk/capabilities.ts';

/** Messages on the agent ⇄ controller WebSocket (DESIGN §4). JSON, one per frame, `t` = type. */

/**
 * Every field of every agent message is bounded: the controller stores hellos in its registry and keeps
 * heartbeat summaries in memory for every node, so one agent (or a stolen credential) must not be able to
 * make it hold megabytes. Unknown fields are dropped, not refused, so a newer agent can still talk to an
 * older controller; the frame size caps what they can carry.
 */
export const LINK_LIMITS = {
  /** Serialized `data` of one report or command reply, in bytes (plugin-defined payloads). */
  dataBytes: 4 * 1024 * 1024,
  /** A whole hello or heartbeat frame, in bytes. */
  controlBytes: 64 * 1024,
  /** Room in a report or reply frame around its data (type, seq, plugin, error text). */
  envelopeBytes: 16 * 1024,
  ids: 64,
  names: 64,
  version: 64,
  address: 255,
  error: 1024,
  plugins: 64,
  labels: 64,
  labelKey: 63,
  labelValue: 255,
  /** One best-effort plugin message frame (text or binary), in bytes: a flood of them must not hold up the link for long. */
  messageBytes: 1024 * 1024,
  /** Buffers in one binary message frame. */
  messageBuffers: 256,
} as const;

/** The largest frame the controller accepts at all: a report or reply with data at its limit. */
export const LINK_MAX_FRAME = LINK_LIMITS.dataBytes + LINK_LIMITS.envelopeBytes;

/** The largest frame of message type t, in bytes. */
export function linkFrameLimit(t: AgentMessage['t']): number {
  if (t === 'msg') return LINK_LIMITS.messageBytes;
  return t === 'report' || t === 'reply' ? LINK_MAX_FRAME : LINK_LIMITS.controlBytes;
}

const bounded = (max: number) => z.string().max(max);
const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const timestamp = z.number().finite();

export const PluginStatus = z.object({
  name: bounded(LINK_LIMITS.names),
  state: z.enum(['running', 'failed', 'stopped']),
  error: bounded(LINK_LIMITS.error).optional(),
});
export type PluginStatus = z.infer<typeof PluginStatus>;

/** Labels as a node may carry them (also what agent configs accept, so a valid config never breaks the link). */
export const NodeLabels = z
  .record(z.string().min(1).max(LINK_LIMITS.labelKey), bounded(LINK_LIMITS.labelValue))
  .refine((l) => Object.keys(l).length <= LINK_LIMITS.labels, { message: `at most ${LINK_LIMITS.labels} labels` });
export const NodeAddress = bounded(LINK_LIMITS.address);

const pluginList = z.array(PluginStatus).max(LINK_LIMITS.plugins);

export const AgentMessage = z.discriminatedUnion('t', [
  z.object({
    t: z.literal('hello'),
    nodeId: bounded(LINK_LIMITS.ids),
    version: bounded(LINK_LIMITS.version),
    plugins: pluginList,
    labels: NodeLabels,
    address: NodeAddress,
    /** Highest report seq the agent still holds; lets the controller see what a replay will cover. */
    outboxFrom: count.optional(),
    capabilities: Capabilities.optional(),
  }),
  z.object({
    t: z.literal('hb'),
    seq: count,
    ts: timestamp,
    summary: z.object({ plugins: pluginList, outbox: count }).partial(),
  }),
  z.object({
    t: z.literal('report'),
    seq: count.positive(),
    plugin: bounded(LINK_LIMITS.names),
    type: bounded(LINK_LIMITS.names),
    data: z.unknown(),
    ts: timestamp,
  }),
  /** A best-effort plugin message (runtime/channels.ts); one holding Buffers travels as a binary frame instead (runtime/link-codec.ts). */
  z.object({
    t: z.literal('msg'),
    plugin: bounded(LINK_LIMITS.names),
    type: bounded(LINK_LIMITS.names),
    msg: z.unknown(),
  }),
  z.object({
    t: z.literal('reply'),
    id: bounded(LINK_LIMITS.ids),
    ok: z.boolean(),
    data: z.unknown().optional(),
    error: bounded(LINK_LIMITS.error).optional(),
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
  /** A frame over its type's size limit (the standard 1009 is what uWS sends for frames over the socket's maximum). */
  tooLarge: 4413,
  /** The agent left more unread than the controller buffers for one link. */
  backlog: 4429,
  /** The controller could not take the agent's hello now (its storage failed): reconnect with backoff. */
  tryAgain: 1013,
} as const;

/** Close reasons travel in a control frame: at most 123 bytes. */
export function closeReason(text: string): string {
  if (Buffer.byteLength(text) <= 123) return text;
  let out = text.slice(0, 120);
  while (Buffer.byteLength(out) > 120) out = out.slice(0, -1);
  return out + '…';
}

/** UTF-8 size of a string, computed only when its length alone cannot settle the comparison with limit. */
export function overBytes(text: string, limit: number): boolean {
  if (text.length > limit) return true;
  if (text.length * 3 <= limit) return false;
  return Buffer.byteLength(text) > limit;
}

/** Why a report the agent is about to queue could never cross the link, or undefined when it can. */
export function reportProblem(plugin: string, type: string, data: unknown): string | undefined {
  if (plugin.length > LINK_LIMITS.names || type.length > LINK_LIMITS.names) return `report names are limited to ${LINK_LIMITS.names} characters`;
  const text = JSON.stringify(data ?? null);
  if (overBytes(text, LINK_LIMITS.dataBytes)) return `report ${plugin}.${type} is ${Buffer.byteLength(text)} bytes of data; the link carries at most ${LINK_LIMITS.dataBytes}`;
  return undefined;
}

/** Plugin states as the link carries them: long errors cut, the list capped. */
export function linkPluginStatus(list: PluginStatus[]): PluginStatus[] {
  return list.slice(0, LINK_LIMITS.plugins).map((p) => ({ name: p.name.slice(0, LINK_LIMITS.names), state: p.state, ...(p.error === undefined ? {} : { error: p.error.slice(0, LINK_LIMITS.error) }) }));
}
