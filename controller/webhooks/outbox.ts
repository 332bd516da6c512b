import { randomBytes } from 'node:crypto';
import { outpostSignature } from '../../plugins/sdk/signature.ts';
import { secretUrl } from '../../plugins/sdk/secret.ts';
import type { Log } from '../../plugins/sdk/log.ts';
import type { Counter } from '../../plugins/sdk/metrics.ts';
import { DeliveryHistory } from './history.ts';
import { openOutboxLog, type OutboxData, type OutboxLog, type OutboxOp } from './outbox-log.ts';
import type { StorageHealth } from '../../plugins/sdk/durable/health.ts';

/*
 * Durable webhook outbox.
 *
 * Contract: a delivery is on disk before enqueue resolves and before its first attempt; it is
 * attempted until a 2xx answer or its max age, then marked dead. Delivery is at least once: an
 * attempt in flight when the controller dies is sent again after restart with the same
 * X-Outpost-Delivery id, so receivers dedupe on that id. Entries recorded as delivered are never
 * sent again (except on an explicit manual retry of a dead one).
 *
 * Ordering and isolation: each key (a subscription, or a plugin's key / URL) is a FIFO lane with
 * one attempt in flight, so events reach a subscriber in order and a slow or dead receiver only
 * holds up its own lane. Lanes sharing a receiver origin are capped at `concurrencyPerTarget`
 * requests in flight so one receiver with many lanes is not flooded.
 *
 * Network exposure (SSRF): destination URLs are chosen by admins (subscriptions) or by plugins from
 * admin-configured data (callbacks), and reaching receivers on private networks is a normal use, so
 * no address range is blocked. What is limited is what a receiver can do with the controller:
 * redirects are never followed (a 3xx is a failed attempt), at most 64 KiB of a response body is
 * read and none of it is stored or shown, and every request has a hard timeout.
 */

export type DeliveryState = 'pending' | 'delivered' | 'dead';

export interface Delivery {
  id: string;
  /** Lane: deliveries sharing a key go out one at a time, in `n` order. */
  key: string;
  n: number;
  url: string;
  body: string;
  contentType: string;
  event: string;
  /** HMAC key for X-Outpost-Signature; only ever in the 0600 outbox file and memory. */
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

export interface EnqueueItem {
  /** Given by the event fan-out (derived from event and subscription), so a replay is recognised; else random. */
  id?: string;
  url: string;
  body: string;
  event: string;
  contentType?: string;
  secret?: string;
  key?: string;
  subscription?: string;
}

type Patch = { [K in keyof Delivery]?: Delivery[K] | null };

export interface OutboxConfig {
  maxAgeMs: number;
  timeoutMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  concurrencyPerTarget?: number;
}

export interface OutboxCounters {
  attempts: Counter;
  failures: Counter;
  dead: Counter;
}

/** Refusal of a manual retry; `code` maps to 404 / 409. */
export class RetryRefused extends Error {
  constructor(
    readonly code: 'not_found' | 'conflict',
    message: string,
  ) {
    super(message);
  }
}

/** Largest body a delivery may carry; bodies stay in memory until delivered and are written with each snapshot. */
export const MAX_BODY_BYTES = 1024 * 1024;
/**
 * Bodies held in the outbox (pending and dead) are in memory too; past this, enqueue refuses with a
 * clear error instead of the controller growing until the OS kills it and loses everything.
 */
export const MAX_OUTBOX_BYTES = 256 * 1024 * 1024;
const MAX_URL_LENGTH = 2048;
/** Delivered records listed from memory (slim: no body, no secret); older ones are in the history file. */
const RECENT_KEPT = 2000;
/** Dead records stay in the outbox file (retryable) this long, then move to the history file. */
const DEAD_RETENTION_MS = 7 * 24 * 3600 * 1000;
const PRUNE_EVERY_MS = 3600 * 1000;
/** Response bytes read before the connection is dropped; enough to keep small answers on keep-alive. */
const RESPONSE_READ_LIMIT = 64 * 1024;

interface Lane {
  key: string;
  queue: Delivery[];
  inflight?: Delivery;
  timer?: NodeJS.Timeout;
}

export class Outbox {
  private readonly lanes = new Map<string, Lane>();
  private readonly recent: PublicDelivery[] = [];
  private readonly recentIds = new Set<string>();
  /** Requests in flight per receiver origin, and lanes waiting for a free slot there. */
  private readonly active = new Map<string, number>();
  private readonly waiting = new Map<string, Set<Lane>>();
  /** In-flight deliveries whose subscription was deleted: dead if this attempt fails. */
  private readonly cancelled = new Map<string, string>();
  /** Enqueued but not yet on disk: not listed, so anything the log shows survives a crash. */
  private readonly unconfirmed = new Set<string>();
  private pruneTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly perTarget: number;
  /** Sum of the bodies of the records in the outbox. */
  private bytes = 0;

