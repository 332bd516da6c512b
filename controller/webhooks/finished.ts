import { z } from 'zod';
import { openLog, refreshLog, type DurableLog } from '../../plugins/sdk/durable/log.ts';
import type { StorageHealth } from '../../plugins/sdk/durable/health.ts';
import type { Log } from '../../plugins/sdk/log.ts';
import type { Delivery, PublicDelivery } from './delivery.ts';

/** Delivered records listed (slim: no body, no secret); older ones leave the log at its next compaction. */
const RECENT_KEPT = 2000;

/**
 * Deliveries that left the queue, on the SDK's durable log (`webhook-finished.*`): the latest
 * delivered ones (what the delivery list shows, and what tells a replayed event's deliveries from new
 * ones) and the dead ones with body and secret, retryable until they pass retention. Compaction keeps
 * just those, so the files stay bounded without a rotation of their own.
 *
 * Records: delivered = the public view, dead = the whole delivery, forget = a dead one went back into
 * the queue (manual retry) or past retention.
 */
type Rec = { t: 'delivered'; d: PublicDelivery } | { t: 'dead'; d: Delivery } | { t: 'forget'; id: string };

const Shape = z.looseObject({ id: z.string().min(1), key: z.string(), url: z.string(), event: z.string(), state: z.string(), attempts: z.number(), createdAt: z.number() });
const FinishedRecord = z.discriminatedUnion('t', [
  z.object({ t: z.literal('delivered'), d: Shape }),
  z.object({ t: z.literal('dead'), d: z.looseObject({ ...Shape.shape, body: z.string() }) }),
  z.object({ t: z.literal('forget'), id: z.string() }),
]) as unknown as z.ZodType<Rec>;

export class FinishedDeliveries {
  /** Delivered, oldest first; trimmed to RECENT_KEPT now and then (not on every push). */
  private recent: PublicDelivery[] = [];
  private readonly recentById = new Map<string, PublicDelivery>();
  private readonly dead = new Map<string, Delivery>();
  private log!: DurableLog<Rec>;

  static async open(dataDir: string, opts: { log: Log; health?: StorageHealth }): Promise<FinishedDeliveries> {
    const f = new FinishedDeliveries();
    f.log = await openLog('webhook-finished', FinishedRecord, {
      dir: dataDir,
      log: opts.log,
      health: opts.health,
      load: (r) => f.apply(r),
      snapshot: () => f.snapshot(),
    });
    f.trim();
    return f;
  }

  /**
   * Records a delivery as delivered (in memory at once); resolves once written. Its fsync is shared
   * with the next one: lost on a power cut, the delivery is only sent again (the queue's ack is as lazy).
   */
  delivered(p: PublicDelivery): Promise<void> {
    const r: Rec = { t: 'delivered', d: p };
    this.apply(r);
    return this.log.append([r], { sync: false });
  }

  /** Records deliveries as dead; resolves once on disk. */
  died(list: Delivery[]): Promise<void> {
    if (list.length === 0) return Promise.resolve();
    const recs = list.map((d): Rec => ({ t: 'dead', d }));
    for (const r of recs) this.apply(r);
    return this.log.append(recs);
  }

  /** Takes a dead delivery out (it is back in the queue, or expired); resolves once on disk. */
  forget(ids: string[]): Promise<void> {
    if (ids.length === 0) return Promise.resolve();
    const recs = ids.map((id): Rec => ({ t: 'forget', id }));
    for (const r of recs) this.apply(r);
    return this.log.append(recs);
  }

  /** Removes a dead delivery from memory only (a manual retry claims it before its write); see restore(). */
  take(id: string): Delivery | undefined {
    const d = this.dead.get(id);
    this.dead.delete(id);
    return d;
  }

  restore(d: Delivery): void {
    this.dead.set(d.id, d);
  }

  getDead(id: string): Delivery | undefined {
    return this.dead.get(id);
  }

  getDelivered(id: string): PublicDelivery | undefined {
    return this.recentById.get(id);
  }

  deadOnes(): IterableIterator<Delivery> {
    return this.dead.values();
  }

  /** Delivered, newest first. */
  *deliveredOnes(): IterableIterator<PublicDelivery> {
    for (let i = this.recent.length - 1; i >= 0 && this.recent.length - i <= RECENT_KEPT; i--) yield this.recent[i];
  }

  /** Takes in what other controllers recorded (on a shared database) before the call. */
  refresh(): Promise<void> {
    return refreshLog(this.log);
  }

  close(): Promise<void> {
    return this.log.close();
  }

  private apply(r: Rec): void {
    if (r.t === 'delivered') {
      this.recent.push(r.d);
      this.recentById.set(r.d.id, r.d);
      if (this.recent.length >= 2 * RECENT_KEPT) this.trim();
    } else if (r.t === 'dead') {
      this.dead.set(r.d.id, r.d);
    } else {
      this.dead.delete(r.id);
    }
  }

  private trim(): void {
    if (this.recent.length <= RECENT_KEPT) return;
    for (const old of this.recent.splice(0, this.recent.length - RECENT_KEPT)) if (this.recentById.get(old.id) === old) this.recentById.delete(old.id);
  }

  private *snapshot(): Iterable<Rec> {
    for (const d of this.dead.values()) yield { t: 'dead', d };
    for (let i = Math.max(0, this.recent.length - RECENT_KEPT); i < this.recent.length; i++) yield { t: 'delivered', d: this.recent[i] };
  }
}
