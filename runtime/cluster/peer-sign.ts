/**
 * Authentication of calls between controllers: an HMAC-SHA256 over the sender's id, a timestamp and
 * the body's hash, keyed with the cluster secret every controller reads from the shared store
 * (runtime/cluster/peer-secret.ts). A call is taken only with a valid signature made within the
 * window; the receiver says only that it refused, never anything about the secret.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const PEER_HEADERS = { from: 'x-outpost-peer', ts: 'x-outpost-peer-ts', sig: 'x-outpost-peer-sig' } as const;

/** How far a call's timestamp may be from the receiver's clock (controllers' clocks are NTP-close). */
export const PEER_WINDOW_MS = 30_000;

function mac(secret: Buffer, from: string, ts: string, body: Buffer): Buffer {
  const bodyHash = createHash('sha256').update(body).digest('hex');
  return createHmac('sha256', secret).update(`outpost-peer-v1\n${from}\n${ts}\n${bodyHash}`).digest();
}

/** The headers that sign body as sent by controller `from`. */
export function signPeerCall(secret: Buffer, from: string, body: Buffer, now = Date.now()): Record<string, string> {
  const ts = String(now);
  return { [PEER_HEADERS.from]: from, [PEER_HEADERS.ts]: ts, [PEER_HEADERS.sig]: mac(secret, from, ts, body).toString('hex') };
}

/** The calling controller's id when the headers sign body with secret inside the window; else why not (for the log, not the caller). */
export function verifyPeerCall(secret: Buffer, headers: Record<string, string | undefined>, body: Buffer, now = Date.now()): { ok: true; from: string } | { ok: false; why: string } {
  const from = headers[PEER_HEADERS.from];
  const ts = headers[PEER_HEADERS.ts];
  const sig = headers[PEER_HEADERS.sig];
  if (!from || !ts || !sig) return { ok: false, why: 'unsigned' };
  if (from.length > 128 || !/^\d{1,16}$/.test(ts)) return { ok: false, why: 'malformed signature headers' };
  if (Math.abs(now - Number(ts)) > PEER_WINDOW_MS) return { ok: false, why: 'stale or future timestamp' };
  const presented = /^[0-9a-f]{64}$/.test(sig) ? Buffer.from(sig, 'hex') : Buffer.alloc(0);
  const expected = mac(secret, from, ts, body);
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return { ok: false, why: 'bad signature' };
  return { ok: true, from };
}
