import { bindQuery } from './gin-bind.ts';
import { bindError, OK, REQUEST_ERR, result, type GoimResult } from './envelope.ts';
import type { GoimContext, GoimRequest } from './context.ts';

/**
 * goim's push handlers (internal/logic/http/push.go and logic/push.go). The body is the message,
 * raw bytes whatever the content type. Targets are looked up in the routing tables and each node
 * holding one gets one message; keys that are not connected anywhere are skipped, as in goim.
 */

export function pushKeys(req: GoimRequest, ctx: GoimContext): GoimResult {
  const b = bindQuery(req.queryAll, { op: { form: 'operation', go: 'Op', type: 'int32' }, keys: { form: 'keys', go: 'Keys', type: 'strings' } });
  if (!b.ok) return bindError(b.message);
  // goim asks Redis MGET for the keys; with none the command fails and the answer is -400 with HTTP 200.
  if (!b.v.keys) return result(REQUEST_ERR);
  sendKeys(ctx, b.v.keys, b.v.op, req.raw);
  return result(OK);
}

export function pushMids(req: GoimRequest, ctx: GoimContext): GoimResult {
  const b = bindQuery(req.queryAll, { op: { form: 'operation', go: 'Op', type: 'int32' }, mids: { form: 'mids', go: 'Mids', type: 'int64s' } });
  if (!b.ok) return bindError(b.message);
  sendKeys(ctx, ctx.routing.keysForMids(b.v.mids ?? []), b.v.op, req.raw);
  return result(OK);
}

export function pushRoom(req: GoimRequest, ctx: GoimContext): GoimResult {
  const b = bindQuery(req.queryAll, {
    op: { form: 'operation', go: 'Op', type: 'int32', required: true },
    type: { form: 'type', go: 'Type', type: 'string', required: true },
    room: { form: 'room', go: 'Room', type: 'string', required: true },
  });
  if (!b.ok) return bindError(b.message);
  const room = `${b.v.type}://${b.v.room}`;
  const nodes = ctx.routing.nodesForRoom(room);
  if (nodes.length > 0) ctx.pusher.broadcast(nodes, { kind: 'room', op: b.v.op, room, body: req.raw });
  return result(OK);
}

export function pushAll(req: GoimRequest, ctx: GoimContext): GoimResult {
  const b = bindQuery(req.queryAll, { op: { form: 'operation', go: 'Op', type: 'int32', required: true }, speed: { form: 'speed', go: 'Speed', type: 'int32' } });
  if (!b.ok) return bindError(b.message);
  const nodes = ctx.pusher.nodes();
  // goim's job divides the speed by the number of comets (integer division) and each paces itself.
  const speed = nodes.length > 0 ? Math.trunc(b.v.speed / nodes.length) : 0;
  if (nodes.length > 0) ctx.pusher.broadcast(nodes.map((n) => n.id), { kind: 'all', op: b.v.op, speed, body: req.raw });
  return result(OK);
}

function sendKeys(ctx: GoimContext, keys: readonly string[], op: number, body: Buffer): void {
  for (const [nodeId, nodeKeys] of ctx.routing.nodesForKeys(keys)) ctx.pusher.sendToNode(nodeId, { kind: 'keys', op, keys: nodeKeys, body });
}