  private constructor(
    private readonly store: OutboxLog<Delivery>,
    private readonly history: DeliveryHistory,
    private readonly cfg: OutboxConfig,
    private readonly log: Log,
    private readonly counters: OutboxCounters,
  ) {
    this.perTarget = cfg.concurrencyPerTarget ?? 4;
    this.data = store.data;
  }

  private readonly data: OutboxData<Delivery>;

  static async open(dataDir: string, cfg: OutboxConfig, log: Log, counters: OutboxCounters, health?: StorageHealth): Promise<Outbox> {
    const store = await openOutboxLog<Delivery>(dataDir, { log, health });
    const ob = new Outbox(store, await DeliveryHistory.open(dataDir), cfg, log, counters);
    for (const d of store.data.deliveries.values()) {
      ob.bytes += d.body.length;
      // Records written before expiresAt existed age from their creation.
      d.expiresAt ??= d.createdAt + cfg.maxAgeMs;
      if (d.state === 'pending') ob.lane(d.key).queue.push(d);
    }
    for (const l of ob.lanes.values()) l.queue.sort(byN);
    for (const r of await ob.history.tail<PublicDelivery>()) if (r.state === 'delivered') ob.remember(slim(r));
    return ob;
  }

  start(): void {
    this.stopped = false;
    for (const lane of [...this.lanes.values()]) this.pump(lane);
    void this.prune();
    this.pruneTimer = setInterval(() => void this.prune(), PRUNE_EVERY_MS);
    this.pruneTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.pruneTimer);
    for (const l of this.lanes.values()) clearTimeout(l.timer);
    void this.store.close().catch(() => undefined);
  }

  /**
   * Validates and stores deliveries; resolves with their ids once they are on disk. Throws naming the
   * bad input. An item whose id the outbox already holds or recently delivered is not queued again.
   * `cursor`: the event fan-out's position, stored in the same write as these deliveries.
   */
  async enqueue(all: EnqueueItem[], opts: { cursor?: number } = {}): Promise<string[]> {
    const items = all.filter((it) => it.id === undefined || !this.knows(it.id));
    for (const it of items) {
      checkDeliveryUrl(it.url);
      if (typeof it.body !== 'string') throw new Error('webhook body must be a string');
      const size = Buffer.byteLength(it.body);
      if (size > MAX_BODY_BYTES) throw new Error(`webhook body is ${size} bytes; the limit is ${MAX_BODY_BYTES}`);
    }
    const incoming = items.reduce((sum, it) => sum + it.body.length, 0);
    if (this.bytes + incoming > MAX_OUTBOX_BYTES) throw new Error(`webhook outbox is full (${this.bytes} bytes of undelivered bodies); is a receiver down? see /api/v1/deliveries?state=pending`);
    this.bytes += incoming;
    const now = Date.now();
    const created: Delivery[] = items.map((it) => ({
      id: it.id ?? `dl_${randomBytes(8).toString('hex')}`,
      key: it.key ?? it.url,
      n: 0,
      url: it.url,
      body: it.body,
      contentType: it.contentType ?? 'application/json',
      event: it.event,
      ...(it.secret ? { secret: it.secret } : {}),
      ...(it.subscription ? { subscription: it.subscription } : {}),
      state: 'pending',
      attempts: 0,
      createdAt: now,
      expiresAt: now + this.cfg.maxAgeMs,
      nextAt: now,
    }));
    for (const rec of created) this.unconfirmed.add(rec.id);
    try {
      for (const rec of created) {
        rec.n = ++this.data.n;
        this.data.deliveries.set(rec.id, rec);
      }
      const ops: OutboxOp<Delivery>[] = created.map((d) => ({ op: 'put', d }));
      const cursor = opts.cursor !== undefined && opts.cursor > this.data.cursor ? opts.cursor : undefined;
      if (cursor !== undefined) ops.push({ op: 'meta', n: this.data.n, cursor });
      if (ops.length) await this.store.write(ops);
      if (cursor !== undefined) this.data.cursor = Math.max(this.data.cursor, cursor);
    } catch (err) {
      // Not on disk, so not accepted: the caller gets the error and nothing half-queued stays behind.
      for (const rec of created) this.data.deliveries.delete(rec.id);
      this.bytes -= incoming;
      throw err;
    } finally {
      for (const rec of created) this.unconfirmed.delete(rec.id);
    }
    // Only now, durable, may they be attempted.
    for (const rec of created) if (rec.state === 'pending') this.schedule(rec);
    return all.map((it, i) => it.id ?? created[i].id);
  }

