/**
 * Authentication of calls between controllers: an HMAC-SHA256 over the sender's id, a timestamp, a
 * random nonce and the body's hash, keyed with the cluster secret every controller reads from the
 * shared store (runtime/cluster/peer-secret.ts). A call is taken only with a valid signature made
 * within the window, once: a receiver remembers the nonces it took for as long as their timestamps
 * stay acceptable, so a captured call cannot be played again. The receiver says only that it refused,
 * never anything about the secret.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const PEER_HEADERS = { from: 'x-outpost-peer', ts: 'x-outpost-peer-ts', nonce: 'x-outpost-peer-nonce', sig: 'x-outpost-peer-sig' } as const;

/** How far a call's timestamp may be from the receiver's clock (controllers' clocks are NTP-close). */
export const PEER_WINDOW_MS = 30_000;

function mac(secret: Buffer, from: string, ts: string, nonce: string, body: Buffer): Buffer {
  const bodyHash = createHash('sha256').update(body).digest('hex');
  return createHmac('sha256', secret).update(`outpost-peer-v2\n${from}\n${ts}\n${nonce}\n${bodyHash}`).digest();
}

/** The headers that sign body as sent by controller `from`. */
export function signPeerCall(secret: Buffer, from: string, body: Buffer, now = Date.now(), nonce = randomBytes(16).toString('hex')): Record<string, string> {
  const ts = String(now);
  return { [PEER_HEADERS.from]: from, [PEER_HEADERS.ts]: ts, [PEER_HEADERS.nonce]: nonce, [PEER_HEADERS.sig]: mac(secret, from, ts, nonce, body).toString('hex') };
}

/**
 * The nonces of the calls taken, each kept while its timestamp is still acceptable (±window): two
 * generations swapped every 2 × window, so a nonce is remembered 2–4 windows. Only calls with a valid
 * signature get here, so only the cluster's controllers can grow it: by their call rate (a few
 * hundred bytes per call and minute).
 */
export class PeerReplayGuard {
  private current = new Set<string>();
  private previous = new Set<string>();
  private swappedAt: number;

  constructor(now = Date.now()) {
    this.swappedAt = now;
  }

  /** True the first time nonce is seen; false for a replay. */
  fresh(nonce: string, now = Date.now()): boolean {
    if (now - this.swappedAt >= 2 * PEER_WINDOW_MS) {
      // Gone quiet for longer than two generations: both are past their use.
      this.previous = now - this.swappedAt >= 4 * PEER_WINDOW_MS ? new Set() : this.current;
      this.current = new Set();
      this.swappedAt = now;
    }
    if (this.current.has(nonce) || this.previous.has(nonce)) return false;
    this.current.add(nonce);
    return true;
  }
}

/**
 * The calling controller's id when the headers sign body with secret inside the window and, given
 * `replays`, the call was not taken before; else why not (for the log, not the caller).
 */
export function verifyPeerCall(secret: Buffer, headers: Record<string, string | undefined>, body: Buffer, now = Date.now(), replays?: PeerReplayGuard): { ok: true; from: string } | { ok: false; why: string } {
  const from = headers[PEER_HEADERS.from];
  const ts = headers[PEER_HEADERS.ts];
  const nonce = headers[PEER_HEADERS.nonce];
  const sig = headers[PEER_HEADERS.sig];
  if (!from || !ts || !nonce || !sig) return { ok: false, why: 'unsigned' };
  if (from.length > 128 || !/^\d{1,16}$/.test(ts) || !/^[0-9a-f]{32}$/.test(nonce)) return { ok: false, why: 'malformed signature headers' };
  if (Math.abs(now - Number(ts)) > PEER_WINDOW_MS) return { ok: false, why: 'stale or future timestamp' };
  const presented = /^[0-9a-f]{64}$/.test(sig) ? Buffer.from(sig, 'hex') : Buffer.alloc(0);
  const expected = mac(secret, from, ts, nonce, body);
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return { ok: false, why: 'bad signature' };
  if (replays && !replays.fresh(nonce, now)) return { ok: false, why: 'replayed' };
  return { ok: true, from };
}
