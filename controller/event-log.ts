import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { onRemoteAppend, openLog, refreshLog, type DurableLog } from '../plugins/sdk/durable/log.ts';
import { StorageConflictError } from '../plugins/sdk/durable/storage-error.ts';
import type { StorageHealth } from '../plugins/sdk/durable/health.ts';
import type { EventBus } from '../runtime/events.ts';
import type { Log } from '../plugins/sdk/log.ts';

export interface RecordedEvent {
  /** Position in the log; the webhook fan-out's cursor counts in these. */
  seq: number;
  /** Stable across replays: webhook bodies carry it, delivery ids derive from it. */
  id: string;
  ts: string;
  event: string;
  data: unknown;
}

/** An event to record; id and ts are given when it was prepared earlier (e.g. kept with a state change). */
export interface NewEvent {
  event: string;
  data: unknown;
  id?: string;
  ts?: string;
}

/** Where the parts that change state hand their events. */
export interface EventSink {
  record(events: NewEvent[]): Promise<RecordedEvent[]>;
}

const EventRecord = z.object({ seq: z.number().int().positive(), id: z.string().min(1), ts: z.string(), event: z.string().min(1), data: z.unknown() });

export function newEventId(): string {
  return `ev_${randomBytes(8).toString('hex')}`;
}

/**
 * The controller's durable event log: every core and plugin event is appended here before it counts
 * as happened. Only then is it published on the in-process bus and to the webhook fan-out, which
 * reads it in order and replays what it had not fanned out before a crash. It also answers
 * /api/v1/events and the dashboard (the latest `keep` events, and any not yet fanned out).
 *
 * Controllers sharing a database share the log and one sequence: an event is numbered after every
 * event this controller holds and appended only if no other controller appended meanwhile (an
 * exclusive append); if one did, its events are taken in and the batch is numbered again. So seqs
 * are unique, follow the log's order, and every controller lists every event. Events recorded
 * elsewhere are not published here (the bus is for this process's reactions) and not fanned out
 * here: the controller that recorded an event fans it out, once.
 */
export class EventLog implements EventSink {
  /** Recorded events, oldest first: the latest `keep`, plus any not yet fanned out. */
  private readonly events: RecordedEvent[] = [];
  private readonly byId = new Map<string, RecordedEvent>();
  /** Events being written, so one handed in twice meanwhile is written once. */
  private readonly writing = new Map<string, Promise<RecordedEvent>>();
  private seq = 0;
  /** The fan-out has handled (durably, or with nothing to deliver) every event up to here. */
  private fannedOut = 0;
  private readonly listeners: Array<(e: RecordedEvent) => void> = [];
  private log!: DurableLog<RecordedEvent>;
  /** Events another controller recorded (and fans out): they leave memory as if fanned out here. */
  private readonly elsewhere = new Set<string>();
  /** Shared logs: batches waiting to be numbered and appended, one append at a time. */
  private pending: Array<{ recs: RecordedEvent[]; resolve(): void; reject(err: unknown): void }> = [];
  private flushing: Promise<void> | undefined;

  private constructor(
    private readonly bus: EventBus,
    private readonly keep: number,
  ) {}

  static async open(dataDir: string, opts: { bus: EventBus; log: Log; health?: StorageHealth; keep?: number }): Promise<EventLog> {
    const el = new EventLog(opts.bus, opts.keep ?? 500);
    el.log = await openLog('events', EventRecord, {
      dir: dataDir,
      log: opts.log,
      health: opts.health,
      compactAfterBytes: 1024 * 1024,
      load: (e) => el.remember(e),
      reset: () => el.forget(),
      snapshot: () => el.events,
    });
    onRemoteAppend(el.log, (recs, how) => {
      for (const e of recs) el.elsewhere.add(e.id);
      if (how.reset) el.fannedOutTo(el.seq);
      el.trim();
    });
    return el;
  }

  /** Seq of the last event recorded (or being recorded). */
  lastSeq(): number {
    return this.seq;
  }

