/**
 * Serendipity-Job's request signature (facts §1, Kernel/Signature.php), byte for byte:
 * base64 of the *lowercase hex text* of HMAC-SHA256(timestamps + nonce + payload, secretKey).
 * Both directions use it: clients sign requests to the controller, nodes sign callbacks to receivers.
 */
import { createHash, createHmac, randomInt } from 'node:crypto';

/** The five header names, lowercase as the original reads them (note the underscore in app_key). */
export const SIGNED_HEADERS = ['app_key', 'nonce', 'timestamps', 'payload', 'signature'] as const;

export type SignedHeaders = Record<(typeof SIGNED_HEADERS)[number], string>;

export function serendipitySignature(timestamps: string, nonce: string, payload: string, secretKey: string): string {
  const hex = createHmac('sha256', secretKey).update(timestamps + nonce + payload).digest('hex');
  return Buffer.from(hex, 'utf8').toString('base64');
}

/** The `payload` header: md5(appName) in lowercase hex (ServerProvider.php:187, 257). */
export function appPayload(appName: string): string {
  return createHash('md5').update(appName, 'utf8').digest('hex');
}

const ALPHANUMERICS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Laravel's Str::random(n) alphabet, drawn with a CSPRNG and no modulo bias. */
export function randomAlphanumerics(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHANUMERICS[randomInt(ALPHANUMERICS.length)];
  return out;
}

export const newAppKey = (): string => randomAlphanumerics(16);
export const newSecretKey = (): string => randomAlphanumerics(32);
export const newNonce = (): string => randomAlphanumerics(16);

export function unixSeconds(nowMs = Date.now()): number {
  return Math.floor(nowMs / 1000);
}

/** One complete header set, signed now with a fresh nonce: usable once, like any other. */
export function signedHeaders(appKey: string, appName: string, secretKey: string, nowMs = Date.now()): SignedHeaders {
  const timestamps = String(unixSeconds(nowMs));
  const nonce = newNonce();
  const payload = appPayload(appName);
  return { app_key: appKey, nonce, timestamps, payload, signature: serendipitySignature(timestamps, nonce, payload, secretKey) };
}
