import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export function newSecret(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Constant-time comparison of a presented secret against a stored SHA-256 hex digest. */
export function matchesHash(presented: string, hashHex: string): boolean {
  const a = Buffer.from(sha256(presented), 'hex');
  const b = Buffer.from(hashHex, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
