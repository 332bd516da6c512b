import { createHash } from 'node:crypto';
import { z } from 'zod';
import { secretUrl } from '../../plugins/sdk/secret.ts';

export type DeliveryState = 'pending' | 'delivered' | 'dead';

/** A delivery with everything known about it: pending ones live in the queue, the others in the finished log. */
export interface Delivery {
  id: string;
  /** Lane: deliveries sharing a key go out one at a time, in order. */
  key: string;
  url: string;
  body: string;
  contentType: string;
  event: string;
  /** HMAC key for X-Outpost-Signature; only ever in the 0600 outbox files and memory. */
  secret?: string;
  /** Set for subscription deliveries, so deleting the subscription stops them. */
  subscription?: string;
  state: DeliveryState;
  attempts: number;
  createdAt: number;
  /** Past this, a failed attempt makes the delivery dead (reset by a manual retry). */
  expiresAt: number;
  nextAt: number;
  lastAttemptAt?: number;
  lastStatus?: number;
  lastError?: string;
  deliveredAt?: number;
  deadAt?: number;
}

/** What REST and the dashboard see: never the secret; the body only in the single-delivery view. */
export type PublicDelivery = Omit<Delivery, 'secret' | 'body'> & { bodyBytes: number; signed: boolean; body?: string };

/** What the queue stores per pending delivery (id, lane, due time, attempts and last error are the queue's own). */
export const DeliveryItem = z.object({
  url: z.string(),
  body: z.string(),
  event: z.string(),
  /** Absent for application/json, the usual one. */
  contentType: z.string().optional(),
  secret: z.string().optional(),
  subscription: z.string().optional(),
  createdAt: z.number(),
  expiresAt: z.number(),
  /** When a dead delivery was put back by a manual retry (decides between the queue and the finished log after a crash). */
  retriedAt: z.number().optional(),
});
export type DeliveryItem = z.infer<typeof DeliveryItem>;

const MAX_URL_LENGTH = 2048;
/** Ids travel in X-Outpost-Delivery and REST paths. */
const DELIVERY_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Longest lane key the queue takes as it is; longer ones (URLs) are hashed. */
const MAX_KEY = 200;

/** Throws a message naming the problem unless raw is an absolute http(s) URL a webhook can go to. */
export function checkDeliveryUrl(raw: unknown, field = 'url'): URL {
  if (typeof raw !== 'string' || raw === '') throw new Error(`${field} is required and must be a string`);
  if (raw.length > MAX_URL_LENGTH) throw new Error(`${field} is ${raw.length} characters; the limit is ${MAX_URL_LENGTH}`);
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`${field} "${raw.slice(0, 100)}" is not a valid absolute URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`${field} must use http or https, not ${u.protocol.replace(/:$/, '')}`);
  return u;
}

export function checkDeliveryId(id: unknown): string {
  if (typeof id !== 'string' || !DELIVERY_ID.test(id)) throw new Error(`delivery id ${JSON.stringify(String(id).slice(0, 64))} must be 1-128 letters, digits, ".", "_", "-" or ":"`);
  return id;
}

/** The lane of a delivery: its key (default its URL), hashed when too long for the queue. */
export function laneKey(key: string): string {
  return key.length <= MAX_KEY ? key : `lane:${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

/** Masked URLs by URL: a lane's deliveries share one, and masking parses it (per delivery, it showed in profiles). */
const masked = new Map<string, string>();

function maskedUrl(url: string): string {
  let m = masked.get(url);
  if (m === undefined) {
    if (masked.size >= 1000) masked.clear();
    masked.set(url, (m = String(secretUrl(url))));
  }
  return m;
}

/** The delivery as shown: URL credentials masked, no secret; the body only when asked for. */
export function publicView(d: Delivery, withBody = false): PublicDelivery {
  const { secret, body, ...rest } = d;
  const url = maskedUrl(d.url);
  const out: PublicDelivery = { ...rest, url, key: d.key === d.url ? url : d.key, bodyBytes: Buffer.byteLength(body), signed: Boolean(secret) };
  if (withBody) out.body = body;
  return out;
}
