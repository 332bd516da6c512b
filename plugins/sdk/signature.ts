import { createHmac, timingSafeEqual } from 'node:crypto';

/** `X-Outpost-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>` */
export function outpostSignature(secret: string, body: string, unix = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac('sha256', secret).update(`${unix}.${body}`).digest('hex');
  return `t=${unix},v1=${mac}`;
}

/** Verifies a signature header within a tolerance; what receivers (and our tests) do. */
export function verifyOutpostSignature(secret: string, body: string, header: string, toleranceSec = 300, now = Date.now()): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || !parts.v1 || Math.abs(now / 1000 - t) > toleranceSec) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'), 'hex');
  const given = Buffer.from(parts.v1, 'hex');
  return expected.length === given.length && timingSafeEqual(expected, given);
}