  /** Whether a delivery with this id is held or was delivered lately. */
  private knows(id: string): boolean {
    return this.data.deliveries.has(id) || this.recentIds.has(id);
  }

  /** Seq of the last event whose deliveries are stored (the fan-out resumes after it). */
  cursor(): number {
    return this.data.cursor;
  }

  /** Deliveries waiting to be delivered (pending). */
  depth(): number {
    let n = 0;
    for (const l of this.lanes.values()) n += l.queue.length;
    return n;
  }

  list(filter: { state?: string; limit?: number; subscription?: string } = {}): PublicDelivery[] {
    const wanted = (d: { id: string; state: string; subscription?: string }) => !this.unconfirmed.has(d.id) && (!filter.state || d.state === filter.state) && (!filter.subscription || d.subscription === filter.subscription);
    const stored = filter.state === 'delivered' ? [] : [...this.data.deliveries.values()].filter(wanted).map((d) => publicView(d));
    const delivered = !filter.state || filter.state === 'delivered' ? this.recent.filter(wanted) : [];
    return [...stored, ...delivered].sort((a, b) => b.n - a.n).slice(0, filter.limit ?? 100);
  }

  get(id: string): PublicDelivery | undefined {
    const d = this.data.deliveries.get(id);
    if (d && !this.unconfirmed.has(id)) return publicView(d, true);
    return this.recent.find((r) => r.id === id);
  }

  /**
   * Manual retry. Dead: back in its lane for a new round up to the max age, same id. Pending: its
   * lane is attempted at once instead of waiting out the backoff (order is kept, so that means
   * the lane's head). Delivered: refused, it was delivered.
   */
  async retry(id: string): Promise<PublicDelivery> {
    const d = this.data.deliveries.get(id);
    if (!d) {
      if (this.recent.some((r) => r.id === id)) throw new RetryRefused('conflict', `delivery ${id} was already delivered`);
      throw new RetryRefused('not_found', `delivery ${id} not found`);
    }
    const lane = this.lane(d.key);
    if (d.state === 'pending') {
      const head = lane.queue[0];
      if (head && lane.inflight !== head) {
        head.nextAt = Date.now();
        this.pump(lane);
      }
      return publicView(d);
    }
    const now = Date.now();
    // State flips synchronously, so a second concurrent retry sees "pending" and does not enqueue twice.
    await this.patch(d, { state: 'pending', attempts: 0, expiresAt: now + this.cfg.maxAgeMs, nextAt: now, deadAt: null });
    if ((d.state as DeliveryState) === 'pending') this.schedule(d); // unless cancelled meanwhile
    return publicView(d);
  }

  /** Stops the pending deliveries that match (e.g. of a deleted subscription): they become dead with `reason`. */
  async cancel(match: (d: Delivery) => boolean, reason: string): Promise<number> {
    const now = Date.now();
    const hit = [...this.data.deliveries.values()].filter((d) => d.state === 'pending' && match(d));
    if (hit.length === 0) return 0;
    const writes: Promise<void>[] = [];
    for (const d of hit) {
      if (this.lanes.get(d.key)?.inflight === d) {
        // Its attempt decides: delivered if it succeeds, dead with the reason if not.
        this.cancelled.set(d.id, reason);
        continue;
      }
      writes.push(this.patch(d, { state: 'dead', deadAt: now, lastError: reason }));
      const lane = this.lanes.get(d.key);
      if (lane) removeFrom(lane.queue, d);
    }
    await Promise.all(writes);
    return hit.length;
  }