  /**
   * Appends events; resolves once they are on disk, then publishes them (bus, fan-out) in order.
   * An event whose id is already recorded is not recorded again (the recorded one is returned).
   * Rejects with the storage error when the log cannot be written: nothing was recorded then.
   */
  async record(events: NewEvent[]): Promise<RecordedEvent[]> {
    const fresh: RecordedEvent[] = [];
    const out: Array<RecordedEvent | Promise<RecordedEvent>> = [];
    for (const e of events) {
      const known = e.id !== undefined ? (this.byId.get(e.id) ?? this.writing.get(e.id)) : undefined;
      if (known) {
        out.push(known);
        continue;
      }
      const rec: RecordedEvent = { seq: this.shared ? 0 : ++this.seq, id: e.id ?? newEventId(), ts: e.ts ?? new Date().toISOString(), event: e.event, data: e.data ?? null };
      fresh.push(rec);
      out.push(rec);
    }
    if (fresh.length) {
      const written = this.shared ? this.numbered(fresh) : this.write(fresh);
      for (const rec of fresh) {
        const done = written.then(() => rec);
        done.catch(() => undefined); // the caller below gets the error; a duplicate waiting on it gets it too
        this.writing.set(rec.id, done);
      }
      try {
        await written;
      } finally {
        for (const rec of fresh) this.writing.delete(rec.id);
      }
      for (const rec of fresh) this.publish(rec);
    }
    return Promise.all(out);
  }

  /** Other processes append to this log (a database shared by controllers). */
  private get shared(): boolean {
    return this.log.refresh !== undefined;
  }

  /** Queues a batch for numbering in the one sequence of all controllers; resolves once it is written. */
  private numbered(fresh: RecordedEvent[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ recs: fresh, resolve, reject });
      this.flushing ??= this.flushNumbered();
    });
  }

  private async flushNumbered(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      const recs = batch.flatMap((b) => b.recs);
      let failed: unknown;
      for (let attempt = 1; ; attempt++) {
        const base = this.seq;
        for (const r of recs) r.seq = ++this.seq;
        try {
          await this.write(recs, true);
          failed = undefined;
          break;
        } catch (err) {
          // What the others appended is in memory now: number after it. Others recording without
          // pause could starve this one; past a few rounds the caller gets the conflict.
          this.seq = Math.max(base, this.events.at(-1)?.seq ?? 0);
          failed = err;
          if (!(err instanceof StorageConflictError) || attempt >= 20) break;
          await refreshLog(this.log);
          this.seq = Math.max(this.seq, this.events.at(-1)?.seq ?? 0);
        }
      }
      for (const b of batch) (failed === undefined ? b.resolve() : b.reject(failed));
    }
    this.flushing = undefined;
  }

  private async write(fresh: RecordedEvent[], exclusive = false): Promise<void> {
    for (const rec of fresh) this.remember(rec);
    try {
      await this.log.append(fresh, exclusive ? { exclusive } : undefined);
    } catch (err) {
      // Not on disk, so it did not happen: nothing shows it, nothing is published.
      const failed = new Set(fresh);
      for (const rec of fresh) this.byId.delete(rec.id);
      for (let i = this.events.length - 1; i >= 0; i--) if (failed.has(this.events[i])) this.events.splice(i, 1);
      throw err;
    }
  }

  private remember(e: RecordedEvent): void {
    this.events.push(e);
    this.byId.set(e.id, e);
    this.seq = Math.max(this.seq, e.seq);
    this.trim();
  }

  private trim(): void {
    let drop = 0;
    while (this.events.length - drop > this.keep && (this.events[drop].seq <= this.fannedOut || this.elsewhere.has(this.events[drop].id))) drop++;
    for (const e of this.events.splice(0, drop)) {
      this.byId.delete(e.id);
      this.elsewhere.delete(e.id);
    }
  }

  /** Before the log is replayed whole again (a follower behind another controller's compactions). */
  private forget(): void {
    this.events.length = 0;
    this.byId.clear();
    this.elsewhere.clear();
  }

  private publish(e: RecordedEvent): void {
    this.bus.emit(e.event, e.data);
    for (const fn of this.listeners) fn(e);
  }

  /** Called with every event recorded from now on, in seq order, once it is on disk. */
  onRecorded(fn: (e: RecordedEvent) => void): void {
    this.listeners.push(fn);
  }

  /** Recorded events with seq above `seq`, oldest first (those the fan-out may not have handled). */
  after(seq: number): RecordedEvent[] {
    return this.events.filter((e) => e.seq > seq);
  }

  /** The fan-out has handled everything up to seq: those events may leave memory and the snapshot. */
  fannedOutTo(seq: number): void {
    if (seq > this.fannedOut) this.fannedOut = seq;
    this.trim();
  }

  /** Events recorded by other controllers at or after `sinceMs` (their time stamps), oldest first. */
  recordedElsewhereSince(sinceMs: number): RecordedEvent[] {
    return this.events.filter((e) => this.elsewhere.has(e.id) && Date.parse(e.ts) >= sinceMs);
  }

  /** The latest events, newest first. */
  list(limit: number): RecordedEvent[] {
    return this.events.slice(-limit).reverse();
  }

  close(): Promise<void> {
    return this.log.close();
  }
}
