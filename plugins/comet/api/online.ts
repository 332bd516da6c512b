import { bindQuery } from './gin-bind.ts';
import { bindError, OK, REQUEST_ERR, result, type GoimResult } from './envelope.ts';
import type { GoimContext, GoimRequest } from './context.ts';

/** goim's online handlers (internal/logic/http/online.go, logic/online.go) over the cluster-wide counts. */

export function onlineTop(req: GoimRequest, ctx: GoimContext): GoimResult {
  const b = bindQuery(req.queryAll, { type: { form: 'type', go: 'Type', type: 'string', required: true }, limit: { form: 'limit', go: 'Limit', type: 'int', required: true } });
  if (!b.ok) return bindError(b.message);
  // goim slices tops[:limit] and a negative limit panics there (HTTP 500); here it is a request error.
  if (b.v.limit < 0) return { status: 400, json: { code: REQUEST_ERR, message: `limit must be positive, got ${b.v.limit}` } };
  const tops: Array<{ room_id: string; count: number }> = [];
  for (const [key, count] of ctx.counts.allRoomCounts()) {
    if (!key.startsWith(b.v.type)) continue;
    const roomId = roomIdOf(key);
    if (roomId !== undefined) tops.push({ room_id: roomId, count });
  }
  // Descending by count as goim; its sort is not stable, ties go by room id here.
  tops.sort((x, y) => y.count - x.count || (x.room_id < y.room_id ? -1 : x.room_id > y.room_id ? 1 : 0));
  return result(OK, tops.slice(0, b.v.limit));
}

export function onlineRoom(req: GoimRequest, ctx: GoimContext): GoimResult {
  const b = bindQuery(req.queryAll, { type: { form: 'type', go: 'Type', type: 'string', required: true }, rooms: { form: 'rooms', go: 'Rooms', type: 'strings', required: true } });
  if (!b.ok) return bindError(b.message);
  // fromEntries defines own properties: an asked room named `__proto__` is an entry like any other.
  const data = Object.fromEntries(b.v.rooms!.map((room) => [room, ctx.counts.roomCount(`${b.v.type}://${room}`)]));
  return result(OK, data);
}

export function onlineTotal(_req: GoimRequest, ctx: GoimContext): GoimResult {
  const { conns, ips } = ctx.counts.totals();
  return result(OK, { conn_count: conns, ip_count: ips });
}

/**
 * model.DecodeRoomKey: the Host of Go's url.Parse(key) — `live://1000` → `1000`, userinfo and port
 * kept as Go keeps them (`a@h:1` → `h:1`), no `//` → no host (""). undefined where url.Parse
 * fails (control characters, a colon in a first path segment, a character not allowed in a host),
 * which goim skips.
 */
export function roomIdOf(key: string): string | undefined {
  if (/[\x00-\x1f\x7f]/.test(key)) return undefined;
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:(.*)$/s.exec(key);
  if (!m) return key.split('/')[0].includes(':') ? undefined : '';
  if (!m[1].startsWith('//')) return '';
  const authority = m[1].slice(2).split(/[/?#]/)[0];
  const host = authority.slice(authority.lastIndexOf('@') + 1);
  return HOST_CHARS.test(host) && !/%(?![0-9A-Fa-f]{2})/.test(host) ? host : undefined;
}

/** What Go's url package lets through in a host (shouldEscape in encodeHost mode), plus %XX escapes. */
const HOST_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:\[\]<>"%]*$/;
