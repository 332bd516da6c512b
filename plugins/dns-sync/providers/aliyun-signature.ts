/**
 * Alibaba Cloud RPC signature v1 (SignatureMethod HMAC-SHA1, SignatureVersion 1.0), as aliyungo and
 * the published "签名机制" example compute it:
 *   StringToSign = METHOD & percentEncode("/") & percentEncode(canonicalized query)
 *   Signature    = base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign))
 */
import { createHmac } from 'node:crypto';

/** RFC 3986: only A-Z a-z 0-9 - _ . ~ stay as they are; space is %20, `*` is %2A, `~` stays. */
export function percentEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Parameters sorted by name (byte order), each name=value percent-encoded, joined by `&`. */
export function canonicalizedQuery(params: Record<string, string>): string {
  return Object.keys(params)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((k) => `${percentEncode(k)}=${percentEncode(params[k])}`)
    .join('&');
}

export function stringToSign(method: string, params: Record<string, string>): string {
  return `${method}&${percentEncode('/')}&${percentEncode(canonicalizedQuery(params))}`;
}

export function rpcSignature(accessSecret: string, toSign: string): string {
  return createHmac('sha1', `${accessSecret}&`).update(toSign, 'utf8').digest('base64');
}

/** The query string to send: the canonicalized parameters plus `Signature`. */
export function signedQuery(method: string, params: Record<string, string>, accessSecret: string): string {
  return `${canonicalizedQuery(params)}&Signature=${percentEncode(rpcSignature(accessSecret, stringToSign(method, params)))}`;
}

/** `Timestamp` as the RPC API wants it: UTC, seconds, `Z`. */
export function rpcTimestamp(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
