import type { Log } from '../../plugins/sdk/log.ts';
import type { EventLog, RecordedEvent } from '../event-log.ts';
import { MAX_BODY_BYTES, type Outbox } from './outbox.ts';
import type { Subscriptions } from './subscriptions.ts';

/** Events fanned out per outbox write when many are waiting (a network cut downs many nodes at once). */
const BATCH = 500;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

interface Waiter {
  seq: number;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Turns recorded events into webhook deliveries, in event order. The outbox stores the seq of the last
 * event it took deliveries for in the same write as those deliveries, so after a crash the fan-out
 * resumes from there with the events still in the event log: an event recorded just before the crash
 * is fanned out after the restart, one fanned out already is recognised by its delivery ids.
 */
export class Fanout {
  private queue: RecordedEvent[] = [];
  private running = false;
  private done = 0;
  private waiters: Waiter[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = RETRY_MIN_MS;
  private stopped = false;

  constructor(
    private readonly events: EventLog,
    private readonly subs: Subscriptions,
    private readonly outbox: Outbox,
    private readonly log: Log,
  ) {}

  start(): void {
    this.done = this.outbox.cursor();
    this.queue = this.events.after(this.done);
    if (this.queue.length) this.log.info({ events: this.queue.length, after: this.done }, 'fanning out events recorded before the restart');
    this.events.onRecorded((e) => {
      this.queue.push(e);
      void this.pump();
    });
    void this.pump();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
  }

  /**
   * Resolves once the deliveries of event `seq` are on disk (or it had none); rejects with the
   * write's error if queueing them failed (they are retried in the background all the same).
   */
  settled(seq: number): Promise<void> {
    if (seq <= this.done) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ seq, resolve, reject }));
  }

  private async pump(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    clearTimeout(this.retryTimer);
    try {
      while (this.queue.length && !this.stopped) {
        const batch = this.queue.slice(0, BATCH);
        const last = batch[batch.length - 1].seq;
        try {
          await this.subs.refresh();
          await this.outbox.enqueue(batch.flatMap((e) => this.deliveriesOf(e)), { cursor: last });
        } catch (err) {
          this.settle(last, err);
          this.log.error({ err: (err as Error).message, events: batch.length, retryInMs: this.retryMs }, 'could not queue webhook deliveries; retrying');
          this.retryTimer = setTimeout(() => void this.pump(), this.retryMs);
          this.retryTimer.unref();
          this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
          return;
        }
        this.retryMs = RETRY_MIN_MS;
        this.queue.splice(0, batch.length);
        this.done = last;
        this.events.fannedOutTo(last);
        this.settle(last);
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * Queues again the deliveries of events another controller recorded and may not have fanned out
   * before it died: the fan-out position is shared, so a controller's fan-out may have moved it past
   * such an event. Deliveries already queued or delivered are recognised by their ids; the position
   * is left where it is.
   */
  async catchUp(events: RecordedEvent[]): Promise<void> {
    await this.subs.refresh();
    await this.outbox.enqueue(events.flatMap((e) => this.deliveriesOf(e)));
  }

  private deliveriesOf(e: RecordedEvent) {
    const items = this.subs.deliveriesFor(e);
    // One event whose body can never be queued must not hold up every event after it.
    if (items.length && Buffer.byteLength(items[0].body) > MAX_BODY_BYTES) {
      this.log.error({ event: e.event, id: e.id, bytes: Buffer.byteLength(items[0].body) }, `event too large for a webhook body (limit ${MAX_BODY_BYTES} bytes); not delivered`);
      return [];
    }
    return items;
  }

  /** Resolves the waiters up to seq, or rejects them with err. */
  private settle(seq: number, err?: unknown): void {
    const hit = this.waiters.filter((w) => w.seq <= seq);
    if (hit.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.seq > seq);
    for (const w of hit) {
      if (err === undefined) w.resolve();
      else w.reject(err);
    }
  }
}
