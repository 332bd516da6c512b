import { randomBytes } from 'node:crypto';
import { currentFence, runFenced, type Fence } from '../../plugins/sdk/durable/fence.ts';
import { outpostSignature } from '../../plugins/sdk/signature.ts';
import { secretUrl } from '../../plugins/sdk/secret.ts';
import type { Log } from '../../plugins/sdk/log.ts';
import type { Counter } from '../../plugins/sdk/metrics.ts';
import type { StorageHealth } from '../../plugins/sdk/durable/health.ts';
import { openQueue, type DueQueue, type Leased, type QueuedItem } from '../../plugins/sdk/durable/queue.ts';
import { checkDeliveryId, checkDeliveryUrl, DeliveryItem, laneKey, publicView, type Delivery, type PublicDelivery } from './delivery.ts';
import { FinishedDeliveries } from './finished.ts';
import { importOldOutbox } from './outbox-import.ts';
import { Sender, type AttemptOutcome } from './sender.ts';

export { checkDeliveryUrl, type Delivery, type DeliveryState, type PublicDelivery } from './delivery.ts';

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
 *
 * Built on the SDK's due-time queue (`webhook-queue.*`): a delivery is a queue item, its key the
 * queue key (the queue leases only a lane's head, and only once it is due), a failed attempt is
 * `fail` with the backoff, a delivered one `ack`. Leases live in memory, so an attempt in flight at a
 * crash is simply due again after the restart, under the same id. Delivered and dead deliveries
 * leave the queue for the finished log (finished.ts); the event fan-out's cursor is the queue's
 * checkpoint, written with the deliveries it produced.
 */

export interface EnqueueItem {
  /** Given by the event fan-out (derived from event and subscription) or a plugin, so a repeat is recognised; else random. */
  id?: string;
  url: string;
  body: string;
  event: string;
  contentType?: string;
  secret?: string;
  key?: string;
  subscription?: string;
}

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
/** Dead records stay (retryable) this long, then leave the finished log. */
const DEAD_RETENTION_MS = 7 * 24 * 3600 * 1000;
const PRUNE_EVERY_MS = 3600 * 1000;
/** Heads leased per pull; every lane has at most one. */
const LEASE_BATCH = 1000;
const JSON_TYPE = 'application/json';

/** A leased delivery: sent, or waiting for a free request slot at its receiver. */
interface Held {
  it: Leased<DeliveryItem>;
  url: URL;
  origin: string;
  inFlight: boolean;
  /** The term of the singleton lease it was leased in: its outcome is written under that term's fence. */
  fence?: Fence;
}

type Match = (d: { subscription?: string; key: string }) => boolean;

export class Outbox {
  /** Leased deliveries by id. */
  private readonly held = new Map<string, Held>();
  /** Requests in flight per receiver origin, and deliveries waiting for a free slot there (FIFO). */
  private readonly active = new Map<string, number>();
  private readonly waiting = new Map<string, Held[]>();
  /** In-flight deliveries whose subscription was deleted: dead if this attempt fails. */
  private readonly cancelled = new Map<string, string>();
  /** Deliveries given up on whose dead record and queue removal are still being written. */
  private readonly dying = new Map<string, Promise<void>>();
  /** Last attempt of pending deliveries (status and time: the queue keeps the error and the count). In memory only. */
  private readonly lastTry = new Map<string, { at: number; status?: number }>();
  /** Enqueued but not yet on disk: not shown, so anything the outbox shows survives a crash. */
  private readonly unconfirmed = new Set<string>();
  private readonly sender: Sender;
  private readonly perTarget: number;
  private readonly leaseMs: number;
  /** Sum of the bodies of pending and dead deliveries. */
  private bytes = 0;
  private stopped = true;
  private pumping = false;
  private pumpAgain = false;
  private fence: Fence | undefined;
  private offReady: (() => void) | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly queue: DueQueue<DeliveryItem>,
    private readonly finished: FinishedDeliveries,
    private readonly cfg: OutboxConfig,
    private readonly log: Log,
    private readonly counters: OutboxCounters,
  ) {
    this.perTarget = cfg.concurrencyPerTarget ?? 4;
    this.sender = new Sender(cfg.timeoutMs);
    // Every attempt ends in ack or fail within the request timeout; the lease only has to outlast a wait for a slot.
    this.leaseMs = cfg.timeoutMs + 3_600_000;
  }

  static async open(dataDir: string, cfg: OutboxConfig, log: Log, counters: OutboxCounters, health?: StorageHealth): Promise<Outbox> {
    const queue = await openQueue('webhook-queue', DeliveryItem, { dir: dataDir, log, health });
    const finished = await FinishedDeliveries.open(dataDir, { log, health });
    await importOldOutbox(dataDir, { queue, finished, log, maxAgeMs: cfg.maxAgeMs });
    const ob = new Outbox(queue, finished, cfg, log, counters);
    await ob.settleCrash();
    for (const q of await queue.items()) ob.bytes += q.item.body.length;
    for (const d of finished.deadOnes()) ob.bytes += d.body.length;
    return ob;
  }

  /**
   * A crash between the queue's write and the finished log's can leave a delivery in both: one
   * recorded delivered is never sent again; between dead and pending, the later change wins (a manual
   * retry puts a dead one back in the queue before it leaves the finished log).
   */
  private async settleCrash(): Promise<void> {
    const drop: string[] = [];
    const forget: string[] = [];
    for (const q of await this.queue.items()) {
      const dead = this.finished.getDead(q.id);
      if (this.finished.getDelivered(q.id)) drop.push(q.id);
      else if (dead) (q.item.retriedAt ?? 0) >= (dead.deadAt ?? 0) ? forget.push(q.id) : drop.push(q.id);
    }
    for (const id of drop) await this.queue.cancel(id);
    await this.finished.forget(forget);
  }

  /**
   * Starts attempting deliveries: singleton work, for a term of the lease (`fence`, the caller's by
   * default): its leases, acks and retries are written under that term's fence.
   */
  start(fence: Fence | undefined = currentFence()): void {
    this.fence = fence;
    this.stopped = false;
    this.offReady = this.queue.onReady(() => this.pump());
    this.pump();
    void this.fenced(() => this.prune());
    this.pruneTimer = setInterval(() => void this.fenced(() => this.prune()), PRUNE_EVERY_MS);
    this.pruneTimer.unref();
  }

  /**
   * Stops attempting (the term ended) without closing anything: attempts in flight finish (their
   * writes are refused if another controller took over meanwhile: the same id is then sent again
   * there); deliveries held for a free slot are let go, for the next term to lease afresh.
   */
  pause(): void {
    this.stopped = true;
    this.offReady?.();
    clearInterval(this.pruneTimer);
    for (const h of [...this.held.values()]) if (!h.inFlight) this.unhold(h);
    this.fence = undefined;
  }

  private fenced<R>(fn: () => R): R {
    return this.fence ? runFenced(this.fence, fn) : fn();
  }

  /** Stops attempting; resolves once the files are closed (attempts in flight are cut off and due again at the next start). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.offReady?.();
    clearInterval(this.pruneTimer);
    this.sender.close();
    await Promise.all([this.queue.close().catch(() => undefined), this.finished.close().catch(() => undefined)]);
  }

  /**
   * Validates and stores deliveries; resolves with their ids once they are on disk. Throws naming the
   * bad input. An item whose id the outbox already holds or recently delivered is not queued again.
   * `cursor`: the event fan-out's position, stored in the same write as these deliveries. Those are
   * made again from the (fsynced) event log after a power cut, from the cursor then on disk, so their
   * write shares the next fsync instead of waiting for one of its own (a process crash keeps them).
   */
  async enqueue(all: EnqueueItem[], opts: { cursor?: number } = {}): Promise<string[]> {
    const ids = all.map((it) => (it.id === undefined ? `dl_${randomBytes(8).toString('hex')}` : checkDeliveryId(it.id)));
    const items: Array<{ it: EnqueueItem; id: string }> = [];
    // An id may have been delivered by another controller (the lease holder before this one): its
    // "delivered" record must be read before the id is judged new.
    if (all.some((it) => it.id !== undefined)) await this.finished.refresh();
    for (const [i, it] of all.entries()) if (it.id === undefined || !(await this.knows(ids[i]))) items.push({ it, id: ids[i] });
    let incoming = 0;
    for (const { it } of items) {
      checkDeliveryUrl(it.url);
      if (typeof it.body !== 'string') throw new Error('webhook body must be a string');
      const size = Buffer.byteLength(it.body);
      if (size > MAX_BODY_BYTES) throw new Error(`webhook body is ${size} bytes; the limit is ${MAX_BODY_BYTES}`);
      incoming += it.body.length;
    }
    if (this.bytes + incoming > MAX_OUTBOX_BYTES) throw new Error(`webhook outbox is full (${this.bytes} bytes of undelivered bodies); is a receiver down? see /api/v1/deliveries?state=pending`);
    const now = Date.now();
    const entries = items.map(({ it, id }) => ({
      id,
      key: laneKey(it.key ?? it.url),
      dueAt: now,
      item: {
        url: it.url,
        body: it.body,
        event: it.event,
        ...(it.contentType && it.contentType !== JSON_TYPE ? { contentType: it.contentType } : {}),
        ...(it.secret ? { secret: it.secret } : {}),
        ...(it.subscription ? { subscription: it.subscription } : {}),
        createdAt: now,
        expiresAt: now + this.cfg.maxAgeMs,
      },
    }));
    this.bytes += incoming;
    for (const e of entries) this.unconfirmed.add(e.id);
    try {
      await this.queue.scheduleMany(entries, opts.cursor !== undefined ? { checkpoint: opts.cursor, sync: false } : {});
    } catch (err) {
      // Not on disk, so not accepted: the caller gets the error and nothing half-queued stays behind.
      this.bytes -= incoming;
      throw err;
    } finally {
      for (const e of entries) this.unconfirmed.delete(e.id);
    }
    // Only now, durable, may they be attempted.
    this.pump();
    return ids;
  }

  /** Whether a delivery with this id is held, dead, or was delivered lately. */
  private async knows(id: string): Promise<boolean> {
    return (await this.queue.get(id)) !== undefined || this.finished.getDead(id) !== undefined || this.finished.getDelivered(id) !== undefined;
  }

  /** Seq of the last event whose deliveries are stored (the fan-out resumes after it). */
  cursor(): number {
    return this.queue.checkpoint();
  }

  /** Deliveries waiting to be delivered (pending, in flight included). */
  async depth(): Promise<number> {
    const c = await this.queue.counts();
    return c.pending + c.leased;
  }

  async list(filter: { state?: string; limit?: number; subscription?: string } = {}): Promise<PublicDelivery[]> {
    const bySub = (d: { subscription?: string }) => !filter.subscription || d.subscription === filter.subscription;
    const out: PublicDelivery[] = [];
    if (!filter.state || filter.state === 'pending') for (const q of await this.queue.items()) if (bySub(q.item) && !this.unconfirmed.has(q.id)) out.push(this.pendingView(q));
    if (!filter.state || filter.state === 'dead') for (const d of this.finished.deadOnes()) if (bySub(d)) out.push(publicView(d));
    if (!filter.state || filter.state === 'delivered') for (const p of this.finished.deliveredOnes()) if (bySub(p)) out.push(p);
    return out.sort((a, b) => b.createdAt - a.createdAt).slice(0, filter.limit ?? 100);
  }

  async get(id: string): Promise<PublicDelivery | undefined> {
    const q = await this.queue.get(id);
    if (q) return this.unconfirmed.has(id) ? undefined : this.pendingView(q, true);
    const dead = this.finished.getDead(id);
    return dead ? publicView(dead, true) : this.finished.getDelivered(id);
  }

  /**
   * Manual retry. Dead: back in its lane (at its end) for a new round up to the max age, same id.
   * Pending: its lane is attempted at once instead of waiting out the backoff (order is kept, so
   * that means the lane's head). Delivered: refused, it was delivered.
   */
  async retry(id: string): Promise<PublicDelivery> {
    // Shown dead already, but still in the queue until its removal is written: retry it once it is out.
    await this.dying.get(id);
    const pending = await this.queue.get(id);
    if (pending) {
      const head = await this.headOf(pending.key!);
      if (head && !this.held.has(head.id)) await this.queue.reschedule(head.id, Date.now());
      return this.pendingView((await this.queue.get(id)) ?? pending);
    }
    // Claimed in this turn, so a second retry meanwhile finds it pending and does not queue it twice.
    const dead = this.finished.take(id);
    if (!dead) {
      if (this.finished.getDelivered(id)) throw new RetryRefused('conflict', `delivery ${id} was already delivered`);
      throw new RetryRefused('not_found', `delivery ${id} not found`);
    }
    const now = Date.now();
    const item: DeliveryItem = { url: dead.url, body: dead.body, event: dead.event, ...(dead.contentType !== JSON_TYPE ? { contentType: dead.contentType } : {}), ...(dead.secret ? { secret: dead.secret } : {}), ...(dead.subscription ? { subscription: dead.subscription } : {}), createdAt: dead.createdAt, expiresAt: now + this.cfg.maxAgeMs, retriedAt: now };
    try {
      await this.queue.schedule(item, now, { id, key: dead.key });
    } catch (err) {
      this.finished.restore(dead);
      throw err;
    }
    await this.finished.forget([id]);
    this.pump();
    const q = await this.queue.get(id);
    return q ? this.pendingView(q) : (await this.get(id))!;
  }

  /** Stops the pending deliveries that match (e.g. of a deleted subscription): they become dead with `reason`. */
  async cancel(match: Match, reason: string): Promise<number> {
    const now = Date.now();
    const hit = (await this.queue.items()).filter((q) => match({ subscription: q.item.subscription, key: q.key! }));
    const dead: Delivery[] = [];
    for (const q of hit) {
      const h = this.held.get(q.id);
      if (h?.inFlight) {
        // Its attempt decides: delivered if it succeeds, dead with the reason if not.
        this.cancelled.set(q.id, reason);
        continue;
      }
      if (h) this.unhold(h);
      dead.push({ ...this.delivery(q), state: 'dead', deadAt: now, lastError: reason });
    }
    // Dead on disk before they leave the queue: a crash in between leaves them in both, settled as dead.
    await this.finished.died(dead);
    for (const d of dead) {
      this.lastTry.delete(d.id);
      await this.queue.cancel(d.id);
    }
    return hit.length;
  }

  // ---- attempts ----

  /** Leases the lanes' heads that are due and sends each as soon as its receiver has a free slot. */
  private pump(): void {
    if (this.stopped) return;
    // One lease loop at a time (a lease may be answered by a database); a call meanwhile runs it again.
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    // Whoever asks (an enqueue from a REST request, a timer), the lease loop runs as the term's work.
    this.fenced(() => this.leaseDue())
      .catch((err) => this.log.error({ err: (err as Error).message }, 'webhook queue lease failed'))
      .finally(() => {
        this.pumping = false;
        if (this.pumpAgain) {
          this.pumpAgain = false;
          this.pump();
        }
      });
  }

  private async leaseDue(): Promise<void> {
    while (!this.stopped) {
      this.pumpAgain = false;
      const batch = await this.queue.lease(LEASE_BATCH, this.leaseMs);
      for (const it of batch) {
        const known = this.held.get(it.id);
        if (known) {
          // Its lease ran out while it waited for a slot: the same delivery, a new token.
          known.it = it;
          continue;
        }
        const url = new URL(it.item.url);
        const h: Held = { it, url, origin: url.origin, inFlight: false, ...(this.fence ? { fence: this.fence } : {}) };
        this.held.set(it.id, h);
        this.dispatch(h);
      }
      if (batch.length < LEASE_BATCH) return;
    }
  }

  private dispatch(h: Held): void {
    const busy = this.active.get(h.origin) ?? 0;
    if (busy >= this.perTarget) {
      let line = this.waiting.get(h.origin);
      if (!line) this.waiting.set(h.origin, (line = []));
      line.push(h);
      return;
    }
    this.active.set(h.origin, busy + 1);
    h.inFlight = true;
    this.send(h)
      .then((outcome) => {
        // The slot and the hold end before the outcome is applied: a failed head falls due again after
        // its backoff, and must then be leased afresh, not taken for one still in flight.
        this.held.delete(h.it.id);
        this.release(h.origin);
        if (h.fence) runFenced(h.fence, () => this.settle(h.it, outcome));
        else this.settle(h.it, outcome);
      })
      .catch((err) => this.log.error({ delivery: h.it.id, err: (err as Error).message }, 'webhook attempt bookkeeping failed'))
      .finally(() => this.pump());
  }

  private release(origin: string): void {
    const left = (this.active.get(origin) ?? 1) - 1;
    if (left > 0) this.active.set(origin, left);
    else this.active.delete(origin);
    const line = this.waiting.get(origin);
    const next = line?.shift();
    if (line && line.length === 0) this.waiting.delete(origin);
    if (next && !this.stopped) this.dispatch(next);
  }

  /** Drops a delivery that waits for a slot (it is being cancelled). */
  private unhold(h: Held): void {
    this.held.delete(h.it.id);
    const line = this.waiting.get(h.origin);
    const i = line?.indexOf(h) ?? -1;
    if (i >= 0) line!.splice(i, 1);
  }

  private send(h: Held): Promise<AttemptOutcome> {
    const { it } = h;
    const d = it.item;
    const headers: Record<string, string> = {
      'content-type': d.contentType ?? JSON_TYPE,
      'user-agent': 'outpost-webhooks',
      'x-outpost-delivery': it.id,
      'x-outpost-event': d.event,
    };
    // Signed per attempt: a fresh timestamp keeps retries inside receivers' replay window.
    if (d.secret) headers['x-outpost-signature'] = outpostSignature(d.secret, d.body, Math.floor(Date.now() / 1000));
    this.counters.attempts.inc({ event: d.event });
    return this.sender.send(h.url, headers, d.body);
  }

  /** Applies an attempt's outcome to memory at once; the writes follow (their failures are logged). */
  private settle(it: Leased<DeliveryItem>, { status, error }: AttemptOutcome): void {
    const d = it.item;
    const now = Date.now();
    const cancelReason = this.cancelled.get(it.id);
    this.cancelled.delete(it.id);
    if (!error) return this.delivered(it, now, status);

    this.counters.failures.inc({ event: d.event });
    const lastError = cancelReason ? `${error}; ${cancelReason}` : error;
    const logged = (what: string) => (err: unknown) => this.log.error({ delivery: it.id, err: (err as Error).message }, `webhook ${what} failed`);
    if (cancelReason !== undefined || now >= d.expiresAt) {
      this.counters.dead.inc({ event: d.event });
      this.log.warn({ delivery: it.id, event: d.event, url: String(secretUrl(d.url)), error: lastError }, 'webhook delivery dead');
      this.lastTry.delete(it.id);
      // Dead on disk before it leaves the queue (see settleCrash); its lane waits for that write.
      const written = this.finished
        .died([{ ...this.delivery(it), state: 'dead', attempts: it.attempts + 1, lastAttemptAt: now, ...(status ? { lastStatus: status } : {}), lastError, deadAt: now }])
        .then(() => this.queue.ack(it.id, it.token))
        .then(() => undefined, logged('dead record'))
        .finally(() => this.dying.delete(it.id));
      this.dying.set(it.id, written);
      return;
    }
    const delay = Math.min(this.cfg.maxDelayMs, this.cfg.baseDelayMs * 2 ** Math.min(it.attempts, 30));
    // Equal jitter, in [delay/2, delay]: failing lanes spread out instead of retrying in lockstep.
    // The last attempt lands at the max age, not past it.
    const next = Math.min(now + Math.round(delay / 2 + (Math.random() * delay) / 2), d.expiresAt);
    this.lastTry.set(it.id, { at: now, ...(status ? { status } : {}) });
    this.queue.fail(it.id, next - now, { token: it.token, error: lastError }).catch(logged('queue write'));
  }

  private delivered(it: Leased<DeliveryItem>, now: number, status: number | undefined): void {
    this.bytes -= it.item.body.length;
    this.lastTry.delete(it.id);
    const done = publicView({ ...this.delivery(it), state: 'delivered', attempts: it.attempts + 1, lastAttemptAt: now, ...(status ? { lastStatus: status } : {}), deliveredAt: now });
    delete done.lastError;
    // The lane moves on without waiting for the disk: a crash before these writes resends it with the
    // same id, which the at-least-once contract allows; a recorded "delivered" is never resent.
    this.queue.ack(it.id, it.token).catch((err) => this.log.error({ err: (err as Error).message }, 'webhook queue write failed'));
    this.finished.delivered(done).catch((err) => this.log.error({ err: (err as Error).message }, 'webhook delivery log write failed'));
  }

  // ---- views and housekeeping ----

  private async headOf(key: string): Promise<QueuedItem<DeliveryItem> | undefined> {
    for (const q of await this.queue.items()) if (q.key === key) return q;
    return undefined;
  }

  /** A queued delivery as a whole record. */
  private delivery(q: QueuedItem<DeliveryItem>): Delivery {
    const d = q.item;
    const last = this.lastTry.get(q.id);
    return {
      id: q.id,
      key: q.key!,
      url: d.url,
      body: d.body,
      contentType: d.contentType ?? JSON_TYPE,
      event: d.event,
      ...(d.secret ? { secret: d.secret } : {}),
      ...(d.subscription ? { subscription: d.subscription } : {}),
      state: 'pending',
      attempts: q.attempts,
      createdAt: d.createdAt,
      expiresAt: d.expiresAt,
      nextAt: q.dueAt,
      ...(last ? { lastAttemptAt: last.at, ...(last.status ? { lastStatus: last.status } : {}) } : {}),
      ...(q.lastError !== undefined ? { lastError: q.lastError } : {}),
    };
  }

  private pendingView(q: QueuedItem<DeliveryItem>, withBody = false): PublicDelivery {
    return publicView(this.delivery(q), withBody);
  }

  /** Dead deliveries past retention leave the finished log. */
  private async prune(): Promise<void> {
    const cutoff = Date.now() - DEAD_RETENTION_MS;
    const old = [...this.finished.deadOnes()].filter((d) => (d.deadAt ?? d.lastAttemptAt ?? d.createdAt) < cutoff);
    if (old.length === 0) return;
    for (const d of old) this.bytes -= d.body.length;
    await this.finished.forget(old.map((d) => d.id)).catch((err) => this.log.error({ err: (err as Error).message }, 'webhook delivery log prune failed'));
  }
}