  private schedule(d: Delivery): void {
    const lane = this.lane(d.key);
    const last = lane.queue[lane.queue.length - 1];
    // New deliveries have the highest n: append without scanning a long backlog.
    if (!last || last.n < d.n) lane.queue.push(d);
    else if (!lane.queue.includes(d)) lane.queue.splice(lane.queue.findIndex((q) => q.n > d.n), 0, d);
    this.pump(lane);
  }

  private lane(key: string): Lane {
    let l = this.lanes.get(key);
    if (!l) {
      l = { key, queue: [] };
      this.lanes.set(key, l);
    }
    return l;
  }

  private pump(lane: Lane): void {
    if (this.stopped || lane.inflight) return;
    clearTimeout(lane.timer);
    lane.timer = undefined;
    const head = lane.queue[0];
    if (!head) {
      // Plugin callbacks make a lane per URL: drop idle lanes so the map does not grow forever.
      if (this.lanes.get(lane.key) === lane) this.lanes.delete(lane.key);
      return;
    }
    const wait = head.nextAt - Date.now();
    if (wait > 0) {
      lane.timer = setTimeout(() => this.pump(lane), wait);
      return;
    }
    const origin = originOf(head.url);
    if ((this.active.get(origin) ?? 0) >= this.perTarget) {
      let set = this.waiting.get(origin);
      if (!set) this.waiting.set(origin, (set = new Set()));
      set.add(lane);
      return;
    }
    this.active.set(origin, (this.active.get(origin) ?? 0) + 1);
    lane.inflight = head;
    this.attempt(head)
      .catch((err) => this.log.error({ delivery: head.id, err: (err as Error).message }, 'webhook attempt bookkeeping failed'))
      .finally(() => {
        lane.inflight = undefined;
        this.release(origin);
        if (head.state !== 'pending') removeFrom(lane.queue, head);
        this.pump(lane);
      });
  }

  private release(origin: string): void {
    const left = (this.active.get(origin) ?? 1) - 1;
    if (left > 0) this.active.set(origin, left);
    else this.active.delete(origin);
    const set = this.waiting.get(origin);
    if (!set) return;
    this.waiting.delete(origin);
    for (const l of set) this.pump(l);
  }

  private async attempt(d: Delivery): Promise<void> {
    const headers: Record<string, string> = {
      'content-type': d.contentType,
      'user-agent': 'outpost-webhooks',
      'x-outpost-delivery': d.id,
      'x-outpost-event': d.event,
    };
    // Signed per attempt: a fresh timestamp keeps retries inside receivers' replay window.
    if (d.secret) headers['x-outpost-signature'] = outpostSignature(d.secret, d.body, Math.floor(Date.now() / 1000));
    this.counters.attempts.inc({ event: d.event });
    let status: number | undefined;
    let error: string | undefined;
    try {
      const res = await fetch(d.url, { method: 'POST', headers, body: d.body, signal: AbortSignal.timeout(this.cfg.timeoutMs), redirect: 'manual' });
      status = res.status;
      await drain(res);
      if (status >= 300 && status < 400) error = `receiver answered HTTP ${status}; redirects are not followed`;
      else if (status < 200 || status >= 300) error = `receiver answered HTTP ${status}`;
    } catch (err) {
      error = describeFetchError(err, this.cfg.timeoutMs);
    }
    const now = Date.now();
    const cancelReason = this.cancelled.get(d.id);
    this.cancelled.delete(d.id);
    if (!error) return this.delivered(d, now, status);

    this.counters.failures.inc({ event: d.event });
    const dead = cancelReason !== undefined || now >= d.expiresAt;
    const delay = Math.min(this.cfg.maxDelayMs, this.cfg.baseDelayMs * 2 ** Math.min(d.attempts, 30));
    // Equal jitter, in [delay/2, delay]: failing lanes spread out instead of retrying in lockstep.
    const next = now + Math.round(delay / 2 + (Math.random() * delay) / 2);
    const outcome: Patch = { attempts: d.attempts + 1, lastAttemptAt: now, lastStatus: status ?? null, lastError: cancelReason ? `${error}; ${cancelReason}` : error };
    if (dead) Object.assign(outcome, { state: 'dead', deadAt: now });
    else outcome.nextAt = Math.min(next, d.expiresAt); // the last attempt lands at the max age, not past it
    this.patch(d, outcome).catch((err) => this.log.error({ err: (err as Error).message }, 'webhook outbox write failed'));
    if (dead) {
      this.counters.dead.inc({ event: d.event });
      this.log.warn({ delivery: d.id, event: d.event, url: String(secretUrl(d.url)), error: d.lastError }, 'webhook delivery dead');
    }
  }

