import { bindQuery } from './gin-bind.ts';
import { bindError, OK, REQUEST_ERR, result, type GoimResult } from './envelope.ts';
import type { GoimContext, GoimRequest } from './context.ts';
import type { PushRequest } from '../peer-messages.ts';

/**
 * goim's push handlers (internal/logic/http/push.go and logic/push.go). The body is the message,
 * raw bytes whatever the content type. Every controller looks the targets up in its own tables and
 * each node holding one gets one message; keys that are not connected anywhere are skipped, as in goim.
 */

export async function pushKeys(req: GoimRequest, ctx: GoimContext): Promise<GoimResult> {
  const b = bindQuery(req.queryAll, { op: { form: 'operation', go: 'Op', type: 'int32' }, keys: { form: 'keys', go: 'Keys', type: 'strings' } });
  if (!b.ok) return bindError(b.message);
  // goim asks Redis MGET for the keys; with none the command fails and the answer is -400 with HTTP 200.
  if (!b.v.keys) return result(REQUEST_ERR);
  return pushed(ctx, { kind: 'keys', op: b.v.op, keys: b.v.keys, body: req.raw });
}

export async function pushMids(req: GoimRequest, ctx: GoimContext): Promise<GoimResult> {
  const b = bindQuery(req.queryAll, { op: { form: 'operation', go: 'Op', type: 'int32' }, mids: { form: 'mids', go: 'Mids', type: 'int64s' } });
  if (!b.ok) return bindError(b.message);
  return pushed(ctx, { kind: 'mids', op: b.v.op, mids: b.v.mids ?? [], body: req.raw });
}

export async function pushRoom(req: GoimRequest, ctx: GoimContext): Promise<GoimResult> {
  const b = bindQuery(req.queryAll, {
    op: { form: 'operation', go: 'Op', type: 'int32', required: true },
    type: { form: 'type', go: 'Type', type: 'string', required: true },
    room: { form: 'room', go: 'Room', type: 'string', required: true },
  });
  if (!b.ok) return bindError(b.message);
  return pushed(ctx, { kind: 'room', op: b.v.op, room: `${b.v.type}://${b.v.room}`, body: req.raw });
}

export async function pushAll(req: GoimRequest, ctx: GoimContext): Promise<GoimResult> {
  const b = bindQuery(req.queryAll, { op: { form: 'operation', go: 'Op', type: 'int32', required: true }, speed: { form: 'speed', go: 'Speed', type: 'int32' } });
  if (!b.ok) return bindError(b.message);
  const comets = ctx.pusher.nodes().length;
  // goim's job divides the speed by the number of comets (integer division) and each paces itself.
  if (comets === 0) return result(OK);
  return pushed(ctx, { kind: 'all', op: b.v.op, speed: Math.trunc(b.v.speed / comets), body: req.raw });
}

async function pushed(ctx: GoimContext, p: PushRequest): Promise<GoimResult> {
  return { ...result(OK), reached: await ctx.pusher.push(p) };
}
