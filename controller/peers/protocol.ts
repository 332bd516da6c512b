/**
 * What controllers ask each other over the internal endpoint (docs/api.md, "Between controllers"),
 * and how they answer. Bodies are encoded by runtime/cluster/peer-codec.ts, so Buffers anywhere in
 * args, messages, bodies and results cross as raw bytes.
 */
import { z } from 'zod';
import { LINK_LIMITS } from '../../runtime/link.ts';
import { decodePeerBody, encodePeerBody } from '../../runtime/cluster/peer-codec.ts';

const name = z.string().min(1).max(LINK_LIMITS.names);
const id = z.string().min(1).max(LINK_LIMITS.ids);

export const SendItem = z.object({ plugin: name, type: name, msg: z.unknown(), nodes: z.union([z.array(id).max(100_000), z.literal('all')]) }).strict();
export type SendItem = z.infer<typeof SendItem>;

export const PeerOp = z.discriminatedUnion('op', [
  /** A plugin's ctx.peers call: its onPeer[method] here. */
  z.object({ op: z.literal('call'), plugin: name, method: z.string().min(1).max(200), body: z.unknown() }).strict(),
  /** A command for a node whose link this controller holds. */
  z.object({ op: z.literal('command'), node: id, plugin: name, action: name, args: z.unknown(), timeoutMs: z.number().int().min(1).max(3_600_000) }).strict(),
  /** Best-effort messages for nodes linked here (fire-and-forget: the answer only says they were taken). */
  z.object({ op: z.literal('send'), items: z.array(SendItem).min(1).max(10_000) }).strict(),
]);
export type PeerOp = z.infer<typeof PeerOp>;

/** An answer: the result, or the error's message and, when it was an HttpError, its status. */
export type PeerReply = { ok: true; result: unknown } | { ok: false; error: string; status?: number };

const Reply = z.union([z.object({ ok: z.literal(true), result: z.unknown() }), z.object({ ok: z.literal(false), error: z.string(), status: z.number().int().optional() })]);

export function encodeOp(op: PeerOp): Buffer {
  return encodePeerBody(op, op.op === 'call' ? `peer call ${op.plugin}.${op.method}` : op.op === 'command' ? `command ${op.plugin}.${op.action}` : 'peer messages');
}

export function encodeReply(reply: PeerReply): Buffer {
  return encodePeerBody(reply, 'peer answer');
}

export function decodeReply(body: Buffer): PeerReply {
  const r = Reply.safeParse(decodePeerBody(body));
  if (!r.success) throw new Error('the answer is malformed');
  // The result may be absent (undefined results travel as null).
  return r.data.ok ? { ok: true, result: r.data.result ?? null } : r.data;
}