  private delivered(d: Delivery, now: number, status: number | undefined): void {
    d.state = 'delivered';
    d.attempts += 1;
    d.lastAttemptAt = now;
    d.lastStatus = status;
    d.deliveredAt = now;
    delete d.lastError;
    this.data.deliveries.delete(d.id);
    this.bytes -= d.body.length;
    this.remember(publicView(d));
    // The lane moves on without waiting for the disk: a crash before this write resends it with the
    // same id, which the at-least-once contract allows; a recorded "delivered" is never resent.
    void this.store
      .write([{ op: 'del', id: d.id }])
      .then(() => this.history.append([publicView(d, true)]))
      .catch((err) => this.log.error({ err: (err as Error).message }, 'webhook outbox write failed'));
  }

  private remember(p: PublicDelivery): void {
    this.recent.push(p);
    this.recentIds.add(p.id);
    if (this.recent.length > RECENT_KEPT) for (const old of this.recent.splice(0, this.recent.length - RECENT_KEPT)) this.recentIds.delete(old.id);
  }

  /** Moves dead records past retention from the outbox file to the history file. */
  private async prune(): Promise<void> {
    const cutoff = Date.now() - DEAD_RETENTION_MS;
    const old = [...this.data.deliveries.values()].filter((d) => d.state === 'dead' && (d.deadAt ?? d.lastAttemptAt ?? d.createdAt) < cutoff);
    if (old.length === 0) return;
    try {
      await this.history.append(old.map((d) => publicView(d, true)));
      for (const d of old) {
        this.data.deliveries.delete(d.id);
        this.bytes -= d.body.length;
      }
      await this.store.write(old.map((d): OutboxOp<Delivery> => ({ op: 'del', id: d.id })));
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'webhook outbox prune failed');
    }
  }

  /** Applies fields to a record (null removes one) and journals the change; resolves once on disk. */
  private patch(d: Delivery, f: Patch): Promise<void> {
    for (const [k, v] of Object.entries(f)) {
      if (v === null) delete (d as unknown as Record<string, unknown>)[k];
      else (d as unknown as Record<string, unknown>)[k] = v;
    }
    return this.store.write([{ op: 'set', id: d.id, f }]);
  }
}

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

function publicView(d: Delivery | PublicDelivery, withBody = false): PublicDelivery {
  const { secret, body, ...rest } = d as Delivery;
  const out: PublicDelivery = { ...rest, url: String(secretUrl(d.url)), key: d.key === d.url ? String(secretUrl(d.key)) : d.key, bodyBytes: 'bodyBytes' in d ? d.bodyBytes : Buffer.byteLength(body ?? ''), signed: 'signed' in d ? Boolean(d.signed) : Boolean(secret) };
  if (withBody && body !== undefined) out.body = body;
  return out;
}

function slim(p: PublicDelivery): PublicDelivery {
  const { body: _b, ...rest } = p;
  return rest;
}

function removeFrom(queue: Delivery[], d: Delivery): void {
  const i = queue.indexOf(d);
  if (i >= 0) queue.splice(i, 1);
}

const byN = (a: Delivery, b: Delivery) => a.n - b.n;

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

async function drain(res: Response): Promise<void> {
  if (!res.body) return;
  const reader = res.body.getReader();
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      n += value.byteLength;
      if (n > RESPONSE_READ_LIMIT) {
        await reader.cancel();
        return;
      }
    }
  } catch {
    // The status already decided the attempt; a body cut short changes nothing.
  }
}

function describeFetchError(err: unknown, timeoutMs: number): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `timed out after ${timeoutMs} ms`;
  return e.cause?.message ?? e.cause?.code ?? e.message;
}

